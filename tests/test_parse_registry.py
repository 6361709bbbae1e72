"""The parse package: a table of parsers by feed kind, modules a reader can hold."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

import digest.parse
from digest.errors import FeedError
from digest.models import FeedType
from digest.parse import PARSERS, Document, fast, jsonfeed, papers, parse_feed, reference


def test_the_public_names_keep_their_import_path() -> None:
    from digest.parse import (  # noqa: F401
        XML_PARSER,
        ParsedFeed,
        arxiv_ref,
        fast_parse,
        parse_feed,
        parse_with_feedparser,
        plain_text,
    )


def test_every_kind_a_config_can_declare_has_its_parsers() -> None:
    assert set(get_args(FeedType)) <= set(PARSERS)
    assert PARSERS["rss"] == PARSERS["atom"] == PARSERS["xml"] == (fast.read, reference.read)
    assert PARSERS["json"] == (jsonfeed.read,)
    assert PARSERS["daily-papers"] == (papers.read,)


@pytest.mark.parametrize(
    ("body", "read_as"),
    [(b'{"version": "https://jsonfeed.org/version/1"}', "json"), (b"[]", "daily-papers")],
)
def test_json_is_told_apart_by_its_first_byte(body: bytes, read_as: str) -> None:
    assert digest.parse._read_as(Document("f", b"\xef\xbb\xbf\n " + body)) == read_as


def test_the_fast_path_hands_over_and_the_last_parser_decides() -> None:
    odd = b"<rss version='2.0'><channel><item><title>t</title></item></channel>"  # unclosed
    assert fast.read(Document("f", odd)) is None
    assert [e.title for e in reference.read(Document("f", odd)).entries] == ["t"]
    assert [e.title for e in parse_feed("f", odd).entries] == ["t"]
    with pytest.raises(FeedError, match="not a valid RSS"):
        reference.read(Document("f", b"<rss"))


def test_no_module_of_the_package_is_over_600_lines() -> None:
    sizes = {
        p.name: len(p.read_text().splitlines())
        for p in Path(digest.parse.__file__).parent.glob("*.py")
    }
    assert len(sizes) >= 8
    assert max(sizes.values()) < 600, sizes
