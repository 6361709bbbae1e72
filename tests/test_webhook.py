"""The webhook channel against a real HTTP server on 127.0.0.1: one POST per reader and local
date, Slack's and the plain JSON body, retries on 429/5xx with Retry-After, failures on other
4xx, and no secret part of the URL in any report."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import RunDigest

import digest
from digest.models import Config, WebhookOutput
from digest.state import open_store

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
SECRET = "T000/B000/XXXXsecretXXXX"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class Hook:
    """A webhook receiver: records every POST, answers with the scripted answers in turn
    (the last one again once they run out)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes, float]] = []
        self.answers: list[Answer] = [Answer()]
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(size)
                hook.posts.append((self.path, dict(self.headers), body, time.monotonic()))
                answer = hook.answers.pop(0) if len(hook.answers) > 1 else hook.answers[0]
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/{SECRET}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body, _ in self.posts]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def write_feed(path: Path, titles: list[str]) -> None:
    items = "".join(
        f"<item><title>{t}</title><link>https://papers.example/{i}?a=1&amp;b=2</link>"
        f"<guid>https://papers.example/{i}</guid><description>About {t}.</description></item>"
        for i, t in enumerate(titles)
    )
    path.write_text(f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>")


def config_with(tmp_path: Path, hook: Hook, fmt: str = "json", titles: int = 3) -> Config:
    write_feed(
        tmp_path / "feed.rss",
        [f"Reinforcement learning {i} for x &lt; y &amp; more" for i in range(titles)],
    )
    (tmp_path / "digest.toml").write_text(
        """
[digest]
title = "Papers"
state = "state.sqlite"
output = "out"
max_entries = 80

[[feeds]]
name = "local"
url = "feed.rss"

[profiles.rl]
keywords = { "reinforcement learning" = 1 }
"""
    )
    config = digest.load_config(tmp_path / "digest.toml")
    webhook = WebhookOutput(
        name="team-chat",
        url=hook.url,
        profile="rl",
        format=fmt,  # type: ignore[arg-type]
        send_at=clock(7, 0),
        timezone="UTC",
    )
    return replace(config, webhooks=(webhook,))


def test_a_json_webhook_gets_one_post_per_day_with_every_pick(tmp_path: Path, hook: Hook) -> None:
    config = config_with(tmp_path, hook)
    report = digest.run(config, NOW)
    assert [(d.reader, d.outcome) for d in report.deliveries] == [("team-chat", "sent")]
    (body,) = hook.bodies()
    assert body["date"] == "2026-11-24" and body["profile"] == "rl"
    assert body["title"] == "Papers"
    titles = sorted(p["title"] for p in body["picks"])
    assert titles == [f"Reinforcement learning {i} for x < y & more" for i in range(3)]
    assert all(p["url"].startswith("https://papers.example/") for p in body["picks"])
    assert all("reinforcement learning" in p["why"] for p in body["picks"])
    assert all(p["score"] > 0 for p in body["picks"])
    path, headers, _, _ = hook.posts[0]
    assert path == f"/services/{SECRET}"
    assert headers["Content-Type"].startswith("application/json")
    # the same day again: nothing is posted twice
    again = digest.run(config, NOW + timedelta(hours=2))
    assert [d.outcome for d in again.deliveries] == ["already"]
    assert len(hook.posts) == 1


def test_a_slack_webhook_escapes_titles_and_stays_within_slacks_limits(
    tmp_path: Path, hook: Hook
) -> None:
    config = config_with(tmp_path, hook, fmt="slack", titles=70)
    digest.run(config, NOW)
    (body,) = hook.bodies()
    blocks = body["blocks"]
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections, "a section per pick"
    for section in sections:
        text = section["text"]["text"]
        assert section["text"]["type"] == "mrkdwn" and len(text) <= 3000
        assert "x &lt; y &amp; more" in text
        assert "x < y" not in text
        assert text.startswith("*<https://papers.example/") and "?a=1&amp;b=2|" in text
    assert blocks[-1]["type"] == "context"
    shown = len(sections)
    assert blocks[-1]["elements"][0]["text"].startswith(f"{70 - shown} more")
    assert "70 new picks" in body["text"]


def test_a_429_with_retry_after_is_waited_for_then_sent_once(tmp_path: Path, hook: Hook) -> None:
    hook.answers = [Answer(429, b"slow down", {"Retry-After": "1"}), Answer(200)]
    config = config_with(tmp_path, hook)
    config = replace(config, smtp=None)
    report = digest.run(config, NOW)
    assert [d.outcome for d in report.deliveries] == ["sent"]
    assert len(hook.posts) == 2
    assert hook.posts[1][3] - hook.posts[0][3] >= 0.9
    assert hook.posts[0][2] == hook.posts[1][2], "a retry posts the same bytes"


def test_a_server_error_stays_pending_and_the_next_run_posts_the_same_body(
    tmp_path: Path, hook: Hook
) -> None:
    hook.answers = [Answer(503, b"down", {"Retry-After": "3600"})]
    config = config_with(tmp_path, hook)
    report = digest.run(config, NOW)
    (failed,) = report.deliveries
    assert failed.outcome == "failed" and report.failed
    assert failed.error is not None and "503" in failed.error
    assert len(hook.posts) == 1, "a Retry-After past a minute is not waited for in the run"
    with open_store(config.settings.state, "read") as store:
        row = store.delivery("webhook:team-chat", NOW.date())
    assert row is not None and row.status == "pending"
    hook.answers = [Answer(200)]
    later = digest.run(config, NOW + timedelta(hours=1))
    assert [d.outcome for d in later.deliveries] == ["sent"]
    assert hook.posts[0][2] == hook.posts[1][2]


def test_a_refusal_fails_with_the_status_and_the_start_of_the_body_and_no_secret(
    tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    hook.answers = [Answer(404, b"no_service: this webhook was removed " + b"x" * 500)]
    config = config_with(tmp_path, hook)
    report = digest.run(config, NOW)
    (failed,) = report.deliveries
    assert failed.outcome == "failed"
    assert failed.error is not None
    assert "404" in failed.error and "no_service" in failed.error
    assert len(failed.error) < 400
    assert len(hook.posts) == 1, "a 4xx is not retried"
    shown = " ".join([failed.error, caplog.text])
    assert "XXXXsecretXXXX" not in shown and "T000" not in shown
    assert "http://127.0.0.1:" in failed.error and "/services/" in failed.error
    with open_store(config.settings.state, "read") as store:
        row = store.delivery("webhook:team-chat", NOW.date())
    assert row is not None and row.status == "failed"


def test_a_webhook_that_cannot_be_reached_stays_pending_without_the_secret(
    tmp_path: Path, hook: Hook
) -> None:
    config = config_with(tmp_path, hook)
    hook.close()
    config = replace(config, webhooks=(replace(config.webhooks[0], url=hook.url),), smtp=None)
    report = digest.run(config, NOW)
    (failed,) = report.deliveries
    assert failed.outcome == "failed"
    assert failed.error is not None and "secret" not in failed.error
    with open_store(config.settings.state, "read") as store:
        row = store.delivery("webhook:team-chat", NOW.date())
    assert row is not None and row.status == "pending"


def test_the_daemon_posts_a_webhook_at_its_own_send_at_once(tmp_path: Path, hook: Hook) -> None:
    from digest import schedule

    config = config_with(tmp_path, hook)
    hook_at_nine = replace(config.webhooks[0], send_at=clock(9, 0), timezone="Europe/Berlin")
    config = replace(config, webhooks=(hook_at_nine,))
    planned = schedule.calendar(schedule.scheduled(config), NOW.date(), 2)
    assert [(p.subscriber, p.at) for p in planned] == [
        ("team-chat", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
        ("team-chat", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
    ]
    now = [datetime(2026, 11, 24, 7, 59, tzinfo=UTC)]
    daemon = schedule.Daemon(config, lambda: now[0])
    assert "deliver:team-chat" in [job.id for job in daemon.jobs()]
    daemon.collect_due()
    assert daemon.deliver_due(["team-chat"]) == [] and hook.posts == [], "not due yet"
    now[0] = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)
    reports = daemon.deliver_due(["team-chat"])
    assert [(r.reader, r.outcome) for r in reports] == [("team-chat", "sent")]
    again = daemon.deliver_due(["team-chat"])
    assert all(r.outcome == "already" for r in again)
    assert len(hook.posts) == 1
    _, rows = schedule.status(config, now[0])
    assert [r.name for r in rows] == ["team-chat"]
    assert "sent" in rows[0].last_result


def test_a_webhook_from_the_config_file_is_posted_by_digest_run(
    tmp_path: Path, hook: Hook, run_digest: RunDigest
) -> None:
    config_with(tmp_path, hook)  # the feed and the base config
    with (tmp_path / "digest.toml").open("a") as f:
        f.write(
            f'\n[[webhooks]]\nname = "team-chat"\nurl = "{hook.url}"\nprofile = "rl"\n'
            'format = "slack"\nsend_at = "07:00"\n'
        )
    checked = run_digest("check-config", str(tmp_path / "digest.toml"))
    assert checked.returncode == 0, checked.stderr
    shown = checked.stdout + checked.stderr
    assert "team-chat" in shown and "XXXXsecretXXXX" not in shown
    done = run_digest("run", "--config", str(tmp_path / "digest.toml"), "--now", NOW.isoformat())
    assert done.returncode == 0, done.stderr
    assert "team-chat" in done.stderr and "XXXXsecretXXXX" not in done.stderr
    (body,) = hook.bodies()
    assert body["blocks"][0]["type"] == "header"
