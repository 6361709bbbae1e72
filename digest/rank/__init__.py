"""Ranking: a profile and new entries → the picks of one digest, each with why it was picked.

The Ranker Protocol is what the rest of digest talks to; RANKERS names the implementations a
config can choose (`[digest] ranker`, default "keyword"). This module and `explain`, `terms`
and `formula` import no numpy: rendering a digest only needs the words (`why`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DigestError
from ..models import Entry, Pick, Profile, Ranking
from .explain import breakdown, sectioned, why
from .formula import NO_STATISTICS, Collection, saturation
from .terms import compile_term, follow_key, stem

if TYPE_CHECKING:
    from .keyword import KeywordRanker, score

__all__ = [
    "NO_STATISTICS",
    "RANKERS",
    "Collection",
    "KeywordRanker",
    "Ranker",
    "RankerFactory",
    "breakdown",
    "compile_term",
    "follow_key",
    "make_ranker",
    "saturation",
    "score",
    "sectioned",
    "stem",
    "why",
]


class Ranker(Protocol):
    """Anything that turns profiles and new entries into the picks of digests.

    `rank_many` is what a run calls (every due reader's profile over one candidate list);
    `ranking` and `explain` are what `digest explain` and `digest preview` show."""

    @property
    def collection(self) -> Collection:
        """The statistics of the entries the scores were made against (`digest explain`)."""
        ...

    def rank(self, entries: Sequence[Entry], profile: Profile) -> list[Pick]:
        """The profile's picks, best first, grouped into its sections."""
        ...

    def rank_many(
        self, entries: Sequence[Entry], profiles: Sequence[Profile], *, explained: bool = True
    ) -> list[list[Pick]]:
        """Each profile's picks over the same entries; `explained=False`: without matches."""
        ...

    def ranking(self, entries: Sequence[Entry], profile: Profile) -> Ranking:
        """The picks, and every other entry with its breakdown and why it was left out."""
        ...

    def explain(self, entry: Entry, profile: Profile) -> tuple[Pick | None, Pick]:
        """The entry's pick (None when it cannot be picked) and its full breakdown."""
        ...


#: (profiles, feed weights, entries for term statistics, now) → a ranker
RankerFactory = Callable[
    [Iterable[Profile], Mapping[str, float], Sequence[Entry], datetime], Ranker
]


def _keyword(
    profiles: Iterable[Profile],
    feed_weights: Mapping[str, float],
    collection: Sequence[Entry],
    now: datetime,
) -> Ranker:
    from .keyword import KeywordRanker

    return KeywordRanker(profiles, feed_weights=feed_weights, collection=collection, now=now)


#: the rankers a config can name; a new ranker is one module and one entry here
RANKERS: dict[str, RankerFactory] = {"keyword": _keyword}


def make_ranker(
    name: str,
    profiles: Iterable[Profile],
    *,
    feed_weights: Mapping[str, float],
    collection: Sequence[Entry],
    now: datetime,
) -> Ranker:
    """The ranker called `name` in RANKERS, for these profiles.

    Raises DigestError for a name RANKERS does not hold (check-config refuses it first)."""
    try:
        factory = RANKERS[name]
    except KeyError:
        known = ", ".join(sorted(RANKERS))
        raise DigestError(f"unknown ranker {name!r} (known: {known})") from None
    return factory(profiles, feed_weights, collection, now)


def __getattr__(name: str) -> Any:
    # the keyword ranker needs numpy and pyahocorasick: imported on first use only
    if name in ("KeywordRanker", "score"):
        from . import keyword

        return getattr(keyword, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
