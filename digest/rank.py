"""Profile × entries → scored, explained picks. Pure functions behind a small interface."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

from .models import Entry, Match, Pick, Profile

#: a term in the title counts this much more than the same term in the summary
TITLE_POINTS = 2.0
SUMMARY_POINTS = 1.0
_OLDEST = datetime.min.replace(tzinfo=UTC)


class Ranker(Protocol):
    """Anything that turns a profile and new entries into the picks of one digest."""

    def rank(
        self, entries: Sequence[Entry], profile: Profile, feed_weights: Mapping[str, float]
    ) -> list[Pick]: ...


class KeywordRanker:
    """Weighted whole-word, case-insensitive matches of terms and phrases.

    A term scores its weight × TITLE_POINTS when in the title, plus its weight ×
    SUMMARY_POINTS when in the summary; the sum is multiplied by the feed's weight (the
    highest, for an entry from several feeds). Excluded entries and those under the profile's
    min_score are dropped; the best max_entries are kept.
    """

    def rank(
        self, entries: Sequence[Entry], profile: Profile, feed_weights: Mapping[str, float]
    ) -> list[Pick]:
        picks = [
            pick
            for entry in entries
            if (pick := score(entry, profile, feed_weights)) is not None
            and pick.score >= profile.min_score
            and pick.score > 0
        ]
        picks.sort(key=_order)
        return picks[: profile.max_entries]


def score(entry: Entry, profile: Profile, feed_weights: Mapping[str, float]) -> Pick | None:
    """The entry's pick with every match behind its score, or None when it is excluded."""
    compiled = _compile(profile)
    if any(p.search(entry.title) or p.search(entry.summary) for p in compiled.exclude):
        return None
    weight = max((feed_weights.get(feed, 1.0) for feed in entry.feeds), default=1.0)
    matches: list[Match] = []
    for term, term_weight, pattern in compiled.keywords:
        if pattern.search(entry.title):
            matches.append(Match(term, "title", term_weight * TITLE_POINTS * weight))
        if pattern.search(entry.summary):
            matches.append(Match(term, "summary", term_weight * SUMMARY_POINTS * weight))
    total = round(sum(m.points for m in matches), 6)
    return Pick(entry=entry, score=total, matches=tuple(matches), feed_weight=weight)


def why(pick: Pick) -> str:
    """The one-line reason shown under a pick: each term and where it matched."""
    fields: dict[str, list[str]] = {}
    for match in pick.matches:
        fields.setdefault(match.term, []).append(match.field)
    parts = [f"{term} ({' + '.join(where)})" for term, where in fields.items()]
    line = ", ".join(parts)
    if pick.feed_weight != 1.0:
        line += f"; feed weight ×{pick.feed_weight:g}"
    return line


def term_pattern(term: str) -> re.Pattern[str]:
    """A whole-word, case-insensitive pattern; spaces in a phrase match any whitespace."""
    words = [re.escape(word) for word in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class _Compiled:
    __slots__ = ("keywords", "exclude")

    def __init__(self, profile: Profile) -> None:
        self.keywords = [(term, w, term_pattern(term)) for term, w in profile.keywords]
        self.exclude = [term_pattern(term) for term in profile.exclude]


@lru_cache(maxsize=256)
def _compile(profile: Profile) -> _Compiled:
    return _Compiled(profile)


def _order(pick: Pick) -> tuple[float, float, str]:
    published = pick.entry.published or _OLDEST
    return (-pick.score, -published.timestamp(), pick.entry.id)
