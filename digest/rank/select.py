"""Selection: each profile's best rows, ties kept together, max_entries and max_per_feed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..models import Profile
from .match import RUN, Compiled, Ints, Row
from .scoring import Column, Scores
from .terms import OLDEST

#: a block's picks (row indices, per profile) and their scores, in one list
Selected = tuple[list[list[int]], list[float]]


def select_block(
    rows: Sequence[Row], profiles: Sequence[Compiled], scores: Scores, order: Ints
) -> list[list[int]]:
    """Each profile's picks, for every profile of the block at once.

    Rows go in runs of RUN; the top k rows of a profile lie in its k runs with the highest
    maxima, so only those are searched. Profiles with max_per_feed go the exact way
    (select_picks); so do ties across the cut, among the rows that share the last score."""
    n, m = scores.total.shape
    if n == 0:
        return [[] for _ in profiles]
    masked = scores.total
    maxima = scores.maxima
    assert maxima is not None, "scores made with selecting=True"
    runs = len(maxima)
    limits = np.asarray([min(p.profile.max_entries, n) for p in profiles])
    k = int(limits.max())
    best = min(k, runs)
    maxima = np.ascontiguousarray(maxima.T)  # profiles × runs, small
    chosen = np.argpartition(maxima, runs - best, axis=1)[:, runs - best :]
    # profiles × candidate rows: every row of each chosen run
    candidates = (chosen[:, :, None] * RUN + np.arange(RUN)[None, None, :]).reshape(m, -1)
    outside = candidates >= n  # the last run is short
    candidates[outside] = n - 1
    values = masked[candidates, np.arange(m)[:, None]]
    values[outside] = -np.inf
    width = candidates.shape[1]
    keep = min(k, width)
    top = np.argpartition(values, width - keep, axis=1)[:, width - keep :]
    top_rows = np.take_along_axis(candidates, top, axis=1)
    top_values = np.take_along_axis(values, top, axis=1)
    ranked = np.lexsort((order[top_rows], -top_values), axis=1)
    top_rows = np.take_along_axis(top_rows, ranked, axis=1)
    top_values = np.take_along_axis(top_values, ranked, axis=1)
    last = top_values[np.arange(m), limits - 1]
    # a tie across the cut: more rows share the last wanted score than the top holds; rows
    # outside the chosen runs can only tie when more runs reach that score than were chosen
    beyond = (maxima >= last[:, None]).sum(axis=1) > best
    ties = (last > 0) & (beyond | ((values >= last[:, None]).sum(axis=1) > limits))
    picks: list[list[int]] = []
    for j, prof in enumerate(profiles):
        limit = int(limits[j])
        if prof.profile.max_per_feed is not None:
            picks.append(select_picks(rows, prof.profile, scores.column(j), order)[0])
        elif ties[j]:
            # only runs whose best reaches the last wanted score hold such rows
            reach = np.flatnonzero(maxima[j] >= last[j])
            tied = (reach[:, None] * RUN + np.arange(RUN)[None, :]).ravel()
            tied = tied[tied < n]
            tied = tied[masked[tied, j] >= last[j]]
            tied = tied[np.lexsort((order[tied], -masked[tied, j]))]
            picks.append(tied[:limit].tolist())
        else:
            picks.append(top_rows[j, :limit][top_values[j, :limit] > 0].tolist())
    return picks


def select_picks(
    rows: Sequence[Row], profile: Profile, scores: Column, order: Ints, *, reasons: bool = False
) -> tuple[list[int], dict[int, str]]:
    """The picks' row indices, best first, and (with `reasons`) why each other row that
    passed min_score was cut."""
    total = scores.total
    eligible = (total > 0) & ~scores.excluded & scores.required
    candidates = np.flatnonzero(eligible & (total >= profile.min_score))
    limit, per_feed = profile.max_entries, profile.max_per_feed
    want = limit if per_feed is None else 4 * limit
    while True:
        chosen = candidates
        if len(candidates) > want:
            # everything tied with the last wanted score stays in, so ties are not cut at random
            kth = np.partition(total[candidates], len(candidates) - want)[len(candidates) - want]
            chosen = candidates[total[candidates] >= kth]
        chosen = chosen[np.lexsort((order[chosen], -total[chosen]))]
        picks: list[int] = []
        cut: dict[int, str] = {}
        taken: dict[str, int] = {}
        for i in chosen.tolist():
            feed = rows[i].entry.feeds[0] if rows[i].entry.feeds else ""
            if len(picks) >= limit:
                cut[i] = f"cut at max_entries {limit}"
            elif per_feed is not None and taken.get(feed, 0) >= per_feed:
                cut[i] = f"max_per_feed {per_feed} reached for feed {feed!r}"
            else:
                picks.append(i)
                taken[feed] = taken.get(feed, 0) + 1
        if len(picks) >= limit or len(chosen) == len(candidates):
            if reasons:
                picked = set(picks)
                for i in candidates.tolist():
                    if i not in cut and i not in picked:
                        cut[i] = f"cut at max_entries {limit}"
            return picks, cut
        want *= 4


def tiebreak(rows: Sequence[Row]) -> npt.NDArray[np.int64]:
    """Each row's place when scores tie: newer first, then by id."""
    keyed = sorted(
        range(len(rows)),
        key=lambda i: (-(rows[i].entry.published or OLDEST).timestamp(), rows[i].entry.id),
    )
    order = np.empty(len(rows), dtype=np.int64)
    order[keyed] = np.arange(len(rows))
    return order
