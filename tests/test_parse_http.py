"""What the HTTP response says about a document reaches the parser: relative links are
resolved against the feed's URL (or its Content-Location), and the Content-Type charset is
used when the document declares none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunDigest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import HTTPServer

from digest.errors import FeedError
from digest.models import FetchResult
from digest.parse import fast_parse, parse_feed, parse_with_feedparser

URL = "https://blog.example.org/feeds/main.xml"

RSS = b"""<rss version="2.0"><channel><title>t</title>
<item><title>Root-relative</title><link>/posts/1</link></item>
<item><title>Relative</title><link>posts/2</link><guid>posts/2#guid</guid></item>
<item><title>Absolute</title><link>https://other.example/3</link></item>
<item><title>Not a permalink</title><link>4</link><guid isPermaLink="false">4</guid></item>
</channel></rss>"""
ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>Root-relative</title><id>tag:x,2026:1</id><link href="/posts/1"/></entry>
<entry><title>Relative</title><id>posts/2</id><link rel="alternate" href="posts/2"/></entry>
</feed>"""
BASED = b"""<rss version="2.0" xml:base="https://cdn.example.net/b/"><channel><title>t</title>
<item><title>Relative</title><link>posts/2</link></item></channel></rss>"""


def links(body: bytes, **where: str) -> list[str | None]:
    entries = parse_feed("feed", body, **where).entries
    assert fast_parse(body, **where) in (None, entries)
    assert parse_with_feedparser("feed", body, **where).entries == entries
    return [e.link for e in entries]


def test_relative_links_are_resolved_against_the_feeds_url() -> None:
    assert links(RSS, url=URL) == [
        "https://blog.example.org/posts/1",
        "https://blog.example.org/feeds/posts/2",
        "https://other.example/3",
        "https://blog.example.org/feeds/4",
    ]
    assert links(ATOM, url=URL) == [
        "https://blog.example.org/posts/1",
        "https://blog.example.org/feeds/posts/2",
    ]


def test_a_permalink_guid_is_resolved_too_and_an_opaque_one_is_not() -> None:
    entries = parse_feed("feed", RSS, url=URL).entries
    assert entries[1].guid == "https://blog.example.org/feeds/posts/2#guid"
    assert entries[3].guid == "4"


def test_content_location_comes_before_the_url_and_may_be_relative_to_it() -> None:
    where = {"url": URL, "content_location": "https://mirror.example.com/x/feed.xml"}
    assert links(RSS, **where)[:2] == [
        "https://mirror.example.com/posts/1",
        "https://mirror.example.com/x/posts/2",
    ]
    assert links(RSS, url=URL, content_location="/v2/feed.xml")[1] == (
        "https://blog.example.org/v2/posts/2"
    )


def test_xml_base_in_the_document_comes_first() -> None:
    assert links(BASED, url=URL) == ["https://cdn.example.net/b/posts/2"]


@pytest.mark.parametrize("url", [None, "", "/home/ada/feeds/main.xml", "file:///tmp/f.xml"])
def test_without_an_http_url_relative_links_stay_as_they_are(url: str | None) -> None:
    assert links(RSS, **({"url": url} if url is not None else {}))[:2] == ["/posts/1", "posts/2"]


def test_json_feed_item_urls_are_resolved_against_the_feeds_url() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "1", "url": "/p/1"}, {"id": "2", "external_url": "https://x.org/"}],
        }
    ).encode()
    entries = parse_feed("feed", body, url=URL).entries
    assert [e.link for e in entries] == ["https://blog.example.org/p/1", "https://x.org/"]


# --- the charset ----------------------------------------------------------------------------

LATIN1 = (
    "<rss version='2.0'><channel><title>t</title><item><title>Café crème</title>"
    "<link>https://x.example/1</link></item></channel></rss>"
).encode("latin-1")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml; charset=iso-8859-1",
        'application/rss+xml;charset="ISO-8859-1"',
        "text/xml;charset=latin1",
    ],
)
def test_the_http_charset_is_used_when_the_document_declares_none(content_type: str) -> None:
    for body in (LATIN1, b"<?xml version='1.0'?>\n" + LATIN1):
        feed = parse_feed("feed", body, content_type=content_type)
        assert [e.title for e in feed.entries] == ["Café crème"]
        assert feed.problem is None
        assert fast_parse(body, content_type=content_type) == feed.entries
        assert parse_with_feedparser("feed", body, content_type=content_type).entries == (
            feed.entries
        )


def test_without_the_http_charset_the_same_bytes_are_a_malformed_feed() -> None:
    feed = parse_feed("feed", LATIN1)
    assert feed.problem is not None and "malformed" in feed.problem


def test_the_documents_own_declaration_wins_over_the_http_charset() -> None:
    body = b"<?xml version='1.0' encoding='utf-8'?>" + LATIN1.decode("latin-1").encode()
    feed = parse_feed("feed", body, content_type="text/xml; charset=iso-8859-1")
    assert [e.title for e in feed.entries] == ["Café crème"]
    bom = b"\xef\xbb\xbf" + LATIN1.decode("latin-1").encode()
    assert [
        e.title for e in parse_feed("f", bom, content_type="text/xml; charset=koi8-r").entries
    ] == ["Café crème"]


@pytest.mark.parametrize(
    "content_type", ["text/xml", "text/xml; charset=nonsense", "text/xml; charset="]
)
def test_no_usable_http_charset_changes_nothing(content_type: str) -> None:
    utf8 = LATIN1.decode("latin-1").encode()
    assert [e.title for e in parse_feed("f", utf8, content_type=content_type).entries] == [
        "Café crème"
    ]


def test_a_json_feed_in_another_charset_is_read_with_it() -> None:
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "Café"}]},
        ensure_ascii=False,
    ).encode("latin-1")
    (entry,) = parse_feed(
        "feed", body, content_type="application/feed+json; charset=latin-1"
    ).entries
    assert entry.title == "Café"


# --- through the CLI ------------------------------------------------------------------------

CONFIG = """[digest]
state = "state.sqlite"
[[feeds]]
name = "blog"
url = "{url}"
[profiles.all]
keywords = {{ "café" = 1, "relative" = 1 }}
min_score = 0
[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "all"
"""
SERVED = (
    "<rss version='2.0'><channel><title>t</title>"
    "<item><title>Café relative</title><link>/posts/1</link>"
    "<pubDate>Fri, 20 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>"
).encode("latin-1")


def digest_text(tmp_path: Path, run_digest: RunDigest, url: str) -> str:
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG.format(url=url))
    result = run_digest("run", "--config", str(config), "--now", "2026-11-20T06:00:00Z")
    assert result.returncode == 0, result.stderr
    return (tmp_path / "out" / "2026-11-20" / "ada.txt").read_text()


def test_a_run_resolves_links_against_the_feed_url_and_reads_the_http_charset(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    http_server.set("/feeds/blog.rss", SERVED, "application/rss+xml; charset=ISO-8859-1")
    text = digest_text(tmp_path, run_digest, http_server.url("/feeds/blog.rss"))
    assert "Café relative" in text
    assert http_server.url("/posts/1") in text


@pytest.mark.skipif(
    "content_location" not in FetchResult.__dataclass_fields__,
    reason="FetchResult has no content_location yet (wip-fetch)",
)
def test_a_run_resolves_links_against_the_content_location(
    tmp_path: Path, http_server: HTTPServer, run_digest: RunDigest
) -> None:
    body = SERVED.replace(b"<link>/posts/1</link>", b"<link>posts/1</link>")
    http_server.set(
        "/feeds/blog.rss",
        body,
        "application/rss+xml; charset=ISO-8859-1",
        headers={"Content-Location": "/mirror/v2/blog.rss"},
    )
    text = digest_text(tmp_path, run_digest, http_server.url("/feeds/blog.rss"))
    assert http_server.url("/mirror/v2/posts/1") in text


@pytest.mark.parametrize("declared", ["encoding='utf-16'", ""])
def test_a_dtd_in_another_encoding_still_keeps_the_fast_path_away(declared: str) -> None:
    doc = (
        f"<?xml version='1.0' {declared}?><!DOCTYPE rss [<!ENTITY x 'unused'>]>"
        "<rss version='2.0'><channel><item><title>t</title><link>https://x.example/1</link>"
        "</item></channel></rss>"
    )
    body = doc.encode("utf-16") if declared else doc.encode("utf-16-le")
    content_type = None if declared else "text/xml; charset=utf-16-le"
    assert b"<!DOCTYPE" not in body
    assert fast_parse(body, content_type=content_type) is None
    assert [e.title for e in parse_feed("f", body, content_type=content_type).entries] == ["t"]


HEADERS = st.sampled_from(
    ["text/xml", "application/xml; charset=", "text/xml; charset=", '; charset="', "charset=\x00"]
) | st.sampled_from(["utf-16", "punycode", "undefined", "idna", "hex", "rot13", "utf-7", "uu"]).map(
    lambda c: f"text/xml; charset={c}"
)
URLS = st.sampled_from(
    ["http://[::1", "http://x.example:99999999/", "https://x.example/a b/", "mailto:a@x", "//x",
     "http://x.example/\x00\r\n", "file:///etc/", "javascript:alert(1)", "", "?q", "../.."]
) | st.text(max_size=30)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.none() | HEADERS, st.none() | URLS, st.none() | URLS, st.sampled_from(["rss", "json"]))
def test_any_http_headers_are_a_result_or_a_feed_error(
    content_type: str | None, url: str | None, content_location: str | None, shape: str
) -> None:
    body = (
        RSS
        if shape == "rss"
        else json.dumps(
            {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "url": "p/1"}]}
        ).encode()
    )
    where = {"url": url, "content_type": content_type, "content_location": content_location}
    try:
        feed = parse_feed("feed", body, **where)
    except FeedError as e:
        assert e.feed == "feed"
    else:
        assert feed.entries
        if shape == "rss":
            assert fast_parse(body, **where) in (None, feed.entries)
