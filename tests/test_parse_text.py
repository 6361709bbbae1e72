"""Titles: a text title is text ("History of the <blink> tag" keeps its word); only an HTML
title has its tags removed. Both parse paths read every title alike."""

from __future__ import annotations

import json

import pytest
from feedparser.sanitizer import _HTMLSanitizer

from digest.parse import fast_parse, parse_feed, parse_with_feedparser
from digest.parse.fast import _COMMON_TAGS

BLINK = "History of the <blink> tag"


def rss(title: str) -> bytes:
    return (
        "<rss version='2.0'><channel><item>"
        f"<title>{title}</title><link>https://x.example/1</link></item></channel></rss>"
    ).encode()


def atom(title: str, kind: str | None = None) -> bytes:
    attr = f" type='{kind}'" if kind else ""
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><entry>"
        f"<title{attr}>{title}</title><id>https://x.example/1</id></entry></feed>"
    ).encode()


TEXT_TITLES = {
    "rss": rss("History of the &lt;blink&gt; tag"),
    "rss cdata": rss("<![CDATA[History of the <blink> tag]]>"),
    "rss, the end tag not HTML's": rss("History of the &lt;blink&gt; tag&lt;/blink&gt;"),
    "atom text": atom("History of the &lt;blink&gt; tag"),
    "atom text, said": atom("History of the &lt;blink&gt; tag", "text"),
    "atom html, escaped twice": atom("History of the &amp;lt;blink&amp;gt; tag", "html"),
    "json feed": json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": BLINK}]}
    ).encode(),
}


@pytest.mark.parametrize("body", TEXT_TITLES.values(), ids=TEXT_TITLES)
def test_a_text_title_keeps_its_angle_bracketed_words(body: bytes) -> None:
    (entry,) = parse_feed("feed", body).entries
    assert entry.title.startswith(BLINK)


def test_the_example_title_stays_on_the_fast_path() -> None:
    for name in ("rss", "rss cdata", "atom text"):
        fast = fast_parse(TEXT_TITLES[name])
        assert fast is not None and fast[0].title == BLINK, name


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (rss("&lt;b&gt;Bold&lt;/b&gt; title"), "Bold title"),
        (rss("<![CDATA[<em>Em</em> &amp; co]]>"), "Em & co"),
        (rss("AT&amp;amp;T"), "AT&T"),
        (atom("&lt;b&gt;Bold&lt;/b&gt; title", "html"), "Bold title"),
        (atom("a &amp;lt; b"), "a &lt; b"),  # text: what it says, entities and all
    ],
)
def test_an_html_title_loses_its_tags_a_text_title_keeps_everything(
    body: bytes, title: str
) -> None:
    assert [e.title for e in parse_feed("feed", body).entries] == [title]


TITLES = [
    "History of the &lt;blink&gt; tag",
    "AT&amp;amp;T",
    "&lt;b&gt;Bold&lt;/b&gt; title",
    "Use &lt;blink&gt; and &lt;/blink&gt;",
    "<![CDATA[History of the <blink> tag]]>",
    "<![CDATA[<b>B</b> c]]>",
    "<![CDATA[<marquee>M</marquee> c]]>",
    "a &amp;lt; b",
    "Tom &amp; Jerry",
    "x &amp;foo; y &lt;/i&gt;",
    "1 &lt; 2 &amp;&amp; 3 &gt; 2",
    "&lt;script&gt;alert(1)&lt;/script&gt; hi",
]


@pytest.mark.parametrize("title", TITLES)
@pytest.mark.parametrize("shape", ["rss", "atom", "atom html"])
def test_both_paths_read_a_title_alike(shape: str, title: str) -> None:
    body = rss(title) if shape == "rss" else atom(title, "html" if shape == "atom html" else None)
    reference = parse_with_feedparser("feed", body).entries
    assert fast_parse(body) in (None, reference)


def test_the_fast_paths_html_tags_are_all_html_to_feedparser() -> None:
    assert _COMMON_TAGS <= _HTMLSanitizer.acceptable_elements
