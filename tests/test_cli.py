"""End to end through the real `digest` command, against real servers on 127.0.0.1."""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
from contextlib import closing
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import feedparser
from conftest import DATA, DIGEST, RunDigest
from servers import HTTPServer, SMTPServer

PAPER_LINK = re.compile(r"https://huggingface\.co/papers/ex-[0-9a-f]{10}")
DAY1 = "2026-11-20T06:00:00Z"
DAY2 = "2026-11-21T06:00:00Z"


def links(text: str) -> list[str]:
    return PAPER_LINK.findall(text)


def html_links(html: str) -> list[str]:
    return re.findall(r'href="(https://huggingface\.co/papers/ex-[0-9a-f]{10})"', html)


def eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())  # type: ignore[attr-defined]


# --- 1. the bundled example, offline -------------------------------------------------------


def test_example_config_runs_offline_and_writes_every_format(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = example_dir / "config.example.toml"
    result = run_digest("run", "--config", str(config), "--now", "2026-11-23T07:30:00Z")
    assert result.returncode == 0, result.stderr
    out = example_dir / "examples" / "out" / "2026-11-23"
    assert str(out / "ada.eml") in result.stderr, "the run must print where the digests went"

    ada_txt = (out / "ada.txt").read_text()
    ada_html = (out / "ada.html").read_text()
    grace_txt = (out / "grace.txt").read_text()
    page = (example_dir / "examples" / "wiki" / "papers" / "2026-11-23.md").read_text()
    # papers a reader with each profile plainly wants
    assert "RLHF Workflow: From Reward Modeling to Online RLHF" in ada_txt
    assert "RLHF Workflow: From Reward Modeling to Online RLHF" in ada_html
    assert "WebRL: Training LLM Web Agents" in grace_txt
    assert "Vision-Language Generative Models via Cycle Consistency" in page
    # and one nobody asked for (radar occupancy prediction) is in no digest
    for text in (ada_txt, grace_txt, page):
        assert "MetaOcc" not in text
    # ada's profile excludes surveys
    assert not re.search(r"(?i)\bsurvey\b", ada_txt)
    # the email is a real multipart message with both parts
    message = eml(out / "ada.eml")
    assert message.get_content_type() == "multipart/alternative"
    assert "RLHF Workflow" in part(message, "plain")
    assert "RLHF Workflow" in part(message, "html")
    assert message["Subject"] == "Morning papers — 2026-11-23: 10 new"
    index = (example_dir / "examples" / "wiki" / "papers" / "index.md").read_text()
    assert "(<2026-11-23.md>)" in index


def test_rerun_on_the_same_local_date_delivers_nothing_new(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = str(example_dir / "config.example.toml")
    assert run_digest("run", "--config", config, "--now", "2026-11-23T07:30:00Z").returncode == 0
    out = example_dir / "examples" / "out" / "2026-11-23"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_digest("run", "--config", config, "--now", "2026-11-23T21:00:00Z")
    assert again.returncode == 0
    assert again.stderr.count("already delivered") == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_dry_run_records_and_writes_nothing(example_dir: Path, run_digest: RunDigest) -> None:
    config = str(example_dir / "config.example.toml")
    result = run_digest("run", "--config", config, "--dry-run", "--now", "2026-11-23T07:30:00Z")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stderr
    assert not (example_dir / "examples" / "out").exists()
    assert not (example_dir / "examples" / "wiki").exists()
    assert not (example_dir / "examples" / "state" / "digest.sqlite").exists()


def test_preview_writes_html_and_records_nothing(example_dir: Path, run_digest: RunDigest) -> None:
    config = str(example_dir / "config.example.toml")
    result = run_digest(
        "preview", "--config", config, "--subscriber", "ada", "--now", "2026-11-23T07:30:00Z"
    )
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_file() and "RLHF Workflow" in path.read_text()
    # the real run afterwards still delivers: preview recorded nothing
    run = run_digest("run", "--config", config, "--now", "2026-11-23T07:30:00Z")
    assert "ada 2026-11-23: 10 picks" in run.stderr


# --- 2. two days against a real HTTP server --------------------------------------------------


def _entries(path: Path) -> dict[str, str]:
    """link → title + summary, read with feedparser directly (not through digest)."""
    parsed = feedparser.parse(path.read_bytes())
    return {e.link: f"{e.title}\n{e.summary}" for e in parsed.entries}


def _matching(entries: dict[str, str], term: str) -> set[str]:
    # the term or its plural: profiles match inflections (a light stemmer)
    pattern = re.compile(rf"(?<!\w){re.escape(term)}s?(?!\w)", re.IGNORECASE)
    return {link for link, text in entries.items() if pattern.search(text)}


def test_second_day_sends_only_new_matching_entries_once(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    days = DATA / "two-days"
    http_server.set("/a.rss", (days / "feed-a-day1.rss").read_bytes(), "application/rss+xml")
    http_server.set("/b.atom", (days / "feed-b-day1.atom").read_bytes(), "application/atom+xml")
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
[digest]
title = "Two days"
state = "state.sqlite"
output = "out"
timezone = "UTC"
max_entries = 200

[[feeds]]
name = "A"
url = "{http_server.url("/a.rss")}"

[[feeds]]
name = "B"
url = "{http_server.url("/b.atom")}"

[profiles.lang]
keywords = {{ "language" = 1 }}
min_score = 0

[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "lang"
"""
    )
    day1 = {**_entries(days / "feed-a-day1.rss"), **_entries(days / "feed-b-day1.atom")}
    day2 = {**_entries(days / "feed-a-day2.rss"), **_entries(days / "feed-b-day2.atom")}
    expected_day1 = _matching(day1, "language")
    expected_day2 = _matching({k: v for k, v in day2.items() if k not in day1}, "language")
    shared = set(_entries(days / "feed-a-day2.rss")) & set(_entries(days / "feed-b-day2.atom"))
    assert expected_day1 and expected_day2 and shared - set(day1), "test data lost its point"

    first = run_digest("run", "--config", str(config), "--now", DAY1)
    assert first.returncode == 0, first.stderr
    sent1 = links((tmp_path / "out" / "2026-11-20" / "ada.txt").read_text())
    assert set(sent1) == expected_day1 and len(sent1) == len(set(sent1))

    http_server.set("/a.rss", (days / "feed-a-day2.rss").read_bytes(), "application/rss+xml")
    http_server.set("/b.atom", (days / "feed-b-day2.atom").read_bytes(), "application/atom+xml")
    second = run_digest("run", "--config", str(config), "--now", DAY2)
    assert second.returncode == 0, second.stderr
    sent2 = links((tmp_path / "out" / "2026-11-21" / "ada.txt").read_text())
    assert set(sent2) == expected_day2
    assert len(sent2) == len(set(sent2)), "an entry on both feeds was listed twice"
    assert not set(sent2) & set(sent1)
    # day 2's fetch sent day 1's validators back
    assert all("if-none-match" in r.headers for r in http_server.requests_for("/a.rss")[1:])

    # later the same day: both feeds answer 304, nothing is parsed, nothing is sent
    third = run_digest("run", "--config", str(config), "--now", "2026-11-21T12:00:00Z")
    assert third.returncode == 0, third.stderr
    assert [r.status for r in http_server.requests_for("/a.rss")] == [200, 200, 304]
    assert [r.status for r in http_server.requests_for("/b.atom")] == [200, 200, 304]
    assert "ada 2026-11-21: already delivered" in third.stderr


# --- 3 and 4. a real SMTP server with STARTTLS and AUTH ---------------------------------------


def _smtp_config(directory: Path, server: SMTPServer) -> Path:
    config = directory / "config.example.toml"
    text = config.read_text().replace(
        "# To send by email",
        f"""[smtp]
host = "{server.host}"
port = {server.port}
security = "starttls"
username = "{server.username}"
password_env = "DIGEST_SMTP_PASSWORD"
from = "Morning papers <digest@example.org>"
ca_file = "{server.ca_path}"
timeout = 10

# To send by email""",
    )
    config.write_text(text)
    return config


def test_each_subscriber_gets_one_multipart_message_over_starttls_and_auth(
    example_dir: Path, smtp_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = _smtp_config(example_dir, smtp_server)
    assert smtp_server.password
    env = {"DIGEST_SMTP_PASSWORD": smtp_server.password}
    result = run_digest("-v", "run", "--config", str(config), "--now", DAY1, env=env)
    assert result.returncode == 0, result.stderr

    by_rcpt = {tuple(m.rcpt_tos): m for m in smtp_server.messages}
    assert sorted(by_rcpt) == [("ada@example.org",), ("grace@example.org",)]
    for received in smtp_server.messages:
        assert received.login == smtp_server.username
        assert received.mail_from == "digest@example.org"
        message = received.message
        assert message.get_content_type() == "multipart/alternative"
        assert part(message, "plain") and part(message, "html")
        assert message["Message-ID"].endswith("@example.org>")
        assert message["Date"]
    assert "RLHF Workflow" in part(by_rcpt[("ada@example.org",)].message, "plain")
    # the secret is in no output and not in the state file
    assert smtp_server.password not in result.stderr + result.stdout
    state = example_dir / "examples" / "state" / "digest.sqlite"
    assert smtp_server.password.encode() not in state.read_bytes()

    again = run_digest("run", "--config", str(config), "--now", "2026-11-20T18:00:00Z", env=env)
    assert again.returncode == 0, again.stderr
    assert len(smtp_server.messages) == 2, "a re-run on the same day sent again"


def test_missing_password_variable_is_a_config_error(
    example_dir: Path, smtp_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = _smtp_config(example_dir, smtp_server)
    result = run_digest("run", "--config", str(config), "--now", DAY1)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "smtp.password_env" in result.stderr and "DIGEST_SMTP_PASSWORD" in result.stderr
    assert smtp_server.messages == []


def test_smtp_down_fails_records_nothing_and_next_run_delivers_the_same_picks(
    example_dir: Path, smtp_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = _smtp_config(example_dir, smtp_server)
    assert smtp_server.password
    env = {"DIGEST_SMTP_PASSWORD": smtp_server.password}
    preview = run_digest(
        "preview", "--config", str(config), "--subscriber", "ada", "--now", DAY1, env=env
    )
    expected = html_links(Path(preview.stdout.strip()).read_text())
    assert len(expected) == 10

    smtp_server.stop()
    down = run_digest("run", "--config", str(config), "--now", DAY1, env=env)
    assert down.returncode == 1
    assert "cannot use the SMTP server" in down.stderr
    assert "ada 2026-11-20: FAILED" in down.stderr
    state = example_dir / "examples" / "state" / "digest.sqlite"
    with closing(sqlite3.connect(state)) as db:
        sql = "SELECT status, count(*) FROM deliveries WHERE reader LIKE 'subscriber:%' GROUP BY 1"
        assert db.execute(sql).fetchall() == [("pending", 2)], "only in the outbox"

    smtp_server.start()
    up = run_digest("run", "--config", str(config), "--now", "2026-11-20T08:00:00Z", env=env)
    assert up.returncode == 0, up.stderr
    ada = [m for m in smtp_server.messages if m.rcpt_tos == ["ada@example.org"]]
    assert len(ada) == 1
    assert html_links(part(ada[0].message, "html")) == expected


def test_refused_recipient_fails_alone(
    example_dir: Path, smtp_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = _smtp_config(example_dir, smtp_server)
    assert smtp_server.password
    env = {"DIGEST_SMTP_PASSWORD": smtp_server.password}
    smtp_server.refuse("ada@example.org")
    result = run_digest("run", "--config", str(config), "--now", DAY1, env=env)
    assert result.returncode == 1
    assert "ada 2026-11-20: FAILED" in result.stderr and "550" in result.stderr
    assert [m.rcpt_tos for m in smtp_server.messages] == [["grace@example.org"]]


# --- 5. bad configs and broken feeds ----------------------------------------------------------


BAD_CONFIGS = {
    "unknown key": ("[digest]\ntitel = 'x'\n", "digest.titel"),
    "missing url": ("[[feeds]]\nname = 'A'\n", "feeds[0].url"),
    "unknown profile": (
        "[[feeds]]\nname='A'\nurl='a.xml'\n[profiles.p]\nkeywords={x=1}\n"
        "[[subscribers]]\nname='ada'\nemail='ada@example.org'\nprofile='nope'\n",
        "subscribers[0].profile",
    ),
    "bad zone": ("[digest]\ntimezone = 'Mars/Olympus'\n", "digest.timezone"),
}


def test_bad_config_is_one_line_naming_file_and_key_with_exit_2(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    for label, (text, key) in BAD_CONFIGS.items():
        config = tmp_path / f"{label.replace(' ', '-')}.toml"
        config.write_text(text + f"[[feeds]]\nname='web'\nurl='{http_server.url('/f.xml')}'\n")
        result = run_digest("run", "--config", str(config))
        assert result.returncode == 2, (label, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (label, lines)
        assert str(config) in lines[0] and key in lines[0], (label, lines[0])
    assert http_server.requests == [], "a bad config must fetch nothing"


def test_broken_feeds_are_named_and_do_not_stop_the_good_one(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    days = DATA / "two-days"
    http_server.set("/good.rss", (days / "feed-a-day1.rss").read_bytes(), "application/rss+xml")
    http_server.set("/broken.xml", b"<rss><channel><item><title>oops</chan", "application/xml")
    config = tmp_path / "digest.toml"
    config.write_text(
        f"""
[digest]
state = "state.sqlite"
output = "out"
max_entries = 100

[[feeds]]
name = "Broken XML"
url = "{http_server.url("/broken.xml")}"

[[feeds]]
name = "Missing"
url = "{http_server.url("/missing.rss")}"

[[feeds]]
name = "Good"
url = "{http_server.url("/good.rss")}"

[profiles.all]
keywords = {{ "language" = 1 }}
min_score = 0

[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "all"
"""
    )
    result = run_digest("run", "--config", str(config), "--now", DAY1)
    # the good feed's digest went out (and what the broken one's XML still held); the
    # missing feed was skipped, which exit status 1 says
    assert result.returncode == 1, result.stderr
    assert "1 feed failed (above); the others were read" in result.stderr
    assert "feed 'Broken XML': malformed feed" in result.stderr
    assert "feed 'Missing' failed: HTTP 404" in result.stderr
    sent = set(links((tmp_path / "out" / "2026-11-20" / "ada.txt").read_text()))
    assert sent == _matching(_entries(days / "feed-a-day1.rss"), "language")
    # the digest tells the reader which feeds are not working
    html = (tmp_path / "out" / "2026-11-20" / "ada.html").read_text()
    assert "Feeds with problems" in html and "Missing: HTTP 404" in html


def test_progress_bar_only_when_stderr_is_a_terminal(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = str(example_dir / "config.example.toml")
    plain = run_digest("collect", "--config", config, "--now", DAY1)
    assert plain.returncode == 0 and "fetching feeds" not in plain.stderr

    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(DIGEST), "collect", "--config", config, "--now", DAY2],
            stdout=subprocess.DEVNULL,
            stderr=secondary,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
        )
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closes when the process exits
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=60) == 0
    finally:
        os.close(primary)
    assert b"fetching feeds" in output


def test_archive_renders_the_markdown_pages_to_static_html(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = str(example_dir / "config.example.toml")
    for day in ("2026-11-23T07:30:00Z", "2026-11-24T07:30:00Z"):
        assert run_digest("run", "--config", config, "--now", day).returncode == 0
    out = example_dir / "site"
    result = run_digest("archive", "--config", config, "--out", str(out))
    assert result.returncode == 0, result.stderr
    index = (out / "index.html").read_text()
    assert index.index('href="vision/2026-11-24.html"') < index.index(
        'href="vision/2026-11-23.html"'
    )
    page = (out / "vision" / "2026-11-23.html").read_text()
    assert '<h2>1. <a href="https://huggingface.co/papers/ex-' in page
    assert "Vision-Language Generative Models via Cycle Consistency" in page
    assert "\\-" not in page and "\\(" not in page, "Markdown escapes leaked into the HTML"
    assert 'href="../index.html"' in page
    assert "Nothing new today." in (out / "vision" / "2026-11-24.html").read_text()


def test_feeds_shows_each_feeds_health_and_suggests_moving_the_config(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    feed = (DATA / "feeds" / "rss2.xml").read_bytes()
    http_server.set("/ok.rss", feed)
    http_server.set("/new.rss", feed)
    http_server.set_status("/old.rss", 308, {"Location": "/new.rss"})
    http_server.set_status("/gone.rss", 410)
    http_server.set_status("/down.rss", 503)
    feeds = {"ok": "/ok.rss", "moved": "/old.rss", "gone": "/gone.rss", "down": "/down.rss"}
    listed = "".join(
        f'[[feeds]]\nname = "{n}"\nurl = "{http_server.url(p)}"\n' for n, p in feeds.items()
    )
    config = tmp_path / "digest.toml"
    config.write_text(f'[digest]\nstate = "state.sqlite"\n{listed}')
    collected = run_digest("collect", "--config", str(config), "--now", DAY1)
    assert collected.returncode == 1, collected.stderr  # feed "down" failed
    assert "feed 'gone' is gone (HTTP 410 Gone)" in collected.stderr
    assert "feed 'down' failed: HTTP 503 Service Unavailable; next try 2026-11-20 07:00Z" in (
        collected.stderr
    )
    assert f"feed 'moved' moved permanently to {http_server.url('/new.rss')}" in collected.stderr
    config.write_text(config.read_text() + '[[feeds]]\nname = "added"\nurl = "added.rss"\n')

    result = run_digest("feeds", "--config", str(config), "--now", "2026-11-20T06:30:00Z")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.split("\n\n")[0].splitlines()
    assert header.split() == ["feed", "last", "success", "status", "entries", "next", "fetch",
                              "notes", "last", "error"]  # fmt: skip
    table = {row.split()[0]: row for row in rows}
    assert list(table) == ["ok", "moved", "gone", "down", "added"]
    assert re.match(r"ok +2026-11-20 06:00Z +200 +[1-9]\d* +now *$", table["ok"])
    assert re.search(rf"now +moved to {re.escape(http_server.url('/new.rss'))}$", table["moved"])
    assert re.search(r"410 .* never +gone since 2026-11-20 +HTTP 410 Gone$", table["gone"])
    assert re.search(
        r"down +never +503 +0 +2026-11-20 07:00Z +backing off \(1 failure in a row\) +HTTP 503",
        table["down"],
    )
    assert re.match(r"added +never +- +- +now +not fetched yet$", table["added"])
    assert f'please set url = "{http_server.url("/new.rss")}" in {config}' in result.stdout
