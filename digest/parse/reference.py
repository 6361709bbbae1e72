"""The feedparser path: the reference for any XML feed, lenient, slower; it reports what
it recovered from a malformed document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FeedError
from ..models import FeedType, ParsedEntry
from .arxiv import ARXIV_NS, finish
from .dates import feedparser_date
from .document import Document, ParsedFeed, document_base, http_charset
from .text import as_str, author_names, entry_title, plain_text


def parse_with_feedparser(
    name: str,
    body: bytes,
    kind: FeedType | None = None,
    *,
    url: str | None = None,
    content_type: str | None = None,
    content_location: str | None = None,
) -> ParsedFeed:
    """The reference parser, for any XML feed: lenient, slower, reports what it recovered.
    The keyword arguments are parse_feed's.

    Imported here: most runs need only the fast path, and a run where nothing changed
    parses nothing, so feedparser's import is not paid at every start."""
    import feedparser

    # the base goes in as Content-Location, the one header feedparser reads it from, with
    # the one Content-Type that leaves the encoding to the document (headers without one
    # make the document "bozo"); the charset is applied here, not by feedparser, whose
    # RFC 3023 rules let a bare text/xml (US-ASCII) override the document's declaration
    base = document_base(url, content_location)
    headers = {"content-location": base, "content-type": "application/xml"} if base else None
    try:
        parsed = feedparser.parse(
            http_charset(body, content_type),
            sanitize_html=False,
            resolve_relative_uris=False,
            response_headers=headers,
        )
    except Exception as e:  # e.g. UnicodeDecodeError on a byte in <?xml encoding
        raise FeedError(name, f"unreadable document ({type(e).__name__}: {e})") from e
    reason = getattr(parsed, "bozo_exception", None) or "unknown error"
    if parsed.bozo and not parsed.entries:
        raise FeedError(name, f"not a valid RSS, Atom or JSON feed ({reason})")
    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        raise FeedError(name, "not an RSS, Atom or JSON feed")
    if kind in ("rss", "atom") and version and not version.startswith(kind):
        raise FeedError(name, f'type = "{kind}" but the document is {version}')
    namespaces = parsed.get("namespaces") or {}
    prefix = next((p for p, uri in namespaces.items() if uri == ARXIV_NS), None)
    arxiv = kind == "arxiv" or prefix is not None
    entries = [finish(_from_feedparser(item, prefix), arxiv) for item in parsed.entries]
    # Many real feeds are slightly malformed; the entries feedparser recovers are kept
    # (dropping them would lose news), but the feed is reported so its owner can be told.
    problem = (
        f"malformed feed, {len(entries)} entries recovered ({reason})" if parsed.bozo else None
    )
    return ParsedFeed(entries, problem)


def read(doc: Document) -> ParsedFeed:
    """PARSERS' entry; the last parser for XML: entries, or a FeedError saying why not."""
    return parse_with_feedparser(
        doc.name, doc.body, doc.kind, url=doc.url, content_type=doc.content_type,
        content_location=doc.content_location,
    )  # fmt: skip


def _from_feedparser(item: Mapping[str, Any], arxiv_prefix: str | None) -> ParsedEntry:
    summary = item.get("summary") or ""
    for content in item.get("content") or ():
        if len(content.get("value") or "") > len(summary):
            summary = content["value"]
    categories = [as_str(tag.get("term")).strip() for tag in item.get("tags") or ()]
    announce = None
    if arxiv_prefix:
        primary = item.get(f"{arxiv_prefix}_primary_category")
        if isinstance(primary, Mapping) and primary.get("term"):
            categories.insert(0, as_str(primary["term"]))
        announce = as_str(item.get(f"{arxiv_prefix}_announce_type")).strip() or None
    return ParsedEntry(
        title=entry_title(item.get("title"), summary, _is_text(item.get("title_detail"))),
        guid=(item.get("id") or "").strip() or None,
        link=(item.get("link") or "").strip() or None,
        summary=plain_text(summary),
        published=feedparser_date(item),
        authors=author_names(item.get("authors")),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
        announce_type=announce,
    )


def _is_text(detail: object) -> bool:
    return isinstance(detail, Mapping) and detail.get("type") == "text/plain"
