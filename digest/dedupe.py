"""Canonical identity: which parsed items are the same entry, across feeds and days. Pure.

An item has several identity keys, strongest first: its arXiv id without version, a DOI,
its normalised URL, its guid, and a fingerprint of its title when the title is distinctive
enough to name one thing and the item has no arXiv id or DOI. Two items sharing any key are
one entry (the state file keeps every key it has seen, so this holds across days too); the
strongest key is the entry's id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .models import ParsedEntry
from .parse import arxiv_ref

# A guid with a scheme (http:, urn:, tag:, oai:) names the entry globally; anything else
# ("42", "post-7") is only unique within its feed and must not merge two feeds' items.
_GLOBAL_GUID = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")
_NON_WORD = re.compile(r"[\W_]+")
_DOI = re.compile(r"(?:doi\.org/|^doi:|^info:doi/)(10\.\d{4,9}/[^\s\"<>#?]+)", re.IGNORECASE)
# query parameters that say where a click came from, not what it points to
_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|igshid|_hsenc"
    r"|_hsmktg|mkt_tok|ref|ref_src|ref_url|referrer|src|source|cmpid|spm|s_cid|__s|oly_\w+"
    r"|vero_\w+|wt_\w+|rss|cmp)$",
    re.IGNORECASE,
)
# Titles that name a kind of post rather than one post are never fingerprinted: a series
# ("Episode 12", "Issue #3", "Week 23"), dates, and short or stock titles.
TITLE_MIN_WORDS = 4
TITLE_MIN_CHARS = 24
_GENERIC_WORDS = frozenset(
    {"untitled", "no title", "update", "updates", "news", "links", "roundup", "open thread"}
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parsed item with its identity keys and every feed it came from in this collection."""

    #: the strongest key: the entry's id when it is new
    id: str
    entry: ParsedEntry
    feeds: tuple[str, ...]
    #: every key the item can be recognised by, strongest first (id is the first)
    keys: tuple[str, ...] = ()


def identity_keys(entry: ParsedEntry, feed_url: str) -> tuple[str, ...]:
    """Every key the item can be recognised by, strongest first; never empty."""
    keys: list[str] = []
    ref = (
        (entry.arxiv_id, entry.arxiv_version)
        if entry.arxiv_id
        else arxiv_ref(entry.guid) or arxiv_ref(entry.link)
    )
    if ref is not None:
        keys.append(f"arxiv:{ref[0].lower()}")
    for text in (entry.guid, entry.link):
        m = _DOI.search(text.strip()) if text else None
        if m is not None:
            keys.append("doi:" + m.group(1).rstrip(".,;)").lower())
            break
    strong = bool(keys)
    if entry.link:
        url = normalise_url(entry.link)
        # a site's home page is where feeds without item pages point every item
        if url and urlsplit(url).path:
            keys.append(url)
    if entry.guid:
        guid = entry.guid.strip()
        if not _GLOBAL_GUID.match(guid):
            keys.append(f"{feed_url}#{guid}")
        elif guid.lower().startswith(("http://", "https://")):
            keys.append(normalise_url(guid) or guid)
        else:
            keys.append(guid)
    # Two papers with different arXiv ids or DOIs are different papers whatever their
    # titles say (a title is reused for a thesis, an erratum, a workshop version…).
    fingerprint = None if strong else title_fingerprint(entry.title)
    if fingerprint is not None:
        keys.append(fingerprint)
    if not keys:
        # no link, no guid, a stock title: only the same text in the same feed is the same
        text = f"{normalise_title(entry.title)}\n{entry.summary}"
        keys.append(f"{feed_url}#text:" + _hash(text))
    return tuple(dict.fromkeys(keys))


def canonical_id(entry: ParsedEntry, feed_url: str) -> str:
    """The entry's identity: its strongest key."""
    return identity_keys(entry, feed_url)[0]


def normalise_url(url: str) -> str | None:
    """One spelling per address: https, lower-case host without www., no default port,
    fragment, trailing slash or tracking parameters; remaining parameters sorted.
    None for what is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    if not parts.query:
        return f"https://{host}{path}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    )
    return urlunsplit(("https", host, path, urlencode(query), ""))


def normalise_title(title: str) -> str:
    """Case, accents, punctuation and spacing removed, so trivial edits keep the same hash."""
    if title.isascii():  # NFKD changes no ASCII text, and it has no combining marks
        text = title.casefold()
    else:
        text = unicodedata.normalize("NFKD", title).casefold()
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", text).strip()


def title_fingerprint(title: str) -> str | None:
    """A key from the title, or None when the title could name several different posts."""
    text = normalise_title(title)
    words = text.split()
    if (
        len(text) < TITLE_MIN_CHARS
        or sum(len(w) >= 3 for w in words) < TITLE_MIN_WORDS
        or any(w.isdigit() or (w[0].isdigit() and w[-1].isdigit()) for w in words)
        or any(generic in text for generic in _GENERIC_WORDS if len(words) <= 6)
    ):
        return None
    return "title:" + _hash(text)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def merge(batches: Iterable[tuple[str, str, Sequence[ParsedEntry]]]) -> list[Candidate]:
    """(feed name, feed url, items) batches → one Candidate per entry, first occurrence wins.

    Items sharing any key are one Candidate, whose keys are the union of theirs. The order
    of the result is the order entries were first met, so merging is deterministic.
    """
    found: list[Candidate] = []
    index: dict[str, int] = {}
    for name, url, items in batches:
        for item in items:
            keys = identity_keys(item, url)
            hits = sorted({index[k] for k in keys if k in index})
            if not hits:
                index.update((k, len(found)) for k in keys)
                found.append(Candidate(keys[0], item, (name,), keys))
                continue
            first = hits[0]
            for other in hits[1:]:  # this item joins entries that were apart until now
                found[first] = _join(found[first], found[other])
            seen = found[first]
            new_keys = tuple(k for k in keys if k not in seen.keys)
            feeds = seen.feeds if name in seen.feeds else (*seen.feeds, name)
            found[first] = replace(seen, feeds=feeds, keys=seen.keys + new_keys)
            for k in found[first].keys:
                index[k] = first
            for other in hits[1:]:
                found[other] = replace(found[other], keys=())
    return [c for c in found if c.keys]


def _join(a: Candidate, b: Candidate) -> Candidate:
    feeds = a.feeds + tuple(f for f in b.feeds if f not in a.feeds)
    keys = a.keys + tuple(k for k in b.keys if k not in a.keys)
    return replace(a, feeds=feeds, keys=keys)
