"""JSON Feed (1.0 and 1.1, https://jsonfeed.org/version/1.1), and reading JSON at all."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from ..errors import FeedError
from ..models import ParsedEntry
from .arxiv import finish
from .dates import iso_date
from .document import Document, ParsedFeed, json_charset
from .text import as_str, entry_title, plain_text


def load_json(doc: Document) -> Any:
    """The document's JSON (in the HTTP charset when its bytes are not UTF-8), or a one-line
    FeedError: hostile JSON (nested past the recursion limit, huge integers) included."""
    name = doc.name
    try:
        return json.loads(json_charset(doc.body, doc.content_type))
    except RecursionError as e:
        raise FeedError(name, "not valid JSON (nested deeper than digest reads)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FeedError(name, f"not valid JSON ({e})") from e
    except ValueError as e:  # an integer past Python's int_max_str_digits
        limit = sys.get_int_max_str_digits()
        raise FeedError(name, f"not valid JSON (an integer longer than {limit:,} digits)") from e


def not_this_kind(doc: Document) -> FeedError:
    """The error for JSON that is not what the feed's kind (declared, else detected) says."""
    if doc.kind == "json":
        return FeedError(doc.name, 'type = "json" but the document is not a JSON Feed')
    if doc.kind == "daily-papers":
        return FeedError(
            doc.name, 'type = "daily-papers" but the document is not a Daily-Papers list'
        )
    return FeedError(doc.name, "JSON that is neither a JSON Feed nor a Daily-Papers listing")


def read(doc: Document) -> ParsedFeed:
    """PARSERS' entry for JSON Feed; JSON of another shape is a FeedError."""
    data = load_json(doc)
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise not_this_kind(doc)
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError(doc.name, "JSON Feed without an items list")
    authors = data.get("authors") or [data.get("author")]  # 1.1, else 1.0
    base = doc.base
    return ParsedFeed(
        [finish(_from_json_feed(i, authors, base), False) for i in items if isinstance(i, dict)]
    )


def _from_json_feed(item: Mapping[str, Any], feed_authors: object, base: str) -> ParsedEntry:
    """One JSON Feed item; without authors of its own (1.1 `authors`, 1.0 `author`) it has
    the feed's, as the spec says."""
    authors = item.get("authors") or [item.get("author")]
    if authors == [None]:
        authors = feed_authors
    if not isinstance(authors, list):
        authors = []
    summary = item.get("content_html") or item.get("content_text") or item.get("summary")
    tags = item.get("tags")
    return ParsedEntry(
        title=entry_title(as_str(item.get("title")), as_str(summary), True),  # the spec: plain text
        guid=_json_id(item.get("id")) or None,
        link=_json_link(as_str(item.get("url")) or as_str(item.get("external_url")), base) or None,
        summary=plain_text(as_str(summary)),
        published=iso_date(item.get("date_published") or item.get("date_modified")),
        authors=tuple(
            plain_text(as_str(a.get("name")))
            for a in authors
            if isinstance(a, dict) and a.get("name")
        ),
        categories=tuple(
            dict.fromkeys(plain_text(t) for t in tags if isinstance(t, str) and t.strip())
        )
        if isinstance(tags, list)
        else (),
    )


def _json_link(url: str, base: str) -> str:
    """An item's URL, resolved against the feed's when relative."""
    if not url or not base:
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url


def _json_id(value: object) -> str:
    """A JSON Feed id; one given as a number is that number as a string (the spec's rule)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return as_str(value)
