"""A document as it came: its bytes, the feed's kind, and what HTTP said about it (the URL
relative links are resolved against, the charset); and what a parser makes of it."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..models import FeedType, ParsedEntry

_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")  # UTF-32's start with UTF-16's
_XML_ENCODING = re.compile(rb"\s*<\?xml[^>]*?\bencoding\s*=")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's entries, and what was wrong with a document that could still be read."""

    entries: list[ParsedEntry]
    #: e.g. malformed XML that feedparser's lenient parser recovered entries from
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One feed document and what came with it; what every parser of PARSERS is given."""

    #: the feed's name, for errors
    name: str
    body: bytes
    #: the kind the config declares; None: detected by content
    kind: FeedType | None = None
    #: where the document came from (after redirects), when it came over HTTP
    url: str | None = None
    #: the response's Content-Type header; its charset is used when the document has none
    content_type: str | None = None
    #: the response's Content-Location header, relative to `url` or absolute
    content_location: str | None = None

    @property
    def base(self) -> str:
        """What relative links are resolved against (see document_base)."""
        return document_base(self.url, self.content_location)


def document_base(url: str | None, content_location: str | None = None) -> str:
    """What relative links in a document are resolved against: its Content-Location (made
    absolute against `url`), else `url`; "" when that is not an http(s) URL (a local file)."""
    try:
        base = urljoin(url or "", content_location or "")
        parts = urlsplit(base)
    except ValueError:
        return ""
    return base if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def http_charset(body: bytes, content_type: str | None) -> bytes:
    """An XML document in UTF-8: recoded from the charset of the HTTP Content-Type when the
    document declares none of its own; as it is otherwise (or when it does not decode)."""
    charset = _charset(content_type)
    if charset is None or body.startswith(_BOMS) or _XML_ENCODING.match(body):
        return body
    return _recode(body, charset)


def json_charset(body: bytes, content_type: str | None) -> bytes:
    """JSON is UTF-8 (RFC 8259): the HTTP charset is used only for bytes that are not."""
    charset = _charset(content_type)
    if charset is None or body.startswith(_BOMS):
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return _recode(body, charset)
    return body


def _charset(content_type: str | None) -> str | None:
    m = _CHARSET.search(content_type or "")
    if m is None:
        return None
    try:
        name = codecs.lookup(m[1]).name
    except (LookupError, ValueError):
        return None
    return None if name == "utf-8" else name


def _recode(body: bytes, charset: str) -> bytes:
    try:
        return body.decode(charset).encode("utf-8")
    except (ValueError, LookupError):  # UnicodeError, or not a text encoding (hex, rot13)
        return body
