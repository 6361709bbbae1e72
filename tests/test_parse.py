"""parse_feed: every supported kind of document → ParsedEntry, detected by content."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DATA, ROOT, SHARED
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from servers import HTTPServer

from digest.dedupe import canonical_id
from digest.errors import FeedError
from digest.models import ParsedEntry
from digest.parse import (
    XML_PARSER,
    ParsedFeed,
    arxiv_ref,
    fast_parse,
    parse_feed,
    parse_with_feedparser,
)

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


# --- the fast path gives what feedparser gives ---------------------------------------------

FAST_PATH_FILES = [
    *(
        [p for p in sorted(REAL_FEEDS.iterdir()) if p.name != "SOURCES.md"]
        if REAL_FEEDS.is_dir()
        else []
    ),
    *sorted(EXAMPLES.glob("*.[ar][ts]*")),
    *sorted((DATA / "arxiv").glob("*.[xa][mt]*")),
    *sorted((DATA / "two-days").iterdir()),
    FEEDS / "rss2.xml",
    FEEDS / "atom.xml",
    FEEDS / "html-summaries.rss",
    FEEDS / "untitled.rss",
]


@pytest.mark.parametrize("path", FAST_PATH_FILES, ids=lambda p: p.name)
def test_fast_path_equals_feedparser(path: Path) -> None:
    """Same ids, titles, links, dates, plain-text summaries, authors, categories, arXiv
    fields: whole ParsedEntry records compared, entry by entry."""
    body = path.read_bytes()
    fast = fast_parse(body)
    reference = parse_with_feedparser(path.name, body).entries
    assert reference
    if fast is not None:
        assert len(fast) == len(reference)
        for mine, theirs in zip(fast, reference, strict=True):
            assert mine == theirs
    assert parse_feed(path.name, body).entries == reference


def test_fast_path_takes_most_real_feeds() -> None:
    if not REAL_FEEDS.is_dir():
        pytest.skip(f"{REAL_FEEDS} is absent")
    files = [p for p in REAL_FEEDS.iterdir() if p.name != "SOURCES.md"]
    fast = [p.name for p in files if fast_parse(p.read_bytes()) is not None]
    assert len(fast) >= len(files) * 2 // 3, fast
    assert {"arxiv-cs_ai.xml", "lionelsy-arxiv15.rss", "nnw-russcox.atom"} <= set(fast)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE rss><rss version='2.0'><channel><item><title>t</title></item></channel></rss>",
        b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>",
        b"<rss version='2.0'><channel><item><title>t</title><pubDate>someday</pubDate>"
        b"</item></channel></rss>",
        b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><title type='xhtml'>"
        b"<div xmlns='http://www.w3.org/1999/xhtml'>t</div></title></entry></feed>",
        b"<rss version='2.0'><channel><item><title>t</title></item></channel>",
        b"<rss version='2.0'><channel><title>c</title></channel><item><title>t</title></item>"
        b"</rss>",
    ],
    ids=["doctype", "rss1", "odd date", "xhtml", "broken", "item outside the channel"],
)
def test_odd_documents_go_to_feedparser(body: bytes) -> None:
    assert fast_parse(body) is None


# --- arXiv -----------------------------------------------------------------------------------


def test_arxiv_listing_keeps_id_version_announce_type_categories_and_authors() -> None:
    entries = parse_feed("cs.LG", (DATA / "arxiv" / "listing-rss.xml").read_bytes()).entries
    fields = [(e.arxiv_id, e.arxiv_version, e.announce_type, e.categories) for e in entries]
    assert fields == [
        ("2411.10001", 1, "new", ("cs.LG", "cs.AI")),
        ("2411.10002", 1, "cross", ("cs.CL",)),
        ("2411.10003", 2, "replace", ("cs.CV", "cs.LG")),
        ("2411.10004", 2, "replace-cross", ("stat.ML", "cs.LG")),
    ]
    assert entries[2].authors == ("Edsger Dijkstra", "Barbara Liskov", "Donald Knuth")
    # the listing's "arXiv:… Announce Type: … Abstract:" preamble is not part of the text
    assert entries[0].summary.startswith("3D occupancy prediction")


def test_arxiv_api_entry_keeps_version_and_primary_category_first() -> None:
    first = parse_feed("api", (DATA / "arxiv" / "api-v2.atom").read_bytes()).entries[0]
    assert (first.arxiv_id, first.arxiv_version, first.announce_type) == ("2411.10001", 2, None)
    assert first.categories == ("cs.LG", "cs.AI")
    assert first.authors == ("Ada Lovelace", "Alan Turing")
    assert first.published == utc(2026, 11, 20, 17, 0)


def test_daily_papers_item_knows_its_arxiv_id() -> None:
    (item,) = parse_feed("hf", (DATA / "arxiv" / "daily-papers.json").read_bytes()).entries
    assert (item.arxiv_id, item.link) == ("2411.10001", "https://huggingface.co/papers/2411.10001")


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("https://arxiv.org/abs/2401.00001v2", ("2401.00001", 2)),
        ("oai:arXiv.org:2604.21935v1", ("2604.21935", 1)),
        ("https://arxiv.org/pdf/2401.00001.pdf", ("2401.00001", None)),
        ("http://arxiv.org/abs/hep-th/9901001v3", ("hep-th/9901001", 3)),
        ("https://huggingface.co/papers/2401.00001", ("2401.00001", None)),
        ("arXiv:0704.0001", ("0704.0001", None)),
        ("https://arxiv.org/abs/2401.000011", None),
        ("https://example.org/abs/2401.00001", None),
    ],
)
def test_arxiv_ref(text: str, ref: tuple[str, int | None] | None) -> None:
    assert arxiv_ref(text) == ref


# --- declared types --------------------------------------------------------------------------


def test_declared_type_must_match_the_document() -> None:
    atom = (FEEDS / "atom.xml").read_bytes()
    assert parse_feed("a", atom, "atom").entries == parse_feed("a", atom).entries
    with pytest.raises(FeedError, match='type = "rss" but the document is atom'):
        parse_feed("a", atom, "rss")
    papers = (FEEDS / "daily-papers.json").read_bytes()
    with pytest.raises(FeedError, match='type = "json" but the document is not a JSON Feed'):
        parse_feed("p", papers, "json")
    assert parse_feed("p", papers, "daily-papers").entries == parse_feed("p", papers).entries


def test_declared_arxiv_type_splits_authors_of_any_listing() -> None:
    body = (
        b"<rss version='2.0'><channel><item><title>A paper about arXiv listings</title>"
        b"<link>https://arxiv.org/abs/2401.00007</link>"
        b"<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>Ann One, Bo Two and Cy Three"
        b"</dc:creator></item></channel></rss>"
    )
    (plain,) = parse_feed("x", body).entries
    (arxiv,) = parse_feed("x", body, "arxiv").entries
    assert plain.authors == ("Ann One, Bo Two and Cy Three",)
    assert arxiv.authors == ("Ann One", "Bo Two", "Cy Three")
    assert arxiv.arxiv_id == plain.arxiv_id == "2401.00007"


# --- documents that are reported -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (b"  \n\t", "empty document"),
        (b"<html><body>Moved</body></html>", "not an RSS, Atom or JSON feed"),
        (b"<rss version='2.0'><chan", "not a valid RSS, Atom or JSON feed"),
    ],
)
def test_unusable_documents_are_reported_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed("feed", body)


def test_truncated_feed_keeps_what_it_can_and_is_reported() -> None:
    feed = parse_feed("feed", b"<rss version='2.0'><channel><item><title>Kept</title></ite")
    assert [e.title for e in feed.entries] == ["Kept"]
    assert feed.problem is not None and "malformed feed, 1 entries recovered" in feed.problem


def test_misdeclared_encoding_is_read_and_reported() -> None:
    # Latin-1 bytes in a document that says it is UTF-8
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        "<item><title>Café au lait</title><link>https://x.example/1</link></item>"
        "</channel></rss>"
    ).encode("latin-1")
    assert fast_parse(body) is None
    feed = parse_feed("feed", body)
    assert [e.link for e in feed.entries] == ["https://x.example/1"]
    assert feed.problem is not None and "malformed" in feed.problem


# --- hostile XML -----------------------------------------------------------------------------

LAUGHS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
)  # &lol9; would be 10^9 "lol"s


def billion_laughs(one_line: bool) -> bytes:
    dtd = f'<!ENTITY lol0 "lol">\n{LAUGHS}'
    if one_line:
        dtd = dtd.replace("\n", "")
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{dtd}]>\n'
        "<rss version='2.0'><channel><title>t</title><item><title>Laughs &lol9;</title>"
        "<link>https://x.example/1</link><description>&lol9;</description></item>"
        "</channel></rss>"
    ).encode()


def external_entities(secret: Path, server: HTTPServer) -> bytes:
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss SYSTEM "{server.url("dtd")}" [\n'
        f'<!ENTITY file SYSTEM "file://{secret}">\n'
        f'<!ENTITY web SYSTEM "{server.url("entity")}">\n'
        f'<!ENTITY % param SYSTEM "{server.url("param")}">\n'
        "%param;\n]>\n"
        "<rss version='2.0'><channel><title>t</title><item><title>Secret: &file;</title>"
        "<link>https://x.example/1</link><description>Web: &web;</description></item>"
        "</channel></rss>"
    ).encode()


PARSERS: dict[str, Callable[[bytes], object]] = {
    "parse_feed": lambda body: parse_feed("hostile", body),
    "fast path": fast_parse,
    "feedparser": lambda body: parse_with_feedparser("hostile", body),
    "lxml parser": lambda body: etree.tostring(etree.fromstring(body, XML_PARSER)),
}


def run_hostile(parser: str, body: bytes) -> str:
    """Parse within a second; what came out (or the error reported) as text."""
    start = time.perf_counter()
    try:
        out = repr(PARSERS[parser](body))
    except (FeedError, etree.XMLSyntaxError) as e:
        out = f"reported: {e}"
    assert time.perf_counter() - start < 1.0
    return out


@pytest.mark.parametrize("one_line", [False, True], ids=["dtd on lines", "dtd on one line"])
@pytest.mark.parametrize("parser", PARSERS)
def test_billion_laughs_is_not_expanded(parser: str, one_line: bool) -> None:
    out = run_hostile(parser, billion_laughs(one_line))
    assert "lol" * 11 not in out
    assert len(out) < 20_000


@pytest.mark.parametrize("parser", PARSERS)
def test_external_entities_are_neither_read_nor_fetched(
    parser: str, tmp_path: Path, http_server: HTTPServer
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    for path in ("dtd", "entity", "param"):
        http_server.set(f"/{path}", b'<!ENTITY leak "LEAKED-FROM-SERVER">')
    out = run_hostile(parser, external_entities(secret, http_server))
    assert "TOP-SECRET-42" not in out
    assert "LEAKED-FROM-SERVER" not in out
    assert http_server.requests == []


def test_hostile_feeds_still_give_their_harmless_entries() -> None:
    (entry,) = parse_feed("hostile", billion_laughs(False)).entries
    assert entry.link == "https://x.example/1"
    assert entry.title.startswith("Laughs")


# --- anything at all -------------------------------------------------------------------------

SEED = (FEEDS / "rss2.xml").read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damage_to_a_feed_is_a_result_or_a_feed_error(data: st.DataObject) -> None:
    body = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["cut", "insert", "flip"]))
        if action == "cut":
            del body[at : at + data.draw(st.integers(1, 40))]
        elif action == "insert":
            body[at:at] = data.draw(
                st.sampled_from([b"<", b"&", b"]]>", b"\xff", b"\x00", b"<item>", b"</channel>"])
            )
        elif at < len(body):
            body[at] ^= data.draw(st.integers(1, 255))
    try:
        feed = parse_feed("fuzzed", bytes(body))
    except FeedError as e:
        assert e.feed == "fuzzed"
    else:
        assert all(isinstance(e, ParsedEntry) for e in feed.entries)


def test_a_document_feedparser_itself_chokes_on_is_reported() -> None:
    body = b'<?xml version="1.0" encoding="\xffutf-8"?><rss version="2.0"><channel/></rss>'
    with pytest.raises(FeedError, match="unreadable document"):
        parse_feed("odd", body)


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = (
    json_scalars
    | st.lists(json_scalars, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "url", "fullname"]), json_scalars, max_size=3)
    | st.lists(st.dictionaries(st.sampled_from(["name", "url"]), json_scalars), max_size=3)
)
json_item_keys = st.sampled_from(
    ["id", "url", "title", "content_html", "summary", "date_published", "authors", "author", "tags"]
)
paper_keys = st.sampled_from(["id", "title", "summary", "upvotes", "authors", "publishedAt"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(json_item_keys, json_values, max_size=6), max_size=3),
    st.lists(st.dictionaries(paper_keys, json_values, max_size=6), min_size=1, max_size=3),
)
def test_any_json_feed_or_papers_page_is_a_result_or_a_feed_error(
    items: list[dict[str, object]], papers: list[dict[str, object]]
) -> None:
    documents = [
        {"version": "https://jsonfeed.org/version/1.1", "items": items},
        [{"paper": paper, "title": paper.get("title")} for paper in papers],
    ]
    for document in documents:
        try:
            feed = parse_feed("fuzzed", json.dumps(document).encode())
        except FeedError as e:
            assert e.feed == "fuzzed"
        else:
            assert all(isinstance(e.title, str) and e.title for e in feed.entries)


def test_categories_inside_a_wrapper_are_read_as_feedparser_reads_them() -> None:
    body = (
        b"<rss version='2.0'><channel><item><title>Smart locks</title>"
        b"<link>https://x.example/1</link><category>Home</category>"
        b"<categories><category>Bluetooth</category><category>Home Tech</category></categories>"
        b"</item></channel></rss>"
    )
    fast = fast_parse(body)
    assert fast is not None
    assert fast[0].categories == ("Home", "Bluetooth", "Home Tech")
    assert fast == parse_with_feedparser("x", body).entries
