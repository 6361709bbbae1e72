"""Bytes → ParsedEntry: RSS, Atom, arXiv (RSS and API Atom), JSON Feed and Daily-Papers JSON.

Well-formed RSS 2.0 and Atom go through a fast lxml path that reproduces what feedparser
would give (the tests compare both on real feeds); anything it does not reproduce exactly
(a DOCTYPE, RSS 1.0, relative links, XHTML content, odd dates, broken XML…) goes to
feedparser, which stays the reference for odd feeds.

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

import calendar
import codecs
import html
import html.entities
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import nh3
from lxml import etree

from .errors import FeedError
from .models import FeedType, ParsedEntry

DAILY_PAPERS_LINK = "https://huggingface.co/papers/{id}"
TITLE_FROM_SUMMARY = 80
ARXIV_NS = "http://arxiv.org/schemas/atom"
# C0 and C1 control characters (terminal escapes, NUL, backspace…) never reach a digest;
# tabs and line breaks (\x09-\x0d) become spaces with the rest of the white space.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# a block or break tag separates words: "<p>One</p><p>Two" is "One Two", not "OneTwo"
_BLOCK_TAG = re.compile(
    r"<(?=(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section"
    r"|article))\b)",
    re.IGNORECASE,
)
# New-style (2401.00001, 0704.0001) and old-style (hep-th/9901001, math.AG/0601001) ids, as
# they appear after arxiv.org/abs|pdf|html/, huggingface.co/papers/, oai:arXiv.org: or arXiv:
_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Za-z]{2})?/\d{7})(?:v(\d+))?"
_ARXIV_REF = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|oai:arxiv\.org:|^arxiv:)"
    + _ARXIV_ID
    + r"(?![\w-]|\.\d)",
    re.IGNORECASE,
)
_BARE_ARXIV_ID = re.compile(_ARXIV_ID + r"$")
# rss.arxiv.org puts "arXiv:2401.00001v1 Announce Type: new \nAbstract: " before the abstract
_ARXIV_PREAMBLE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*([\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)
# The years an entry's date may have: no feed entry was published before 1900 (feedparser's
# readings of such years are guesses: "0001" becomes 100), and the state file holds no date
# within a day of the ends of what Python can hold. Any other date is no date.
_YEARS = (1900, 9998)
# a time followed by a zone that is not a clock's offset (+25:00, +99:99, +0a:00, -5:00)
_MALFORMED_OFFSET = re.compile(
    r"\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:(?:etc/)?(?:gmt|utc|ut))?\s*"
    r"(?![+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?\s*$)[+-]\S*\s*$",
    re.IGNORECASE,
)
_DROP_CONTENT = {"script", "style"}
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")  # UTF-32's start with UTF-16's
_XML_ENCODING = re.compile(rb"\s*<\?xml[^>]*?\bencoding\s*=")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's entries, and what was wrong with a document that could still be read."""

    entries: list[ParsedEntry]
    #: e.g. malformed XML that feedparser's lenient parser recovered entries from
    problem: str | None = None


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
    when the document declares none (no BOM, no encoding in its XML declaration)."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if kind in ("json", "daily-papers") or (kind is None and head in (b"{", b"[")):
        base = document_base(url, content_location)
        return ParsedFeed(_parse_json(name, _json_charset(body, content_type), kind, base))
    if not head:
        raise FeedError(name, "empty document")
    where = {"url": url, "content_type": content_type, "content_location": content_location}
    fast = fast_parse(body, kind, **where)
    if fast is not None:
        return ParsedFeed(fast)
    return parse_with_feedparser(name, body, kind, **where)


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


def _json_charset(body: bytes, content_type: str | None) -> bytes:
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
    except (UnicodeDecodeError, UnicodeEncodeError, LookupError):
        return body


def plain_text(value: str | None) -> str:
    """Feed HTML or text → one line of plain text; script and style content are dropped."""
    if not value:
        return ""
    text = value
    if "<" in text:  # text without a tag needs no HTML parser, only its entities decoded
        text = nh3.clean(_BLOCK_TAG.sub(" <", text), tags=set(), clean_content_tags=_DROP_CONTENT)
    return _one_line(html.unescape(text))


def _one_line(text: str) -> str:
    return " ".join(_CONTROLS.sub("", text).split())


def arxiv_ref(text: str | None) -> tuple[str, int | None] | None:
    """The arXiv id (without version) and version a URL, guid or "arXiv:…" string names."""
    if not text:
        return None
    m = _ARXIV_REF.search(text.strip())
    if m is None:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


# --- the fast path ---------------------------------------------------------------------------

_ATOM = "{http://www.w3.org/2005/Atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_ARXIV = "{" + ARXIV_NS + "}"
_MEDIA = "{http://search.yahoo.com/mrss/}"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html"})
# What feedparser does to every text it keeps: undo UTF-8 read as Latin-1, map cp1252's C1.
_CP1252 = {
    c: bytes([c]).decode("cp1252")
    for c in range(0x80, 0xA0)
    if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_C1 = re.compile("[\x80-\x9f]")
# feedparser's own pattern for an address inside an author string ("ada@x.org (Ada)")
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
# Elements the fast path does not reproduce: their presence sends the document to feedparser.
_ODD_IN_ITEM = frozenset(
    {
        f"{_ATOM}source",
        f"{_ITUNES}keywords",
        f"{_ITUNES}category",
        f"{_MEDIA}category",
        f"{_DC}subject",
        "source",
    }
)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


#: the lxml parser of the fast path: no entities resolved, no DTD, no network, size limits on
XML_PARSER = _safe_parser()
# The dates the fast path reads itself; anything else (zone names feedparser alone knows, such
# as MET, ET or PT, two-digit years, odd offsets, other formats) goes to feedparser.
_ISO_DATE = re.compile(
    r"(?P<year>\d{4})-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?P<offset>Z|[+-]\d\d:?\d\d)?)?$"
)
_RFC822_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?\d{1,2}\s+[A-Za-z]{3}\s+(?P<year>\d{4})\s+"
    r"\d\d:\d\d(?::\d\d)?\s+(?P<offset>[+-]\d{4}|UTC?|GMT|Z|[ACEMP][SD]T)$",
    re.IGNORECASE,
)
_OFFSET = re.compile(r"[+-](\d\d):?(\d\d)?")
_URIFIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_AMP_NAME = re.compile(r"&([A-Za-z0-9_]+);")
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# feedparser's looks_like_html, with a few of the tags it takes as HTML (tests check it)
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ENTITY_REF = re.compile(r"&#?\w+;")
_NAMED_REF = re.compile(r"&(\w+);")
_OPEN_OR_CLOSE = re.compile(r"</?(\w+)")
_COMMON_TAGS = frozenset(
    "a abbr b br cite code del div em i img ins kbd li ol p pre q s small span strike strong"
    " sub sup tt u ul".split()
)
# local names feedparser would pick up inside an unknown element
_READ_ANYWHERE = frozenset(
    {
        "title",
        "link",
        "guid",
        "id",
        "description",
        "summary",
        "content",
        "encoded",
        "category",
        "author",
        "creator",
        "name",
        "pubDate",
        "published",
        "updated",
        "date",
        "issued",
        "modified",
        "subject",
        "keywords",
        "announce_type",
        "primary_category",
        "body",  # xhtml:body, and <body>
        "fullitem",
        "tags",
        "created",
        "contributor",
        "item",
        "entry",
    }
)


class _Odd(Exception):
    """The document is outside what the fast path reproduces exactly."""


def fast_parse(
    body: bytes,
    kind: FeedType | None = None,
    *,
    url: str | None = None,
    content_type: str | None = None,
    content_location: str | None = None,
) -> list[ParsedEntry] | None:
    """Well-formed RSS 2.0 or Atom → entries equal to feedparser's; None: use feedparser.
    The keyword arguments are parse_feed's."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    body = http_charset(body, content_type)
    doc_base = document_base(url, content_location)
    try:
        root = etree.fromstring(body, XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        if root.tag == "rss" and kind != "atom":
            channel = root.find("channel")
            if channel is None or len(root.findall("channel")) > 1 or root.find("item") is not None:
                return None  # feedparser reads items wherever they are
            base = _base(channel, _base(root, doc_base))
            items: Iterable[Any] = channel.iterchildren("item")
            one: Callable[[Any, str], ParsedEntry] = _rss_item
        elif root.tag == f"{_ATOM}feed" and kind != "rss":
            base = _base(root, doc_base)
            items = root.iterchildren(f"{_ATOM}entry")
            one = _atom_entry
        else:
            return None
        arxiv = kind == "arxiv" or ARXIV_NS in (root.nsmap or {}).values()
        entries = [_finish(one(item, base), arxiv) for item in items]
        if len(entries) != sum(1 for _ in root.iter("{*}item", "{*}entry")):
            return None  # feedparser reads an item or entry wherever it is
        return entries
    except Exception:  # _Odd, or input no test foresaw: feedparser decides
        return None


def _text(el: Any) -> str:
    """An element's text as feedparser keeps it: stripped, with its two repairs."""
    if len(el):
        raise _Odd  # markup inside a text element (XHTML, or undeclared HTML)
    return _repair((el.text or "").strip())


def _repair(text: str) -> str:
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_CP1252) if _C1.search(text) else text


_RSS_FIELDS = {
    "title": "title",
    f"{_DC}title": "title",
    "link": "link",
    "guid": "guid",
    "description": "summary",
    f"{_DC}description": "summary",
    _CONTENT: "content",
    "pubDate": "published",
    f"{_DCTERMS}issued": "published",
    f"{_DC}date": "updated",
    f"{_DCTERMS}modified": "updated",
    "lastBuildDate": "updated",
    "author": "author",
    f"{_DC}creator": "author",
    f"{_DC}author": "author",
    f"{_ITUNES}author": "author",
    "category": "category",
    f"{_ARXIV}announce_type": "announce",
    f"{_ATOM}link": "atom-link",
    **{tag: "odd" for tag in _ODD_IN_ITEM},
}
_ATOM_FIELDS = {
    f"{_ATOM}title": "title",
    f"{_ATOM}id": "id",
    f"{_ATOM}link": "link",
    f"{_ATOM}summary": "summary",
    f"{_ATOM}content": "content",
    f"{_ATOM}published": "published",
    f"{_ATOM}issued": "published",
    f"{_DCTERMS}issued": "published",
    f"{_ATOM}updated": "updated",
    f"{_ATOM}modified": "updated",
    f"{_DC}date": "updated",
    f"{_ATOM}author": "atom-author",
    f"{_DC}creator": "author",
    f"{_DC}author": "author",
    f"{_ITUNES}author": "author",
    f"{_ATOM}category": "category",
    f"{_ARXIV}primary_category": "primary",
    **{tag: "odd" for tag in _ODD_IN_ITEM},
}
_ATOM_NAME = f"{_ATOM}name"


def _rss_item(item: Any, base: str) -> ParsedEntry:
    base = _base(item, base)
    title = summary = ""
    title_is_text = True
    content: list[str] = []
    guid = link = None
    guid_is_link = False
    published = updated = None
    authors: list[str] = []
    categories: list[str] = []
    announce = None
    for child in item:
        kind = _RSS_FIELDS.get(child.tag)
        if kind is None:
            if _local(child.tag) in _READ_ANYWHERE:
                raise _Odd  # itunes:summary, media:title, atom:content, xhtml:body, <id> …
            if len(child):
                categories.extend(_nested_categories(child))
        elif kind == "title":
            title = _text(child)
            title_is_text = _rss_title_is_text(title)
        elif kind == "summary":
            if summary:
                raise _Odd  # feedparser turns a second description into content
            summary = _text(child)
        elif kind == "link":
            link = _text(child)
        elif kind == "guid":
            guid = _text(child)
            guid_is_link = child.get("isPermaLink", "true") == "true"
        elif kind == "content":
            content.append(_text(child))
        elif kind == "published":
            published = _date(_text(child))
        elif kind == "updated":
            updated = _date(_text(child))
        elif kind == "author":
            authors.append(_author(_text(child)))
        elif kind == "category":
            if child.get("term") or child.get("label"):
                raise _Odd
            categories.append(_text(child))
        elif kind == "announce":
            announce = _text(child)
        elif kind == "odd" or child.get("rel") == "alternate":
            raise _Odd
    if guid and guid_is_link:  # feedparser resolves only what is not empty
        guid = _uri(guid, base)
        if link is None:
            link = guid
    if link:
        link = _rss_link(link, base)
    return _entry(
        title, guid, link, summary, content, published or updated, authors, categories, announce,
        title_is_text,
    )  # fmt: skip


def _atom_entry(entry: Any, base: str) -> ParsedEntry:
    base = _base(entry, base)
    title = summary = ""
    title_is_text = True
    content: list[str] = []
    guid = link = None
    published = updated = None
    authors: list[str] = []
    categories: list[str] = []
    primary = None
    for child in entry:
        kind = _ATOM_FIELDS.get(child.tag)
        if kind is None:
            if _local(child.tag) in _READ_ANYWHERE:
                raise _Odd  # media:title, dc:description, an RSS <description> …
            if len(child):
                _check_nested(child)
        elif kind == "title":
            title = _atom_text(child)
            title_is_text = child.get("type", "text") in ("text", "text/plain")
        elif kind == "summary":
            summary = _atom_text(child)
        elif kind == "id":
            guid = _uri(_text(child), _base(child, base))
        elif kind == "link":
            if child.get("rel", "alternate") == "alternate" and child.get("type", "text/html") in (
                "text/html",
                "application/xhtml+xml",
            ):
                href = child.get("href")
                if href is None:
                    raise _Odd
                link = _uri(href, _base(child, base))
        elif kind == "content":
            if child.get("src") is not None:
                raise _Odd
            content.append(_atom_text(child))
        elif kind == "published":
            published = _date(_text(child))
        elif kind == "updated":
            updated = _date(_text(child))
        elif kind == "atom-author":
            name = child.find(_ATOM_NAME)
            authors.append(_text(name) if name is not None else "")
        elif kind == "author":
            authors.append(_author(_text(child)))
        elif kind == "category":
            term = child.get("term")
            if term is None:
                raise _Odd
            categories.append(_repair(term))
        elif kind == "primary":
            primary = child.get("term")
        elif kind == "odd":
            raise _Odd
    if primary:
        categories.insert(0, primary)
    if link is None:
        link = guid  # feedparser: an Atom id is a permalink unless told otherwise
    return _entry(
        title, guid, link, summary, content, published or updated, authors, categories, None,
        title_is_text,
    )  # fmt: skip


def _rss_title_is_text(title: str) -> bool:
    """feedparser's guess for an RSS title (its looks_like_html): HTML if it has a closing tag
    or an entity, and every tag and entity is HTML's; _Odd when that needs its tag list."""
    if ("<" not in title and "&" not in title) or not (
        _CLOSE_TAG.search(title) or _ENTITY_REF.search(title)
    ):
        return True  # the same either way in the first case
    if any(e not in html.entities.entitydefs for e in _NAMED_REF.findall(title)):
        return True
    if any(tag.lower() not in _COMMON_TAGS for tag in _OPEN_OR_CLOSE.findall(title)):
        raise _Odd
    return False


def _nested_categories(el: Any) -> list[str]:
    """The <category> elements feedparser finds inside an unknown wrapper (<categories>)."""
    found = []
    for inner in el.iterdescendants():
        if inner.tag == "category":
            if inner.get("term") or inner.get("label"):
                raise _Odd
            found.append(_text(inner))
        elif isinstance(inner.tag, str) and _local(inner.tag) in _READ_ANYWHERE:
            raise _Odd
    return found


def _check_nested(el: Any) -> None:
    """feedparser reads some elements at any depth (a category inside <categories>)."""
    for inner in el.iterdescendants():
        if isinstance(inner.tag, str) and _local(inner.tag) in _READ_ANYWHERE:
            raise _Odd


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _atom_text(el: Any) -> str:
    kind = el.get("type", "text")
    if kind not in ("text", "html", "text/plain", "text/html") or el.get("mode"):
        raise _Odd  # xhtml, base64 and other content feedparser rewrites
    return _text(el)


def _uri(url: str, base: str = "") -> str:
    """A URL resolved as feedparser does: against xml:base, and "http:///x" → "http://x"."""
    url = _URIFIXER.sub(r"\1\3", url)
    if not base:
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return ""


def _base(el: Any, base: str) -> str:
    own = el.get(_XML_BASE)
    return base if own is None else _uri(own, base)


def _rss_link(url: str, base: str) -> str:
    # feedparser undoes what it takes for a double-escaped query string in RSS links
    return _AMP_NAME.sub(r"&\g<1>", _uri(url, base).replace("&amp;", "&"))


def _date(text: str) -> datetime | None:
    """A date exactly as the feedparser path reads it, or _Odd: only the forms both read
    alike (RFC 822 with a zone email.utils and feedparser share, or ISO 8601 with Z or a
    numeric offset; years within _YEARS); feedparser decides every other one."""
    if not text:
        return None
    if text[:4].isdigit():
        m = _ISO_DATE.match(text)
    else:
        m = _RFC822_DATE.match(text)
    if m is None or not _YEARS[0] <= int(m["year"]) <= _YEARS[1] or not _offset_ok(m["offset"]):
        raise _Odd
    try:
        when = datetime.fromisoformat(text) if m.re is _ISO_DATE else parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # "-0000" and zone-less ISO dates: feedparser: UTC
        return when.astimezone(UTC).replace(microsecond=0)
    except (ValueError, TypeError, IndexError, OverflowError) as e:
        raise _Odd from e


def _offset_ok(offset: str | None) -> bool:
    """A numeric offset a clock can show (±hh:mm, hh < 24, mm < 60), or none at all."""
    if not offset or offset[0] not in "+-":
        return True
    m = _OFFSET.fullmatch(offset)
    return m is not None and int(m[1]) < 24 and int(m[2] or 0) < 60


def _author(text: str) -> str:
    """feedparser's reading of an RSS author string: the name without its address."""
    m = _EMAIL.search(text)
    if m is None:
        return text
    name = text.replace(m.group(0), "").replace("()", "").replace("<>", "")
    name = name.replace("&lt;&gt;", "").strip()
    if name.startswith("("):
        name = name[1:]
    if name.endswith(")"):
        name = name[:-1]
    return name.strip()


def _entry(
    title: str,
    guid: str | None,
    link: str | None,
    summary: str,
    content: list[str],
    published: datetime | None,
    authors: list[str],
    categories: list[str],
    announce: str | None,
    title_is_text: bool,
) -> ParsedEntry:
    for value in content:
        if len(value) > len(summary):
            summary = value
    return ParsedEntry(
        title=_title(title, summary, title_is_text),
        guid=guid or None,
        link=link or None,
        summary=plain_text(summary),
        published=published,
        authors=_names(authors),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
        announce_type=announce or None,
    )


# --- feedparser ------------------------------------------------------------------------------


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
    entries = [_finish(_from_feedparser(item, prefix), arxiv) for item in parsed.entries]
    # Many real feeds are slightly malformed; the entries feedparser recovers are kept
    # (dropping them would lose news), but the feed is reported so its owner can be told.
    problem = (
        f"malformed feed, {len(entries)} entries recovered ({reason})" if parsed.bozo else None
    )
    return ParsedFeed(entries, problem)


def _from_feedparser(item: Mapping[str, Any], arxiv_prefix: str | None) -> ParsedEntry:
    summary = item.get("summary") or ""
    for content in item.get("content") or ():
        if len(content.get("value") or "") > len(summary):
            summary = content["value"]
    categories = [_str(tag.get("term")).strip() for tag in item.get("tags") or ()]
    announce = None
    if arxiv_prefix:
        primary = item.get(f"{arxiv_prefix}_primary_category")
        if isinstance(primary, Mapping) and primary.get("term"):
            categories.insert(0, _str(primary["term"]))
        announce = _str(item.get(f"{arxiv_prefix}_announce_type")).strip() or None
    return ParsedEntry(
        title=_title(item.get("title"), summary, _is_text(item.get("title_detail"))),
        guid=(item.get("id") or "").strip() or None,
        link=(item.get("link") or "").strip() or None,
        summary=plain_text(summary),
        published=_feedparser_date(item),
        authors=_author_names(item.get("authors")),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
        announce_type=announce,
    )


def _feedparser_date(item: Mapping[str, Any]) -> datetime | None:
    """The entry's published date, else its updated one, as feedparser read it; a date Python
    cannot hold or that cannot be (a year 0 or 10000 once in UTC, MySQL's zero date, a year
    outside _YEARS, an offset such as +25:00 or +0a:00) is no date, never an error."""
    # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed, with a
    # DeprecationWarning, when published_parsed is there but None (an unreadable date)
    fields = cast(dict[str, Any], item)
    for key in ("published", "updated"):
        when = dict.get(fields, f"{key}_parsed")
        if not when or _MALFORMED_OFFSET.search(_str(dict.get(fields, key))):
            continue
        try:
            result = datetime.fromtimestamp(calendar.timegm(when), UTC)
        except (ValueError, OverflowError, OSError):
            continue
        if _YEARS[0] <= result.year <= _YEARS[1]:
            return result
    return None


def _is_text(detail: object) -> bool:
    return isinstance(detail, Mapping) and detail.get("type") == "text/plain"


def _finish(entry: ParsedEntry, arxiv: bool) -> ParsedEntry:
    """Fill the arXiv fields: any entry whose guid or link names an arXiv paper gets its id
    and version; an arXiv listing's entry also loses the listing's preamble, and its one
    comma-separated author string becomes a list."""
    ref = arxiv_ref(entry.guid) or arxiv_ref(entry.link)
    if ref is None and not arxiv:
        return entry
    announce = entry.announce_type
    summary = entry.summary
    authors = entry.authors
    if arxiv:
        m = _ARXIV_PREAMBLE.match(summary)
        if m is not None:
            announce = announce or m.group(1)
            ref = arxiv_ref(summary[: m.end()].split()[0]) or ref
            summary = summary[m.end() :]
        if len(authors) == 1 and ("," in authors[0] or " and " in authors[0]):
            parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", authors[0])
            authors = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if ref is None:
        return replace(entry, summary=summary, authors=authors, announce_type=announce)
    version = ref[1]
    if version is None and entry.link:
        version = (arxiv_ref(entry.link) or ("", None))[1]
    return replace(
        entry,
        summary=summary,
        authors=authors,
        arxiv_id=ref[0],
        arxiv_version=version or entry.arxiv_version,
        announce_type=announce.lower() if announce else None,
    )


# --- JSON ------------------------------------------------------------------------------------


def _parse_json(name: str, body: bytes, kind: FeedType | None, base: str) -> list[ParsedEntry]:
    try:
        data = json.loads(body)
    except RecursionError as e:
        raise FeedError(name, "not valid JSON (nested deeper than digest reads)") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FeedError(name, f"not valid JSON ({e})") from e
    except ValueError as e:  # an integer past Python's int_max_str_digits
        limit = sys.get_int_max_str_digits()
        raise FeedError(name, f"not valid JSON (an integer longer than {limit:,} digits)") from e
    if (
        kind != "daily-papers"
        and isinstance(data, dict)
        and str(data.get("version", "")).startswith("https://jsonfeed.org/version/")
    ):
        items = data.get("items")
        if not isinstance(items, list):
            raise FeedError(name, "JSON Feed without an items list")
        authors = data.get("authors") or [data.get("author")]  # 1.1, else 1.0
        return [
            _finish(_from_json_feed(i, authors, base), False) for i in items if isinstance(i, dict)
        ]
    if (
        kind != "json"
        and isinstance(data, list)
        and all(isinstance(x, dict) and "paper" in x for x in data)
    ):
        return [_from_daily_papers(name, item) for item in data]
    if kind == "json":
        raise FeedError(name, 'type = "json" but the document is not a JSON Feed')
    if kind == "daily-papers":
        raise FeedError(name, 'type = "daily-papers" but the document is not a Daily-Papers list')
    raise FeedError(name, "JSON that is neither a JSON Feed nor a Daily-Papers listing")


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
        title=_title(_str(item.get("title")), _str(summary), True),  # the spec: plain text
        guid=_json_id(item.get("id")) or None,
        link=_json_link(_str(item.get("url")) or _str(item.get("external_url")), base) or None,
        summary=plain_text(_str(summary)),
        published=_iso(item.get("date_published") or item.get("date_modified")),
        authors=tuple(
            plain_text(_str(a.get("name")))
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
    return _str(value)


def _from_daily_papers(name: str, item: Mapping[str, Any]) -> ParsedEntry:
    paper = item.get("paper")
    if not isinstance(paper, dict) or not _str(paper.get("id")):
        raise FeedError(name, "Daily-Papers item without paper.id")
    paper_id = _str(paper["id"]).strip()
    organisation = item.get("organization") or paper.get("organization") or {}
    upvotes = paper.get("upvotes")
    bare = _BARE_ARXIV_ID.match(paper_id)
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
        arxiv_id=bare.group(1) if bare else None,
        arxiv_version=int(bare.group(2)) if bare and bare.group(2) else None,
    )


# --- shared ----------------------------------------------------------------------------------


def _title(title: str | None, summary: str | None, is_text: bool = False) -> str:
    """The feed's title, else the start of its text (some RSS items have no title); a text
    title ("History of the <blink> tag") is text, only an HTML one has its tags removed."""
    text = _one_line(title or "") if is_text else plain_text(title)
    if text:
        return text
    text = plain_text(summary)
    if len(text) > TITLE_FROM_SUMMARY:
        text = text[:TITLE_FROM_SUMMARY].rsplit(" ", 1)[0] + "…"
    return text or "(untitled)"


def _names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in (plain_text(name) for name in names) if n))


def _author_names(authors: object) -> tuple[str, ...]:
    if not isinstance(authors, list):
        return ()
    return _names(_str(a.get("name")) for a in authors if isinstance(a, dict))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
    except (ValueError, OverflowError):  # "0000-00-00", or a year 0 or 10000 once in UTC
        return None
    return when if _YEARS[0] <= when.year <= _YEARS[1] else None
