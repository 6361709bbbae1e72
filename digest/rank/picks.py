"""Pick and Match records: what a score is made of, for the why lines and `digest explain`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..models import FIELDS, Boost, Match, Pick, Profile
from .formula import saturation
from .match import Compiled, Row
from .scoring import Column, Found, reads_field
from .terms import FOLLOW


@dataclass(slots=True)
class Made:
    """The Match records made while ranking, each once: Match is a frozen value."""

    #: (term, field index, count, points, saturation) → the record
    matches: dict[tuple[str, int, int, float, float], Match] = dataclasses.field(
        default_factory=dict
    )
    #: term → a number, for comparing terms in arrays
    name_ids: dict[str, int] = dataclasses.field(default_factory=dict)


def full_pick(
    row: Row,
    compiled: Compiled,
    total: float | None,
    hits: Mapping[int, list[tuple[int, int]]],
    averages: Sequence[float | None],
) -> Pick:
    """Every contribution of the entry for the profile; `total`: the score already
        computed for it (None: their sum); `hits`: the row's, by term id; `averages`: each
    field's average length. Many picks at once: explain_block."""
    weight = row.feed_weight
    reads = compiled.reads
    matches: list[Match] = []
    lengths = row.analysis.lengths
    for term, tid, w in compiled.keywords:
        found = hits.get(tid)
        if found is None:
            continue
        for field, count in found:
            read = reads[field]
            if field == FOLLOW or read <= 0:
                continue
            sat = saturation(count, lengths[field], averages[field])
            points = w * read * sat * weight
            matches.append(Match(term, FIELDS[field], points, count, sat))
    for followed, tid, w, where in compiled.follows:
        if tid in hits:
            matches.append(Match(followed, where, w * weight, follow=True))
    boosts = boosts_of(row, compiled.profile) if matches else []
    if total is None:
        total = round(sum(m.points for m in matches) + sum(b.points for b in boosts), 6)
    return Pick(row.entry, total, tuple(matches), weight, tuple(boosts))


def explain_block(
    rows: Sequence[Row],
    block: Sequence[Compiled],
    chosen: Sequence[Sequence[int]],
    scores: Sequence[float],
    found: Found,
    seen: Made,
    hit_map: Callable[[Row], Mapping[int, list[tuple[int, int]]]],
) -> list[list[Pick]]:
    """The picks of a block of profiles with their contributions, as full_pick makes them,
    with the arithmetic done in arrays for every (pick, keyword) pair at once.

    `scores`: the picks' scores, profile by profile; `seen`: the Match records made for
    earlier blocks."""
    m = len(block)
    pick_row = np.asarray([i for picks in chosen for i in picks], dtype=np.int64)
    pick_of = np.repeat(np.arange(m), [len(picks) for picks in chosen])
    # keywords of the block's profiles, concatenated: tid, weight, the profile's own
    terms = [p.keywords for p in block]
    sizes = np.asarray([len(t) for t in terms], dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    kw_tid = np.asarray([tid for t in terms for _, tid, _ in t] + [0], dtype=np.int64)
    kw_weight = np.asarray([w for t in terms for _, _, w in t] + [0.0])
    reads = np.zeros((len(FIELDS) + 1, m))  # the followed-name field is read as 0 here
    for j, p in enumerate(block):
        reads[: len(FIELDS), j] = p.reads
    # one element per (pick, keyword of its profile), in keyword order
    per = sizes[pick_of]
    pair_pick = np.repeat(np.arange(len(pick_row)), per)
    pair_kw = (
        starts[pick_of][pair_pick]
        + np.arange(len(pair_pick))
        - np.repeat(np.cumsum(per) - per, per)
    )
    key = pick_row[pair_pick] * found.size + kw_tid[pair_kw]
    # searched pick by pick in row order, so that one row's searches, and the next
    # row's, fall on the same few cache lines: far fewer misses than in pick order
    by_row = np.argsort(pick_row, kind="stable")
    per_row = per[by_row]
    by_key = np.repeat((np.cumsum(per) - per)[by_row] - (np.cumsum(per_row) - per_row), per_row)
    by_key += np.arange(len(key))
    place = np.empty_like(key)
    place[by_key] = np.searchsorted(found.keys, key[by_key])
    np.minimum(place, len(found.keys) - 1, out=place)
    lo = found.start[place]
    n = np.where(found.keys[place] == key, found.start[place + 1] - lo, 0)
    # one element per hit of a keyword in a pick's row, by keyword, then field
    hit_pair = np.repeat(np.arange(len(key)), n)
    hit = found.order[lo[hit_pair] + np.arange(len(hit_pair)) - np.repeat(np.cumsum(n) - n, n)]
    field = found.field[hit]
    read = reads[field, pick_of[pair_pick[hit_pair]]]
    kept = read > 0
    hit_pair, hit, field, read = hit_pair[kept], hit[kept], field[kept], read[kept]
    kw = pair_kw[hit_pair]
    weight = kw_weight[kw]
    sat = found.saturation[hit]
    row_of = pick_row[pair_pick[hit_pair]]
    feed = np.asarray([r.feed_weight for r in rows])[row_of]
    points = weight * read * sat * feed  # in full_pick's order: the same floats
    owner = pair_pick[hit_pair]
    bounds = np.searchsorted(owner, np.arange(len(pick_row) + 1)).tolist()
    names = [term for t in terms for term, _, _ in t]
    # a Match is a value: many picks share one (the same term found once in a title of
    # the same length…), so each distinct one is made once, here and in earlier blocks
    name_ids = np.asarray([seen.name_ids.setdefault(n, len(seen.name_ids)) for n in names])
    count = found.count[hit]
    columns = (sat, points, count, field, name_ids[kw] if len(kw) else kw)
    made: list[Match] = []
    if len(kw):
        # equal rows sit together once sorted by every column; each run is one Match
        by = np.lexsort(columns)
        change = np.zeros(len(by), dtype=bool)
        change[0] = True
        for column in columns:
            ordered = column[by]
            change[1:] |= ordered[1:] != ordered[:-1]
        first = by[change]
        inverse = np.empty(len(by), dtype=np.int64)
        inverse[by] = np.cumsum(change) - 1
        distinct: list[Match] = []
        for k, f, c, pt, sa in zip(
            kw[first].tolist(),
            field[first].tolist(),
            count[first].tolist(),
            points[first].tolist(),
            sat[first].tolist(),
            strict=True,
        ):
            mkey = (names[k], f, c, pt, sa)
            match = seen.matches.get(mkey)
            if match is None:
                match = seen.matches[mkey] = Match(names[k], FIELDS[f], pt, c, sa)
            distinct.append(match)
        made = [distinct[i] for i in inverse.tolist()]
    result: list[list[Pick]] = []
    # one iterator over every pick of the block: each profile's loop takes its own picks
    # (zip asks `picks` first, so it never takes one more than the profile has)
    spans = zip(bounds[:-1], bounds[1:], scores, strict=True)
    for j, picks in enumerate(chosen):
        compiled = block[j]
        profile = compiled.profile
        plain = not (compiled.follows or profile.popularity or profile.freshness)
        out: list[Pick] = []
        for i, (a, b, score) in zip(picks, spans, strict=False):
            row = rows[i]
            if plain:  # the common case, kept short: this runs once per pick
                out.append(Pick(row.entry, score, tuple(made[a:b]), row.feed_weight))
                continue
            matches = made[a:b]
            if compiled.follows:
                hits = hit_map(row)
                matches += [
                    Match(name, where, w * row.feed_weight, follow=True)
                    for name, tid, w, where in compiled.follows
                    if tid in hits
                ]
            boosts = boosts_of(row, profile) if matches else []
            out.append(Pick(row.entry, score, tuple(matches), row.feed_weight, tuple(boosts)))
        result.append(out)
    return result


def boosts_of(row: Row, profile: Profile) -> list[Boost]:
    """The popularity and freshness points of an entry that matched something."""
    boosts: list[Boost] = []
    if profile.popularity and row.popularity:
        value = float(row.entry.upvotes or 0)
        boosts.append(Boost("upvotes", profile.popularity * row.popularity, value))
    if profile.freshness and row.freshness:
        boosts.append(Boost("freshness", profile.freshness * row.freshness, row.age_hours))
    return boosts


def reason_of(
    compiled: Compiled,
    pick: Pick,
    scores: Column,
    i: int,
    hits: Mapping[int, list[tuple[int, int]]],
) -> str:
    """Why the row `i`, whose breakdown is `pick`, was left out."""
    profile = compiled.profile
    if scores.excluded[i]:
        terms = [t for t, tid in compiled.exclude if reads_field(hits.get(tid, ()), compiled.reads)]
        return "excluded by " + ", ".join(f'"{t}"' for t in terms)
    if not pick.matches:
        return "matched no term"
    if not scores.required[i]:
        return "none of the required terms (" + ", ".join(t for t, _ in compiled.require) + ")"
    return f"below min_score {profile.min_score:g}"
