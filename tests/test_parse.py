"""parse_feed: every supported kind of document → ParsedEntry, detected by content."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DATA, ROOT, SHARED

from digest.dedupe import canonical_id
from digest.errors import FeedError
from digest.models import ParsedEntry
from digest.parse import ParsedFeed, parse_feed

FEEDS = DATA / "feeds"
REAL_FEEDS = SHARED / "data" / "real-feeds"
EXAMPLES = ROOT / "examples" / "feeds"


def parse(name: str) -> ParsedFeed:
    return parse_feed(name, (FEEDS / name).read_bytes())


def by_title(name: str) -> dict[str, ParsedEntry]:
    return {e.title: e for e in parse(name).entries}


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- the supported formats -----------------------------------------------------------------


def test_rss2() -> None:
    feed = parse("rss2.xml")
    assert feed.problem is None
    first, second = feed.entries
    assert first == ParsedEntry(
        title="Reward models & RLHF",
        guid="urn:example:paper:1",
        link="https://papers.example.org/p/1",
        summary="We train a reward model from human preferences.",
        published=utc(2026, 11, 20, 6, 30),  # 08:30 +0200
        authors=("Ada Lovelace",),
    )
    assert (second.guid, second.link) == (None, "https://papers.example.org/p/2")
    assert second.published == utc(2026, 11, 21, 6, 0)


def test_atom_prefers_full_content_and_published_date() -> None:
    scaled, updated_only = parse("atom.xml").entries
    assert scaled.title == "Vision-language models at scale"
    assert scaled.guid == "tag:papers.example.org,2026:3"
    assert scaled.link == "https://papers.example.org/p/3"
    assert scaled.summary == "The full text: we scale vision-language models."
    assert scaled.published == utc(2026, 11, 20, 12, 0)  # 07:00 -0500, not <updated>
    assert scaled.authors == ("Grace Hopper", "Alan Turing")
    assert updated_only.published == utc(2026, 11, 19, 22, 15)  # 23:15 +0100


def test_json_feed_1_1() -> None:
    tools, note = parse("jsonfeed.json").entries
    assert tools == ParsedEntry(
        title="Agents that use tools",
        guid="https://papers.example.org/p/7",
        link="https://papers.example.org/p/7",
        summary="Agents call tools & check the results.",
        published=utc(2026, 11, 20, 8, 0),  # 09:00 +01:00
        authors=("Grace Hopper", "Ada Lovelace"),
    )
    assert (note.guid, note.link) == ("8", None)
    assert note.title == "A note without a title, about retrieval."
    assert note.published == utc(2026, 11, 21, 6, 0)  # date_modified when nothing else


def test_daily_papers_json() -> None:
    webrl, plain = parse("daily-papers.json").entries
    assert webrl == ParsedEntry(
        title="WebRL: Training LLM Web Agents",
        guid="https://huggingface.co/papers/2411.00001",
        link="https://huggingface.co/papers/2411.00001",
        summary="We train web agents with online curriculum reinforcement learning.",
        published=utc(2026, 11, 20, 6, 0),
        authors=("Ann Author", "Bo Writer"),
        organisation="Example University",
        upvotes=42,
        arxiv_id="2411.00001",
    )
    assert plain.link == "https://huggingface.co/papers/2411.00002"
    assert (plain.authors, plain.upvotes) == ((), 0)
    assert not plain.organisation


@pytest.mark.parametrize("name", ["rss2.xml", "jsonfeed.json", "daily-papers.json"])
def test_kind_is_detected_by_content_not_name(name: str) -> None:
    body = (FEEDS / name).read_bytes()
    expected = parse_feed(name, body).entries
    # a UTF-8 BOM and blank lines, as some servers send, and a name that says nothing
    assert parse_feed("feed", b"\xef\xbb\xbf\n  " + body).entries == expected


# --- text --------------------------------------------------------------------------------


def test_summary_html_becomes_plain_text_without_script_or_style() -> None:
    entry = by_title("html-summaries.rss")["scripts and styles"]
    assert entry.summary == "Visible bold text."


def test_summary_entities_are_decoded() -> None:
    entry = by_title("html-summaries.rss")["entities"]
    assert entry.summary == "Tom & Jerry <3 — café"


def test_paragraphs_and_line_breaks_keep_words_apart() -> None:
    entry = by_title("html-summaries.rss")["paragraphs and line breaks"]
    assert entry.summary.split() == [
        "First",
        "paragraph.",
        "Second",
        "line",
        "one",
        "line",
        "two",
        "alpha",
        "beta",
    ]


def test_item_without_title_is_titled_by_the_start_of_its_text() -> None:
    long, short = parse("untitled.rss").entries
    start = "Today I moved the blog to a new server and everything is faster than before"
    assert long.title.startswith(start)
    assert long.title.endswith("…")
    assert len(long.title) <= 81
    shown = long.title.removesuffix("…")
    assert long.summary.startswith(shown)
    assert not long.summary[len(shown)].isalnum(), "cut in the middle of a word"
    assert short.title == "Short note."


# --- documents that are not feeds --------------------------------------------------------


NOT_FEEDS = {
    "malformed.xml": (FEEDS / "malformed.xml").read_bytes(),
    "not-a-feed.html": (FEEDS / "not-a-feed.html").read_bytes(),
    "not-a-feed.json": (FEEDS / "not-a-feed.json").read_bytes(),
    "truncated.json": b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
    "empty body": b"",
}


@pytest.mark.parametrize(("name", "body"), NOT_FEEDS.items(), ids=NOT_FEEDS.keys())
def test_unreadable_document_raises_feed_error_naming_the_feed(name: str, body: bytes) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(f"Feed {name}", body)
    assert info.value.feed == f"Feed {name}"
    assert f"Feed {name}" in str(info.value)


def test_malformed_xml_with_entries_keeps_them_and_reports_a_problem() -> None:
    feed = parse("recoverable.rss")
    assert [e.title for e in feed.entries] == ["Salt & pepper"]
    assert feed.problem is not None
    assert "malformed" in feed.problem


# --- real documents ----------------------------------------------------------------------


def sources_table() -> dict[str, int]:
    """file name → entries, from the table in SOURCES.md (header row names the columns)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in (REAL_FEEDS / "SOURCES.md").read_text().splitlines()
        if line.startswith("|") and not line.startswith("|--")
    ]
    header, *body = rows
    file_col, entries_col = header.index("file"), header.index("entries")
    return {row[file_col]: int(row[entries_col].replace(",", "")) for row in body}


REAL_FILES = (
    sorted(p.name for p in REAL_FEEDS.iterdir() if p.name != "SOURCES.md")
    if REAL_FEEDS.is_dir()
    else [pytest.param("", marks=pytest.mark.skip(reason=f"{REAL_FEEDS} is absent"))]
)


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_feed_parses_to_the_documented_entries(name: str) -> None:
    expected = sources_table()
    assert name in expected, f"{name} is not in SOURCES.md"
    feed = parse_feed(name, (REAL_FEEDS / name).read_bytes())
    assert len(feed.entries) == expected[name]
    assert feed.problem is None  # SOURCES.md: all well-formed
    for entry in feed.entries:
        assert entry.title.strip()
        assert entry.published is not None, entry.title
        assert entry.published.utcoffset() == timedelta(0), entry.title


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_example_feed_parses(path: Path) -> None:
    feed = parse_feed(path.name, path.read_bytes())
    assert feed.problem is None
    assert len(feed.entries) > 10
    assert all(e.title.strip() and e.link and e.published for e in feed.entries)


def test_same_paper_on_two_example_pages_has_one_canonical_id() -> None:
    ids_by_title: dict[str, set[str]] = defaultdict(set)
    pages_by_title: dict[str, set[str]] = defaultdict(set)
    for path in sorted(EXAMPLES.iterdir()):
        for entry in parse_feed(path.name, path.read_bytes()).entries:
            ids_by_title[entry.title].add(canonical_id(entry, f"file://{path}"))
            pages_by_title[entry.title].add(path.name)
    on_several = [title for title, pages in pages_by_title.items() if len(pages) > 1]
    assert "Modeling of learning curves with applications to pos tagging" in on_several
    for title in on_several:
        (paper_id,) = ids_by_title[title]
        assert re.fullmatch(r"https://huggingface\.co/papers/[\w.-]+", paper_id), paper_id
