"""Every document of ../shared/data/feed-corpus (feedparser's own tests at the version we
install, reader's test data, the JSON Feed spec's examples): parsing never crashes, and where
the fast path takes a document its entries equal the feedparser path's, field by field.

Skipped when the corpus is absent. The counts are printed: documents, taken by the fast path,
handed to feedparser."""

from __future__ import annotations

import re
import warnings
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import SHARED

from digest.errors import FeedError
from digest.models import ParsedEntry
from digest.parse import fast_parse, parse_feed, parse_with_feedparser

CORPUS = SHARED / "data" / "feed-corpus"
SUFFIXES = {".xml", ".rss", ".atom", ".json"}
# feedparser's tests give the HTTP headers they are served with in their opening comment,
# and are served from http://127.0.0.1:8097/ (the relative links they resolve say so)
HEADER = re.compile(rb"^\s*Header:\s*([\w-]+):\s*(.*?)\s*$", re.MULTILINE)
FEEDPARSER_HOST = "http://127.0.0.1:8097/"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} is absent")


def documents() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def served_with(path: Path, body: bytes) -> dict[str, str]:
    """The keyword arguments parse_feed gets for `path`: its URL and HTTP headers."""
    where = {}
    if path.is_relative_to(CORPUS / "feedparser"):
        where["url"] = FEEDPARSER_HOST + path.relative_to(CORPUS / "feedparser").as_posix()
    for name, value in HEADER.findall(body[:4096]):
        key = {b"content-type": "content_type", b"content-location": "content_location"}.get(
            name.lower()
        )
        if key:
            where[key] = value.decode("latin-1")
    return where


def differences(mine: list[ParsedEntry], theirs: list[ParsedEntry]) -> list[str]:
    if len(mine) != len(theirs):
        return [f"{len(mine)} entries, feedparser {len(theirs)}"]
    return [
        f"entry {n} {f.name}: {getattr(a, f.name)!r:.60} / feedparser {getattr(b, f.name)!r:.60}"
        for n, (a, b) in enumerate(zip(mine, theirs, strict=True))
        for f in fields(ParsedEntry)
        if getattr(a, f.name) != getattr(b, f.name)
    ]


def test_the_whole_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    crashes: list[str] = []
    differ: list[str] = []
    docs = documents()
    xml = fast = 0
    for path in docs:
        name = str(path.relative_to(CORPUS))
        body = path.read_bytes()
        where = served_with(path, body)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # feedparser's own DeprecationWarnings
            try:
                parse_feed(name, body, **where)
            except FeedError:
                pass
            except Exception as e:  # what this test is for
                crashes.append(f"{name}: {type(e).__name__}: {e}")
            if path.suffix == ".json":
                continue
            xml += 1
            try:
                mine = fast_parse(body, **where)
            except Exception as e:
                crashes.append(f"{name}: fast path: {type(e).__name__}: {e}")
                continue
            if mine is None:
                continue
            fast += 1
            try:
                theirs = parse_with_feedparser(name, body, **where).entries
            except FeedError as e:
                differ.append(f"{name}: the fast path read it, feedparser: {e.reason}")
                continue
            except Exception as e:
                crashes.append(f"{name}: feedparser path: {type(e).__name__}: {e}")
                continue
            differ.extend(f"{name}: {d}" for d in differences(mine, theirs))
    with capsys.disabled():
        print(
            f"\nfeed corpus: {len(docs)} documents ({xml} XML), fast path took {fast}, "
            f"handed {xml - fast} to feedparser; {len(crashes)} crashes, "
            f"{len(differ)} differences"
        )
    assert len(docs) > 2000
    assert crashes == []
    assert differ == []
    assert fast > 500  # the fast path still takes the ordinary documents
