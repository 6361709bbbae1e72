"""Scoring in arrays: every profile's score of every row from the rows' hits."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..models import FIELDS, Field
from .formula import K1, NORMALISED, B, Collection
from .match import CELLS, EMPTY, RUN, Bools, Compiled, Floats, Ints, Row
from .terms import FOLLOW


@dataclass(frozen=True, slots=True)
class Found:
    """Every hit of a list of rows, searchable by (row, term id): for explaining picks."""

    #: the vocabulary's size: a hit's key is row × size + term id
    size: int
    #: the distinct keys, sorted, and where each one's hits start in `order` (one more
    #: element: the end); `order` lists the hits by key, then field
    keys: Ints
    start: Ints
    order: Ints
    term: Ints
    field: Ints
    count: Ints
    #: what the hit's count is worth in its field (saturation and length normalisation)
    saturation: Floats

    @classmethod
    def of(cls, rows: Sequence[Row], size: int, averages: Sequence[float | None]) -> Found:
        hits = Hits.of(rows)
        keys = hits.row * size + hits.term
        # a row's hits go by term id, except followed names, which come last
        if len(keys) and bool((keys[1:] < keys[:-1]).any()):
            order = np.argsort(keys, kind="stable")
        else:
            order = np.arange(len(keys))
        ordered = keys[order]
        first = np.flatnonzero(np.diff(ordered, prepend=-1))
        if not len(first):  # no hits: one key that matches nothing
            ordered, first = np.asarray([-1], dtype=np.int64), np.asarray([0], dtype=np.int64)
        return cls(
            size,
            ordered[first],
            np.append(first, len(hits.term)),
            order,
            hits.term,
            hits.field,
            hits.count,
            saturations(hits, averages),
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One profile's scores of every row."""

    total: Floats
    excluded: Bools
    required: Bools


@dataclass(frozen=True, slots=True)
class Scores:
    """Entries × profiles: the score (0: nothing matched), and the exclude / require tests."""

    total: Floats
    excluded: Bools
    #: True when the profile requires nothing, or a required term is there
    required: Bools
    #: when made for selecting: the best score in each run of RUN rows (runs × profiles),
    #: and `total` is -1 wherever a profile cannot pick the row
    maxima: Floats | None = None

    def column(self, j: int) -> Column:
        return Column(self.total[:, j], self.excluded[:, j], self.required[:, j])


@dataclass(frozen=True, slots=True)
class Hits:
    """The hits of a run of rows, flattened: for each, its row, term, field, count and the
    length of its field."""

    rows: int
    row: Ints
    term: Ints
    field: Ints
    count: Ints
    length: Ints

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Hits:
        analyses = [r.analysis for r in rows]
        row = np.repeat(np.arange(len(rows)), [len(a.terms) for a in analyses])
        field = np.concatenate([a.fields for a in analyses] + [EMPTY])
        lengths = np.asarray([a.lengths + (0,) for a in analyses], dtype=np.int64)
        return cls(
            len(rows),
            row,
            np.concatenate([a.terms for a in analyses] + [EMPTY]),
            field,
            np.concatenate([a.counts for a in analyses] + [EMPTY]),
            lengths[row, field] if len(row) else EMPTY,
        )


class Owners:
    """Term id → the profiles using it, with their weights: a compressed sparse row."""

    def __init__(self, size: int, profiles: Ints, terms: Ints, weights: Floats) -> None:
        by = np.lexsort((profiles, terms))  # by term, then profile
        terms = terms[by]
        # 32-bit indices: half the memory traffic of the inner loop (spread)
        self.profiles = profiles[by].astype(np.int32)
        self.weights = weights[by]
        self.start = np.searchsorted(terms, np.arange(size + 1)).astype(np.int32)
        #: the profile of each slot (owner × places + field) in spread
        self.slot_profile = np.repeat(self.profiles, len(FIELDS) + 1)

    @classmethod
    def of(cls, size: int, owned: Sequence[Sequence[tuple[int, float]]]) -> Owners:
        """From each profile's (term id, weight) pairs."""
        pairs = list(itertools.chain.from_iterable(owned))
        return cls(
            size,
            np.repeat(np.arange(len(owned)), [len(o) for o in owned]),
            np.fromiter((t for t, _ in pairs), dtype=np.int64, count=len(pairs)),
            np.fromiter((w for _, w in pairs), dtype=np.float64, count=len(pairs)),
        )

    def __bool__(self) -> bool:
        return len(self.profiles) > 0

    def spread(
        self,
        hits: Hits,
        reads: Floats,
        m: int,
        base: Floats | None = None,
        out: Floats | None = None,
    ) -> Floats:
        """Σ over hits of owner weight × field weight (× base), per row and profile, added
        in hit order (into `out`, hits.rows × m, when given).

        One element per (hit, owner of its term), made with repeats and flat takes rather
        than gathers through a hit index: this is the inner loop of ranking."""
        if out is None:
            out = np.zeros((hits.rows, m))
        if not self or len(hits.term) == 0:
            return out
        places = len(FIELDS) + 1  # reads has a row for each field and followed names
        # slot = owner × places + field: the owner's weight × its profile's field weight
        weighted = (self.weights[:, None] * reads[:, self.profiles].T).ravel()
        first = self.start[hits.term]
        counts = self.start[hits.term + 1] - first
        # each hit's first slot, less the place its run of owners starts at in `slot`
        ends = np.cumsum(counts, dtype=np.int32)
        shift = (first - (ends - counts)) * places + hits.field.astype(np.int32)
        # one repeat, then takes from the hits' small arrays, which stay in cache
        hit = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        slot = shift.take(hit)
        slot += np.arange(0, len(slot) * places, places, dtype=np.int32)
        value = weighted.take(slot)
        if base is not None:
            value *= base.take(hit)
        cell = (hits.row * m).astype(np.int32).take(hit)
        cell += self.slot_profile.take(slot)
        np.add.at(out.reshape(-1), cell, value)  # a view: `out` is contiguous
        return out


def saturations(hits: Hits, averages: Sequence[float | None]) -> Floats:
    """`saturation` of every hit, in arrays; `averages`: each field's average length (None:
    not normalised), as `_factors` gives them."""
    average = np.asarray([a or 0.0 for a in averages] + [0.0])[hits.field]
    norm = np.ones(len(hits.field))
    some = average > 0
    norm[some] = 1.0 - B + B * hits.length[some] / average[some]
    count = hits.count.astype(np.float64)
    return count * (K1 + 1.0) / (count + K1 * norm)


def average_of(stats: Collection, field: Field) -> float | None:
    return stats.average_length.get(field) if field in NORMALISED else None


def reads_field(hits: Iterable[tuple[int, int]], reads: tuple[float, ...]) -> bool:
    return any(f != FOLLOW and reads[f] > 0 for f, _ in hits)


def score_rows(
    rows: Sequence[Row],
    profiles: Sequence[Compiled],
    size: int,
    base_of: Callable[[Hits], Floats],
    *,
    selecting: bool = False,
    buffer: Floats | None = None,
    steps: dict[tuple[int, int], tuple[Hits, Floats]] | None = None,
) -> Scores:
    """Every profile's scores of every row, from the rows' hits in a few array operations.

    `size`: the vocabulary's; `base_of`: the saturation of each of some hits.

        `selecting`: also set the score of every row a profile cannot pick to -1 and take
        the maxima of each run of rows (for select_block), while each part is in cache.
        `buffer`: at least rows × profiles floats to hold the scores, reused from block to
        block because fresh memory costs a page fault per 4 KiB on first touch.
        `steps`: the hits of each run of rows with their saturation, kept from
        block to block (they do not depend on the profiles)."""
    n, m = len(rows), len(profiles)
    weighted = Owners.of(
        size,
        [
            [(tid, w) for _, tid, w in p.keywords] + [(tid, w) for _, tid, w, _ in p.follows]
            for p in profiles
        ],
    )
    excluding = Owners.of(size, [[(t, 1.0) for _, t in p.exclude] for p in profiles])
    requiring = Owners.of(size, [[(t, 1.0) for _, t in p.require] for p in profiles])
    # the weight of each field, and of the followed-name pseudo-field, for each profile
    reads = np.ones((len(FIELDS) + 1, m))
    for j, p in enumerate(profiles):
        reads[: len(FIELDS), j] = p.reads
    reading = (reads > 0).astype(np.float64)
    total = np.empty((n, m)) if buffer is None else buffer[: n * m].reshape(n, m)
    # without exclude or require terms in the block, these are views of one row
    excluded = np.zeros((n, m) if excluding else (1, m), dtype=bool)
    required = np.zeros((n, m) if requiring else (1, m), dtype=bool)
    feed_weight = np.asarray([r.feed_weight for r in rows])
    weighing = bool((feed_weight != 1.0).any())
    popularity = np.asarray([p.profile.popularity for p in profiles])
    freshness = np.asarray([p.profile.freshness for p in profiles])
    boosted = bool(popularity.any() or freshness.any())
    threshold = np.maximum([p.profile.min_score for p in profiles], np.nextafter(0.0, 1.0))
    requires = np.asarray([bool(p.require) for p in profiles])
    maxima = np.empty((-(-n // RUN), m)) if selecting else None
    step = max(1, CELLS // max(m, 1) // RUN) * RUN
    for start in range(0, n, step):  # each step on a block that stays in cache
        part = rows[start : start + step]
        stop = start + len(part)
        if steps is None or (start, stop) not in steps:
            hits = Hits.of(part)
            base = base_of(hits)
            if steps is not None:
                steps[start, stop] = hits, base
        else:
            hits, base = steps[start, stop]
        cells = total[start:stop]
        cells.fill(0.0)
        weighted.spread(hits, reads, m, base, out=cells)
        if weighing:
            cells *= feed_weight[start:stop, None]
        if boosted:
            boosts = np.outer([r.popularity for r in part], popularity)
            boosts += np.outer([r.freshness for r in part], freshness)
            cells += np.where(cells > 0, boosts, 0.0)
        np.round(cells, 6, out=cells)
        if excluding:
            excluded[start:stop] = excluding.spread(hits, reading, m) > 0
        if requiring:
            required[start:stop] = requiring.spread(hits, reading, m) > 0
        if maxima is not None:
            # eligible: matched something (> 0), at least min_score, not excluded, not
            # lacking a required term; picks keep their scores, the rest become -1
            out = cells < threshold[None, :]
            if excluding:
                out |= excluded[start:stop]
            if requiring:
                out |= ~(required[start:stop] | ~requires[None, :])
            # cells × 1 - 0 or cells × 0 - 1, exactly: with half the cells out, a
            # masked copy mispredicts a branch at every other cell
            np.multiply(cells, ~out, out=cells)
            np.subtract(cells, out, out=cells)
            whole = (stop - start) // RUN * RUN
            first = start // RUN
            runs = total[start : start + whole].reshape(-1, RUN, m).max(axis=1)
            maxima[first : first + len(runs)] = runs
            if whole < stop - start:
                maxima[-1] = total[start + whole : stop].max(axis=0)
    return Scores(
        total,
        np.broadcast_to(excluded, (n, m)),
        np.broadcast_to(required | ~requires[None, :], (n, m)),
        maxima,
    )
