"""One run wired together, in-process, on local feed files and a real SQLite file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from digest.config import load_config
from digest.models import Config, FeedStatus
from digest.pipeline import feed_problems, run
from digest.state import Store

DAY1 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def write_rss(path: Path, titles: list[str]) -> None:
    items = "".join(
        f"<item><title>{escape(t)}</title><link>https://papers.example/{i}</link>"
        f"<guid>https://papers.example/{i}</guid>"
        f"<description>About {escape(t)}.</description></item>"
        for i, t in enumerate(titles)
    )
    path.write_text(f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>")


def make_config(tmp_path: Path, subscribers: list[str], extra: str = "") -> Config:
    people = "".join(
        f"[[subscribers]]\nname = '{name}'\nemail = '{name}@example.org'\nprofile = 'rl'\n"
        for name in subscribers
    )
    (tmp_path / "digest.toml").write_text(
        f"""
[digest]
title = "Papers"
state = "state.sqlite"
output = "out"
timezone = "UTC"

[[feeds]]
name = "local"
url = "feed.rss"

[profiles.rl]
keywords = {{ "reinforcement learning" = 1 }}

{people}
{extra}
"""
    )
    return load_config(tmp_path / "digest.toml")


def titles_in(path: Path) -> list[str]:
    return re.findall(r"^\d+\. (.+)$", path.read_text(), re.MULTILINE)


def test_a_subscriber_added_later_gets_only_the_last_24_hours(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    write_rss(feed, ["Old reinforcement learning paper"])
    run(make_config(tmp_path, ["ada"]), DAY1)
    write_rss(feed, ["Old reinforcement learning paper", "New reinforcement learning paper"])
    run(make_config(tmp_path, ["ada"]), DAY1 + timedelta(days=3))
    # grace joins 23 hours after the new paper was first seen and days after the old one
    report = run(make_config(tmp_path, ["ada", "grace"]), DAY1 + timedelta(days=4, hours=-1))
    assert titles_in(tmp_path / "out" / "2026-11-24" / "grace.txt") == [
        "New reinforcement learning paper"
    ]
    assert [d.outcome for d in report.deliveries] == ["empty", "written"]


def test_nothing_new_sends_no_email_but_the_next_digest_starts_there(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    write_rss(feed, ["Unrelated paper on compilers"])
    config = make_config(tmp_path, ["ada"])
    first = run(config, DAY1)
    assert [d.outcome for d in first.deliveries] == ["empty"]
    assert not (tmp_path / "out").exists()
    write_rss(feed, ["Unrelated paper on compilers", "A reinforcement learning paper"])
    run(config, DAY1 + timedelta(days=1))
    assert titles_in(tmp_path / "out" / "2026-11-21" / "ada.txt") == [
        "A reinforcement learning paper"
    ]


def test_markdown_pages_say_when_nothing_is_new_and_the_index_is_newest_first(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.rss"
    write_rss(feed, ["A reinforcement learning paper"])
    pages = "[[markdown]]\nprofile = 'rl'\npath = 'wiki/{date}.md'\nindex = 'wiki/index.md'\n"
    config = make_config(tmp_path, [], pages)
    for day in range(3):
        run(config, DAY1 + timedelta(days=day))
    assert "A reinforcement learning paper" in (tmp_path / "wiki" / "2026-11-20.md").read_text()
    assert "Nothing new today." in (tmp_path / "wiki" / "2026-11-21.md").read_text()
    index = (tmp_path / "wiki" / "index.md").read_text()
    dates = re.findall(r"\[(\d{4}-\d\d-\d\d)\]\(<(\S+?)>\)", index)
    assert dates == [(f"2026-11-{d}", f"2026-11-{d}.md") for d in (22, 21, 20)]


def test_a_feed_is_listed_as_a_problem_once_it_has_not_worked_for_a_day(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, ["ada"])
    url = config.feeds[0].url

    def problems(**status: object) -> list[str]:
        statuses = {url: FeedStatus(url, **status)}  # type: ignore[arg-type]
        return feed_problems(config, statuses, DAY1)

    assert problems(last_error="HTTP 500", last_success=DAY1 - timedelta(hours=3)) == []
    assert problems(last_error="HTTP 500", last_success=DAY1 - timedelta(days=2)) == [
        "local: HTTP 500 (since 2026-11-18)"
    ]
    assert problems(last_error="HTTP 404") == ["local: HTTP 404 (never worked)"]
    assert problems(last_success=DAY1 - timedelta(days=9)) == []


def test_the_local_date_is_the_subscribers_own(tmp_path: Path) -> None:
    write_rss(tmp_path / "feed.rss", ["A reinforcement learning paper"])
    make_config(tmp_path, [])
    text = (tmp_path / "digest.toml").read_text() + (
        "[[subscribers]]\nname = 'kiri'\nemail = 'kiri@example.org'\nprofile = 'rl'\n"
        "timezone = 'Pacific/Auckland'\n"
    )
    (tmp_path / "digest.toml").write_text(text)
    # 20:00 UTC on the 20th is already the 21st in Auckland
    run(load_config(tmp_path / "digest.toml"), datetime(2026, 11, 20, 20, 0, tzinfo=UTC))
    assert (tmp_path / "out" / "2026-11-21" / "kiri.eml").exists()
    with Store.open(tmp_path / "state.sqlite") as store:
        assert [d.local_date.isoformat() for d in store.deliveries("subscriber:kiri")] == [
            "2026-11-21"
        ]
