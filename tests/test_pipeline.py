"""One run wired together, in-process, on local feed files and a real SQLite file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from servers import HTTPServer

from digest import render
from digest.config import load_config
from digest.models import Config, Entry, FeedStatus
from digest.pipeline import collect_only, feed_problems, run
from digest.state import open_store

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


def test_subscribers_of_a_profile_get_their_own_digests_and_no_text_is_kept(
    tmp_path: Path,
) -> None:
    """Two subscribers of one profile get the same picks, whose rows render shares; each
    digest still names its own reader, and nothing rendered is held after the run (a daemon
    would keep the day's text until the next one)."""
    write_rss(tmp_path / "feed.rss", ["A reinforcement learning paper", "Reinforcement learning"])
    run(make_config(tmp_path, ["ada", "grace"]), DAY1)
    day = tmp_path / "out" / "2026-11-20"
    for part in ("txt", "html"):
        ada, grace = (day / f"ada.{part}").read_text(), (day / f"grace.{part}").read_text()
        assert "grace" not in ada and grace.replace("grace", "ada") == ada
    assert render._entry_view.cache_info().currsize == 0
    assert not render._LAYOUTS and not render._PICK_VIEWS


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
    with open_store(tmp_path / "state.sqlite") as store:
        assert [d.local_date.isoformat() for d in store.deliveries("subscriber:kiri")] == [
            "2026-11-21"
        ]


# --- collecting: one canonical entry per paper ---------------------------------------------

ARXIV = Path(__file__).resolve().parent / "data" / "arxiv"


def feeds_config(
    tmp_path: Path, feeds: list[tuple[str, str, str | None]], extra: str = ""
) -> Config:
    """A config with these (name, url, type) feeds and no readers."""
    blocks = "".join(
        f"[[feeds]]\nname = '{name}'\nurl = '{url}'\n" + (f"type = '{kind}'\n" if kind else "")
        for name, url, kind in feeds
    )
    (tmp_path / "digest.toml").write_text(
        f"[digest]\nstate = 'state.sqlite'\n{extra}\n{blocks}\n"
        "[profiles.p]\nkeywords = { x = 1 }\n"
    )
    return load_config(tmp_path / "digest.toml")


def stored(config: Config, after: datetime, until: datetime) -> dict[str, Entry]:
    with open_store(config.settings.state) as store:
        return {e.id: e for e in store.new_entries("reader", after, until)}


def test_one_arxiv_paper_through_three_kinds_of_feed_is_one_entry(
    tmp_path: Path, http_server: HTTPServer
) -> None:
    """v1 in an rss.arxiv.org listing, v2 in an API answer, and a Daily-Papers page."""
    for name, kind in [
        ("listing-rss.xml", "application/rss+xml"),
        ("api-v2.atom", "application/atom+xml"),
        ("daily-papers.json", "application/json"),
    ]:
        http_server.set(f"/{name}", (ARXIV / name).read_bytes(), kind)
    config = feeds_config(
        tmp_path,
        [
            ("listing", http_server.url("listing-rss.xml"), None),
            ("api", http_server.url("api-v2.atom"), "arxiv"),
            ("hf", http_server.url("daily-papers.json"), "daily-papers"),
        ],
    )
    reports = collect_only(config, DAY1)
    assert [r.error for r in reports] == [None, None, None]
    assert [(r.name, r.status, r.new) for r in reports] == [
        ("listing", "ok", 4),
        ("api", "ok", 0),
        ("hf", "ok", 0),
    ]
    entries = stored(config, DAY1 - timedelta(days=1), DAY1)
    assert sorted(entries) == [f"arxiv:2411.1000{i}" for i in range(1, 5)]
    paper = entries["arxiv:2411.10001"]
    assert paper.feeds == ("listing", "api", "hf")
    assert (paper.arxiv_id, paper.arxiv_version) == ("2411.10001", 2)
    assert paper.categories == ("cs.LG", "cs.AI")
    assert paper.authors == ("Ada Lovelace", "Alan Turing")
    # the next day, the same documents (served in full, not 304) bring nothing new
    for name in ("listing-rss.xml", "api-v2.atom", "daily-papers.json"):
        http_server.set(f"/{name}", (ARXIV / name).read_bytes() + b"\n")
    again = collect_only(config, DAY1 + timedelta(days=1))
    assert [(r.status, r.new) for r in again] == [("ok", 0)] * 3


def test_a_changed_guid_with_the_same_link_is_not_new(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    config = feeds_config(tmp_path, [("blog", "feed.rss", None)])
    item = "<item><title>Same post</title><link>https://blog.example/p/1</link>{}</item>"
    feed.write_text(
        f"<rss version='2.0'><channel>{item.format('<guid>urn:uuid:a</guid>')}</channel></rss>"
    )
    assert [r.new for r in collect_only(config, DAY1)] == [1]
    feed.write_text(
        f"<rss version='2.0'><channel>{item.format('<guid>urn:uuid:b</guid>')}</channel></rss>"
    )
    assert [r.new for r in collect_only(config, DAY1 + timedelta(days=1))] == [0]


def slug(title: str) -> str:
    return re.sub(r"\W+", "-", title.lower())


def dated_rss(path: Path, items: list[tuple[str, datetime]]) -> None:
    body = "".join(
        f"<item><title>{escape(title)}</title>"
        f"<link>https://{path.stem}.example/{slug(title)}</link>"
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
        for title, when in items
    )
    path.write_text(f"<rss version='2.0'><channel><title>t</title>{body}</channel></rss>")


def test_a_feed_added_later_brings_only_its_last_two_days(tmp_path: Path) -> None:
    old = [(f"Archived post number {i}", DAY1 - timedelta(days=30 + i)) for i in range(40)]
    dated_rss(tmp_path / "a.rss", old[:3])
    config = feeds_config(tmp_path, [("a", "a.rss", None)])
    # a fresh state file shows what the feeds hold, however old
    assert [r.new for r in collect_only(config, DAY1)] == [3]
    day2 = DAY1 + timedelta(days=1)
    recent = [("Posted yesterday", day2 - timedelta(days=1)), ("Posted this morning", day2)]
    dated_rss(tmp_path / "b.rss", recent + old)
    config = feeds_config(tmp_path, [("a", "a.rss", None), ("b", "b.rss", None)])
    assert [r.new for r in collect_only(config, day2)] == [0, 2]
    titles = {e.title for e in stored(config, DAY1, day2).values()}
    assert titles == {"Posted yesterday", "Posted this morning"}
    with open_store(config.settings.state) as store:
        assert store.count_entries() == 3 + 42  # the backlog is kept, as known entries
    # the backlog never becomes new later, and the feed's next new post is new as usual
    dated_rss(tmp_path / "b.rss", [("Posted on day three", day2 + timedelta(days=1)), *old])
    assert [r.new for r in collect_only(config, day2 + timedelta(days=1))] == [0, 1]


def test_an_old_dated_entry_seen_for_the_first_time_on_a_known_feed_is_new(
    tmp_path: Path,
) -> None:
    dated_rss(tmp_path / "a.rss", [("First post of the blog", DAY1)])
    config = feeds_config(tmp_path, [("a", "a.rss", None)])
    collect_only(config, DAY1)
    late = ("A post published long ago, found today", DAY1 - timedelta(days=400))
    dated_rss(tmp_path / "a.rss", [("First post of the blog", DAY1), late])
    assert [r.new for r in collect_only(config, DAY1 + timedelta(days=1))] == [1]


def test_pruned_entries_never_come_back_as_new(tmp_path: Path) -> None:
    dated_rss(tmp_path / "a.rss", [("An evergreen post on the blog", DAY1)])
    config = feeds_config(tmp_path, [("a", "a.rss", None)], extra="keep_days = 30")
    assert [r.new for r in collect_only(config, DAY1)] == [1]
    later = DAY1 + timedelta(days=31)
    assert [r.new for r in collect_only(config, later)] == [0]
    with open_store(config.settings.state) as store:
        assert store.count_entries() == 0  # pruned at the end of that run
        assert store.entry_keys_count() == 2  # its URL and its title, 16 bytes each
    assert [r.new for r in collect_only(config, later + timedelta(days=1))] == [0]
