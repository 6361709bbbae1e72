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
  ``weight × F × saturation(n) × feed weight``, where saturation is BM25's
  ``n (k1 + 1) / (n + k1 (1 - b + b · length / average length))`` (1 for one mention in a
  field of average length, never above k1 + 1 = 2.2). Without collection statistics the
  length factor is 1.
- There is no rarity (idf) factor: the weights are the reader's own statement of how much
  a term matters, and idf is what BM25 uses when a query has no weights. Counting
  specificity twice let rare peripheral phrases outrank the decisive common words; on both
  judged sets (tests/test_quality.py) the score is better without it.
- A followed author or organisation gives its weight × feed weight.
- Upvotes and freshness add bounded boosts, only to entries that matched something.
- The score is the sum of all of these, rounded to 6 decimal places.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Collection:
    """Statistics of what the feeds publish: in how many entries each term is (shown by
    `digest explain`), how long fields run (for length normalisation)."""

    documents: int
    #: per term key (`compile_term(...)[0]`), the number of documents containing it
    document_frequency: Mapping[str, int]
    #: average length in tokens of each field in NORMALISED
    average_length: Mapping[str, float]


#: no statistics: lengths are not normalised
NO_STATISTICS = Collection(0, {}, {})


def saturation(count: int, length: int, average: float | None) -> float:
    """What `count` mentions in a field of `length` tokens are worth (BM25's tf part)."""
    norm = 1.0 if not average else 1.0 - B + B * length / average
    return count * (K1 + 1.0) / (count + K1 * norm)
