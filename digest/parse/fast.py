"""The fast path: well-formed RSS 2.0 and Atom read with lxml, giving exactly the entries the
feedparser path gives (tests/test_parse_corpus.py compares both on ~2,250 documents); a
document with anything it does not reproduce exactly (a DOCTYPE, RSS 1.0, XHTML content,
elements feedparser reads that it does not, zone names only feedparser knows, broken XML…)
is handed to feedparser: fast_parse returns None.

XML safety: the fast path never sees a DTD: a document with ``<!DOCTYPE`` or ``<!ENTITY``
goes to feedparser. Its lxml parser is also configured not to resolve entities, not to load
a DTD, not to touch the network and to keep libxml2's limits (no ``huge_tree``)."""

from __future__ import annotations

import html
import html.entities
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from ..models import FeedType, ParsedEntry
from .arxiv import ARXIV_NS, finish
from .dates import fast_date
from .document import Document, ParsedFeed, document_base, http_charset
from .text import clean_names, entry_title, plain_text

_ATOM = "{http://www.w3.org/2005/Atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_ARXIV = "{" + ARXIV_NS + "}"
_MEDIA = "{http://search.yahoo.com/mrss/}"
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
    if root.getroottree().docinfo.doctype:
        return None  # a DTD the byte test missed: UTF-16, or recoded from the HTTP charset
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
        entries = [finish(one(item, base), arxiv) for item in items]
        if len(entries) != sum(1 for _ in root.iter("{*}item", "{*}entry")):
            return None  # feedparser reads an item or entry wherever it is
        return entries
    except Exception:  # _Odd, or input no test foresaw: feedparser decides
        return None


def read(doc: Document) -> ParsedFeed | None:
    """PARSERS' entry: the document's entries, or None to hand it to the next parser."""
    entries = fast_parse(
        doc.body, doc.kind, url=doc.url, content_type=doc.content_type,
        content_location=doc.content_location,
    )  # fmt: skip
    return None if entries is None else ParsedFeed(entries)


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
            published = fast_date(_text(child))
        elif kind == "updated":
            updated = fast_date(_text(child))
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
            published = fast_date(_text(child))
        elif kind == "updated":
            updated = fast_date(_text(child))
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
        title=entry_title(title, summary, title_is_text),
        guid=guid or None,
        link=link or None,
        summary=plain_text(summary),
        published=published,
        authors=clean_names(authors),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
        announce_type=announce or None,
    )
