"""Canonical ids: which parsed items are the same entry. Pure functions."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import ParsedEntry

# A guid with a scheme (http:, urn:, tag:, oai:) names the entry globally; anything else
# ("42", "post-7") is only unique within its feed and must not merge two feeds' items.
_GLOBAL_GUID = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parsed item with its canonical id and every feed it came from in this collection."""

    id: str
    entry: ParsedEntry
    feeds: tuple[str, ...]


def canonical_id(entry: ParsedEntry, feed_url: str) -> str:
    """The entry's identity: its guid, else its link, else a hash of its normalised title."""
    if entry.guid:
        guid = entry.guid.strip()
        return guid if _GLOBAL_GUID.match(guid) else f"{feed_url}#{guid}"
    if entry.link:
        return entry.link.strip()
    return "title:" + hashlib.sha256(normalise_title(entry.title).encode()).hexdigest()[:32]


def normalise_title(title: str) -> str:
    """Case, accents, punctuation and spacing removed, so trivial edits keep the same hash."""
    text = unicodedata.normalize("NFKD", title).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", text).strip()


def merge(batches: Iterable[tuple[str, str, Sequence[ParsedEntry]]]) -> list[Candidate]:
    """(feed name, feed url, items) batches → one Candidate per id, first occurrence wins.

    The order of the result is the order ids were first met, so merging is deterministic.
    """
    found: dict[str, Candidate] = {}
    for name, url, items in batches:
        for item in items:
            key = canonical_id(item, url)
            seen = found.get(key)
            if seen is None:
                found[key] = Candidate(key, item, (name,))
            elif name not in seen.feeds:
                found[key] = Candidate(key, seen.entry, (*seen.feeds, name))
    return list(found.values())
