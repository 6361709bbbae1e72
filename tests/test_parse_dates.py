"""Entry dates: an impossible or unholdable date is no date for that entry, never an error;
zone names read as feedparser reads them; both parse paths agree date by date."""

from __future__ import annotations

import calendar
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from conftest import DATA, SHARED, RunDigest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.parse import fast_parse, parse_feed, parse_with_feedparser

DATE_TESTS = SHARED / "data" / "feed-corpus" / "feedparser" / "date_tests.json"
GOOD = "2026-11-20T08:30:00+02:00"
GOOD_UTC = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def rss(date: str, tag: str = "pubDate") -> bytes:
    return (
        "<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'><channel>"
        f"<item><title>Odd</title><link>https://x.example/1</link><{tag}>{date}</{tag}></item>"
        f"<item><title>Good</title><link>https://x.example/2</link><{tag}>{GOOD}</{tag}></item>"
        "</channel></rss>"
    ).encode()


def atom(date: str, tag: str = "published") -> bytes:
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>"
        f"<entry><title>Odd</title><id>https://x.example/1</id><{tag}>{date}</{tag}></entry>"
        f"<entry><title>Good</title><id>https://x.example/2</id><{tag}>{GOOD}</{tag}></entry>"
        "</feed>"
    ).encode()


def json_feed(date: str) -> bytes:
    items = [
        {"id": "1", "title": "Odd", "date_published": date},
        {"id": "2", "title": "Good", "date_published": GOOD},
    ]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()


def daily_papers(date: str) -> bytes:
    items = [
        {"paper": {"id": "2411.00001"}, "title": "Odd", "publishedAt": date},
        {"paper": {"id": "2411.00002"}, "title": "Good", "publishedAt": GOOD},
    ]
    return json.dumps(items).encode()


SHAPES: dict[str, Callable[[str], bytes]] = {
    "rss pubDate": rss,
    "rss dc:date": lambda d: rss(d, "dc:date"),
    "atom published": atom,
    "atom updated": lambda d: atom(d, "updated"),
    "json feed": json_feed,
    "daily papers": daily_papers,
}
IMPOSSIBLE = [
    "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
    "9999-12-31T23:59:59Z",  # holdable, but a day later is not: the state file refuses it
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC
    "0000-00-00T00:00:00Z",  # MySQL's zero date
    "0000-00-00 00:00:00",
    "Fri, 31 Dec 9999 23:59:59 -0500",
    "Mon, 01 Jan 0001 00:00:00 +0100",
    "Thu, 01 Jan 0100 00:00:01 +0100",
    "2026-11-20T08:30:00+25:00",  # malformed offsets
    "2026-11-20T08:30:00+99:99",
    "2026-11-20T08:30:00+0a:00",
    "2026-11-20T08:30:00-5:00",
    "Fri, 20 Nov 2026 08:30:00 +9999",
    "Fri, 20 Nov 2026 08:30:00 +0199",
]


@pytest.mark.parametrize("date", IMPOSSIBLE)
@pytest.mark.parametrize("shape", SHAPES)
def test_an_impossible_date_is_no_date_for_that_entry_only(shape: str, date: str) -> None:
    odd, good = parse_feed("feed", SHAPES[shape](date)).entries
    assert (odd.title, odd.published) == ("Odd", None)
    assert (good.title, good.published) == ("Good", GOOD_UTC)


@pytest.mark.parametrize("date", IMPOSSIBLE)
@pytest.mark.parametrize("shape", ["rss pubDate", "atom published"])
def test_both_paths_agree_on_an_impossible_date(shape: str, date: str) -> None:
    body = SHAPES[shape](date)
    reference = parse_with_feedparser("feed", body).entries
    assert fast_parse(body) in (None, reference)
    assert reference[0].published is None


# feedparser's own table (feedparser/datetimes/rfc822.py): names email.utils does not know
ZONES = {"MET": 1, "MEST": 2, "ET": -5, "CT": -6, "MT": -7, "PT": -8, "AT": -4, "EST": -5}


@pytest.mark.parametrize(("zone", "hours"), ZONES.items(), ids=ZONES)
@pytest.mark.parametrize("shape", ["rss pubDate", "atom updated"])
def test_zone_names_give_what_feedparser_gives(shape: str, zone: str, hours: int) -> None:
    body = SHAPES[shape](f"Fri, 20 Nov 2026 08:30:00 {zone}")
    expected = datetime(2026, 11, 20, 8 - hours, 30, tzinfo=UTC)
    odd, _ = parse_feed("feed", body).entries
    assert odd.published == expected
    bare = feedparser.parse(body).entries[0]
    when = bare.get("published_parsed") or bare.get("updated_parsed")
    assert datetime.fromtimestamp(calendar.timegm(when), UTC) == expected


def feedparser_dates() -> list[str]:
    if not DATE_TESTS.is_file():
        return []
    return sorted({case["date"] for case in json.loads(DATE_TESTS.read_text())})


@pytest.mark.skipif(not DATE_TESTS.is_file(), reason=f"{DATE_TESTS} is absent")
@pytest.mark.parametrize("shape", ["rss pubDate", "rss dc:date", "atom published"])
def test_fast_path_reads_feedparsers_test_dates_as_the_feedparser_path(shape: str) -> None:
    accepted = 0
    for date in [*feedparser_dates(), *IMPOSSIBLE]:
        body = SHAPES[shape](date)
        fast = fast_parse(body)
        if fast is not None:
            accepted += 1
            assert fast == parse_with_feedparser("feed", body).entries, date
    assert accepted >= 10  # the common forms stay on the fast path


# --- through the CLI ------------------------------------------------------------------------


def test_collect_stores_a_feed_with_impossible_dates_beside_a_good_one(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    items = "".join(
        f"<item><title>Odd date {n}</title><link>https://x.example/{n}</link>"
        f"<pubDate>{date}</pubDate></item>"
        for n, date in enumerate(IMPOSSIBLE)
    )
    (tmp_path / "odd.rss").write_text(f"<rss version='2.0'><channel>{items}</channel></rss>")
    shutil.copy(DATA / "feeds" / "rss2.xml", tmp_path / "good.rss")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\nstate = "state.sqlite"\n'
        '[[feeds]]\nname = "odd"\nurl = "odd.rss"\n'
        '[[feeds]]\nname = "good"\nurl = "good.rss"\n'
    )
    collected = run_digest("collect", "--config", str(config), "--now", "2026-11-22T06:00:00Z")
    assert "Traceback" not in collected.stderr
    # nothing was skipped: every entry is stored, the odd ones without a date
    assert collected.returncode == 0, collected.stderr
    assert f"{2 + len(IMPOSSIBLE)} new entries, 0 failed" in collected.stderr
    feeds = run_digest("feeds", "--config", str(config), "--now", "2026-11-22T06:00:00Z")
    assert feeds.returncode == 0, feeds.stderr
    rows = {line.split()[0]: line.split() for line in feeds.stdout.splitlines()[1:3]}
    assert rows["odd"][4] == str(len(IMPOSSIBLE))
    assert rows["good"][4] == "2"


# --- anything at all ------------------------------------------------------------------------

date_pieces = st.sampled_from(
    ["0000", "0001", "1899", "1900", "2026", "9998", "9999", "-", "-00", "-02", "-11", "-30",
     "-31", "T", " ", "00", "08", "23", "24", ":", ":00", ":30", ":59", ":60", ":99", ".5",
     "Z", "+", "-", "+01:00", "-05:00", "+25:00", "+0a:00", "+9999", "-0000", "+14", "GMT",
     "MET", "ET", "PT", "EST", "Fri,", "31", "Dec", "Feb", "Nov", "Etc/GMT", "UT"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(date_pieces, min_size=1, max_size=12).map("".join), st.sampled_from(sorted(SHAPES)))
def test_any_date_is_a_date_or_none_and_both_paths_agree(date: str, shape: str) -> None:
    odd, good = parse_feed("feed", SHAPES[shape](date)).entries
    assert good.published == GOOD_UTC
    if odd.published is not None:
        assert odd.published.utcoffset() is not None and 1900 <= odd.published.year <= 9998
    if shape.startswith(("rss", "atom")):
        body = SHAPES[shape](date)
        assert fast_parse(body) in (None, parse_with_feedparser("feed", body).entries)
