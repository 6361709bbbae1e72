"""Bytes → ParsedEntry: RSS, Atom, arXiv (RSS and API Atom), JSON Feed and Daily-Papers JSON.

A document is read by the parsers PARSERS lists for its kind, in turn: the first that gives
a ParsedFeed wins (None: "not mine, or not exactly", the next one decides). For XML that is
the lxml fast path (fast.py), which gives exactly what the feedparser path (reference.py)
gives, then feedparser itself, the reference for odd feeds. A new kind of feed is one module
with a ``read(doc: Document) -> ParsedFeed | None`` and one entry here.

XML safety, checked by tests/test_parse.py with a billion-laughs and an external-entity feed:

- The fast path never sees a DTD: a document with ``<!DOCTYPE`` or ``<!ENTITY`` goes to
  feedparser. Its lxml parser is also configured not to resolve entities, not to load a DTD,
  not to touch the network and to keep libxml2's limits (no ``huge_tree``).
- feedparser removes every ``<!ENTITY`` declaration from the prolog before parsing and puts
  back only "safe" ones (a plain string or one character reference, so nothing nests or
  points outside the document); it turns off external general entities on its SAX (expat)
  parser, and its fallback sgmllib parser expands only those safe entities.
- Python's expat (≥ 2.4.1; Python 3.11 ships 2.5) refuses entity expansion whose output
  grows more than 100× its input past 8 MiB, so even a bomb that reached it stops there.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FeedError
from ..models import FeedType
from . import fast, jsonfeed, papers, reference
from .arxiv import ARXIV_NS, arxiv_ref
from .document import Document, ParsedFeed, document_base, http_charset
from .fast import XML_PARSER, fast_parse
from .reference import parse_with_feedparser
from .text import plain_text

__all__ = [
    "ARXIV_NS",
    "PARSERS",
    "XML_PARSER",
    "Document",
    "ParsedFeed",
    "arxiv_ref",
    "document_base",
    "fast_parse",
    "http_charset",
    "parse_feed",
    "parse_with_feedparser",
    "plain_text",
]

#: reads a document: its entries, or None to leave it to the next parser of its kind
Parser = Callable[[Document], ParsedFeed | None]
_XML: tuple[Parser, ...] = (fast.read, reference.read)
#: what a document is read by, by the feed's kind (the config's `type`; undeclared: "xml",
#: or "json" / "daily-papers" for a document that starts with "{" / "["); the last parser
#: of each gives a ParsedFeed or raises FeedError
PARSERS: dict[str, tuple[Parser, ...]] = {
    "rss": _XML,
    "atom": _XML,
    "arxiv": _XML,  # the arXiv fields are filled for any XML feed that names arXiv papers
    "xml": _XML,
    "json": (jsonfeed.read,),
    "daily-papers": (papers.read,),
}
_WHITE = b"\xef\xbb\xbf \t\r\n"


def parse_feed(
    name: str,
    body: bytes,
    kind: FeedType | None = None,
    *,
    url: str | None = None,
    content_type: str | None = None,
    content_location: str | None = None,
) -> ParsedFeed:
    """Parse a feed document: of the `kind` the config declares, else detected by content.

    `url` is where the document came from and `content_location` the response's
    Content-Location header (relative to `url`, or absolute): relative links are resolved
    against the latter, else the former (http and https only; an xml:base in the document
    comes first). `content_type` is the response's Content-Type header: its charset is used
    when the document declares none (no BOM, no encoding in its XML declaration).

    Raises FeedError (naming the feed) for a document that gives no entries at all."""
    doc = Document(name, body, kind, url, content_type, content_location)
    parsers = PARSERS[_read_as(doc)]
    for parser in parsers:
        parsed = parser(doc)
        if parsed is not None:
            return parsed
    raise FeedError(name, "no parser read the document")  # each kind's last parser decides


def _read_as(doc: Document) -> str:
    if doc.kind in ("json", "daily-papers"):
        return doc.kind
    head = doc.body.lstrip(_WHITE)[:1]
    if doc.kind is None and head == b"{":
        return "json"
    if doc.kind is None and head == b"[":
        return "daily-papers"
    if not head:
        raise FeedError(doc.name, "empty document")
    return doc.kind or "xml"
