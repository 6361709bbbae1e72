"""The scoring formula, in one place: its constants and its scalar form.

The array code (scoring.py, picks.py) computes exactly these quantities for many rows and
profiles at once; tests/test_rank.py checks that both give the same floats.

How a score is made (the README's "Reading a digest's why line" says the same for users):

- Text is split into tokens: runs of word characters, and single punctuation marks. A word is
  compared by its light stem (`stem`), so "models" finds "model" and "learned" finds
  "learning"; a phrase matches consecutive tokens; "transformer*" matches any word starting
  so; an all-caps term of 2 to 6 letters ("RL", "DPO") matches that exact word, or its
  plural ("LLMs"), and nothing in other case.
- A keyword found n times in a field the profile reads (weight F > 0) gives
  ``weight × F × rarity × saturation(n) × feed weight``, where saturation is BM25's
  ``n (k1 + 1) / (n + k1 (1 - b + b · length / average length))`` (1 for one mention in a
  field of average length, never above k1 + 1 = 2.2) and rarity is BM25's idf divided by
  the idf of a term found in one entry of ten, never below 1 (such a term, or a commoner
  one, counts its weight; a rarer one more: about 2 at one in a hundred).
  Without collection statistics both the rarity and the length factor are 1.
- A followed author or organisation gives its weight × feed weight.
- Upvotes and freshness add bounded boosts, only to entries that matched something.
- The score is the sum of all of these, rounded to 6 decimal places.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..models import Field

#: BM25's saturation and length-normalisation parameters, at their usual values
K1 = 1.2
B = 0.75
#: upvotes at which the popularity boost is full; it grows with their logarithm
UPVOTES_FULL = 100
FRESHNESS_HALF_LIFE = timedelta(days=1)
#: fields of prose, whose length is normalised (names and labels are lists)
NORMALISED: tuple[Field, ...] = ("title", "summary")
#: the share of entries a term can be in and count exactly its weight (see `rarity`)
RARITY_ONE = 0.1


@dataclass(frozen=True, slots=True)
class Collection:
    """Statistics of what the feeds publish: how rare each term is, how long fields run."""

    documents: int
    #: per term key (`compile_term(...)[0]`), the number of documents containing it
    document_frequency: Mapping[str, int]
    #: average length in tokens of each field in NORMALISED
    average_length: Mapping[str, float]


#: no statistics: every term's rarity is 1 and lengths are not normalised
NO_STATISTICS = Collection(0, {}, {})


def rarity(documents: int, frequency: int) -> float:
    """BM25's idf over the idf of a term in one entry of ten (RARITY_ONE), never below 1: a
    term that common, or commoner, counts its weight; a rarer one more.

    The floor keeps a reader's main interest from fading when their feeds are full of it
    (every entry of an RL feed says "reinforcement learning"), and keeps min_score meaning
    what it says: one title mention of a weight-1 term is worth about 2."""
    if documents <= 0:
        return 1.0
    value = idf(documents, min(frequency, documents))
    return max(1.0, value / idf(documents, RARITY_ONE * documents))


def idf(documents: float, frequency: float) -> float:
    return math.log(1.0 + (documents - frequency + 0.5) / (frequency + 0.5))


def saturation(count: int, length: int, average: float | None) -> float:
    """What `count` mentions in a field of `length` tokens are worth (BM25's tf part)."""
    norm = 1.0 if not average else 1.0 - B + B * length / average
    return count * (K1 + 1.0) / (count + K1 * norm)
