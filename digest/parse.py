"""Bytes → ParsedEntry: RSS and Atom (feedparser), JSON Feed 1.x and the Daily-Papers JSON."""

from __future__ import annotations

import calendar
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import nh3

from .errors import FeedError
from .models import ParsedEntry

DAILY_PAPERS_LINK = "https://huggingface.co/papers/{id}"
TITLE_FROM_SUMMARY = 80
# C0 and C1 control characters (terminal escapes, NUL, backspace…) never reach a digest;
# tabs and line breaks become spaces.
_CONTROLS = str.maketrans(
    {c: " " if chr(c) in "\t\n\r\f\v" else None for c in [*range(0x20), *range(0x7F, 0xA0)]}
)
_SPACE = re.compile(r"\s+")
# a block or break tag separates words: "<p>One</p><p>Two" is "One Two", not "OneTwo"
_BLOCK_TAG = re.compile(
    r"<(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section|article))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's entries, and what was wrong with a document that could still be read."""

    entries: list[ParsedEntry]
    #: e.g. malformed XML that feedparser's lenient parser recovered entries from
    problem: str | None = None


def parse_feed(name: str, body: bytes) -> ParsedFeed:
    """Parse a feed document of any supported kind, detected by content."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return ParsedFeed(_parse_json(name, body))
    return _parse_xml(name, body)


def plain_text(value: str | None) -> str:
    """Feed HTML or text → one line of plain text; script and style content are dropped."""
    if not value:
        return ""
    text = nh3.clean(
        _BLOCK_TAG.sub(r" \g<0>", value), tags=set(), clean_content_tags={"script", "style"}
    )
    return _SPACE.sub(" ", html.unescape(text).translate(_CONTROLS)).strip()


def _parse_xml(name: str, body: bytes) -> ParsedFeed:
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    reason = getattr(parsed, "bozo_exception", None) or "unknown error"
    if parsed.bozo and not parsed.entries:
        raise FeedError(name, f"not a valid RSS, Atom or JSON feed ({reason})")
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(name, "not an RSS, Atom or JSON feed")
    entries = [_from_feedparser(item) for item in parsed.entries]
    # Many real feeds are slightly malformed; the entries feedparser recovers are kept
    # (dropping them would lose news), but the feed is reported so its owner can be told.
    problem = (
        f"malformed feed, {len(entries)} entries recovered ({reason})" if parsed.bozo else None
    )
    return ParsedFeed(entries, problem)


def _from_feedparser(item: Mapping[str, Any]) -> ParsedEntry:
    summary = item.get("summary") or ""
    for content in item.get("content") or ():
        if len(content.get("value") or "") > len(summary):
            summary = content["value"]
    when = item.get("published_parsed") or item.get("updated_parsed")
    return ParsedEntry(
        title=_title(item.get("title"), summary),
        guid=(item.get("id") or "").strip() or None,
        link=(item.get("link") or "").strip() or None,
        summary=plain_text(summary),
        published=datetime.fromtimestamp(calendar.timegm(when), UTC) if when else None,
        authors=_author_names(item.get("authors")),
    )


def _parse_json(name: str, body: bytes) -> list[ParsedEntry]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FeedError(name, f"not valid JSON ({e})") from e
    if isinstance(data, dict) and str(data.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        items = data.get("items")
        if not isinstance(items, list):
            raise FeedError(name, "JSON Feed without an items list")
        return [_from_json_feed(item) for item in items if isinstance(item, dict)]
    if isinstance(data, list) and all(isinstance(x, dict) and "paper" in x for x in data):
        return [_from_daily_papers(name, item) for item in data]
    raise FeedError(name, "JSON that is neither a JSON Feed nor a Daily-Papers listing")


def _from_json_feed(item: Mapping[str, Any]) -> ParsedEntry:
    authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    summary = item.get("content_html") or item.get("content_text") or item.get("summary")
    return ParsedEntry(
        title=_title(_str(item.get("title")), _str(summary)),
        guid=_str(item.get("id")) or None,
        link=_str(item.get("url")) or _str(item.get("external_url")) or None,
        summary=plain_text(_str(summary)),
        published=_iso(item.get("date_published") or item.get("date_modified")),
        authors=tuple(
            plain_text(_str(a.get("name")))
            for a in authors
            if isinstance(a, dict) and a.get("name")
        ),
    )


def _from_daily_papers(name: str, item: Mapping[str, Any]) -> ParsedEntry:
    paper = item.get("paper")
    if not isinstance(paper, dict) or not _str(paper.get("id")):
        raise FeedError(name, "Daily-Papers item without paper.id")
    paper_id = _str(paper["id"]).strip()
    organisation = item.get("organization") or paper.get("organization") or {}
    upvotes = paper.get("upvotes")
    return ParsedEntry(
        title=_title(_str(item.get("title") or paper.get("title")), ""),
        guid=DAILY_PAPERS_LINK.format(id=paper_id),
        link=DAILY_PAPERS_LINK.format(id=paper_id),
        summary=plain_text(_str(paper.get("summary") or item.get("summary"))),
        published=_iso(item.get("publishedAt") or paper.get("publishedAt")),
        authors=_author_names(paper.get("authors")),
        organisation=(
            plain_text(_str(organisation.get("fullname"))) if isinstance(organisation, dict) else ""
        )
        or None,
        upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
    )


def _title(title: str | None, summary: str | None) -> str:
    """The feed's title, else the start of its text (some RSS items have no title)."""
    text = plain_text(title)
    if text:
        return text
    text = plain_text(summary)
    if len(text) > TITLE_FROM_SUMMARY:
        text = text[:TITLE_FROM_SUMMARY].rsplit(" ", 1)[0] + "…"
    return text or "(untitled)"


def _author_names(authors: object) -> tuple[str, ...]:
    if not isinstance(authors, list):
        return ()
    names = (plain_text(_str(a.get("name"))) for a in authors if isinstance(a, dict))
    return tuple(dict.fromkeys(name for name in names if name))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
