"""Words for a pick: the compact why line, the breakdown `digest explain` prints, and the
sections picks are grouped under. Pure Python on the records: rendering imports this, and
nothing here imports numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from ..models import OTHER_SECTION, Match, Pick, Profile
from .terms import compile_term, follow_key


def why(pick: Pick, terms: int = 4) -> str:
    """The compact reason shown under a pick: the terms that counted most, and where."""
    by_term: dict[str, list[Match]] = {}
    for match in pick.matches:
        by_term.setdefault(match.term, []).append(match)
    ranked = sorted(by_term.items(), key=lambda item: -sum(m.points for m in item[1]))
    parts = [f"{term} ({_where(matches)})" for term, matches in ranked[:terms]]
    if len(ranked) > terms:
        parts.append(f"{len(ranked) - terms} more")
    parts += [f"+{b.points:.2g} {_BOOST_WORDS[b.kind]}" for b in pick.boosts if b.points]
    line = ", ".join(parts)
    if pick.feed_weight != 1.0:
        line += f"; feed weight ×{pick.feed_weight:g}"
    return line


def sectioned(picks: Sequence[Pick], profile: Profile) -> list[Pick]:
    """The picks with their headings (Pick.section), grouped: the section of the best pick
    first, then the next best pick's, and so on; by score within a section. The same picks
    as without sections, so max_entries stays the total."""
    if not profile.sections:
        return list(picks)
    if profile.sections == "feed":
        named = [
            replace(p, section=p.entry.feeds[0] if p.entry.feeds else OTHER_SECTION) for p in picks
        ]
    else:
        named = [replace(p, section=_tag(p, profile)) for p in picks]
    first: dict[str, int] = {}
    for i, pick in enumerate(named):
        first.setdefault(pick.section, i)
    return sorted(named, key=lambda p: first[p.section])  # stable: score order within


def _tag(pick: Pick, profile: Profile) -> str:
    """The tag whose terms gave the pick the most points; the first listed on a tie."""
    tags = _tags_of(profile)
    points = [0.0] * len(profile.tags)
    for match in pick.matches:
        key = follow_key(match.field, match.term) if match.follow else compile_term(match.term)[0]
        for t in tags.get(key, ()):
            points[t] += match.points
    # rounded as scores are, so that sums made in another order still tie
    rounded = [round(p, 6) for p in points]
    best = max(range(len(rounded)), key=lambda t: (rounded[t], -t), default=None)
    if best is None or rounded[best] <= 0:
        return OTHER_SECTION
    return profile.tags[best][0]


@lru_cache(maxsize=1024)
def _tags_of(profile: Profile) -> dict[str, tuple[int, ...]]:
    """A term's identity (compile_term, or follow_key for followed names) → its tags."""
    followed = {" ".join(n.casefold().split()) for n, _ in profile.authors + profile.organisations}
    found: dict[str, list[int]] = {}
    for t, (_, terms) in enumerate(profile.tags):
        for term in terms:
            keys = [compile_term(term)[0]]
            if " ".join(term.casefold().split()) in followed:
                keys += [follow_key("authors", term), follow_key("organisation", term)]
            for key in keys:
                found.setdefault(key, []).append(t)
    return {key: tuple(dict.fromkeys(ts)) for key, ts in found.items()}


_BOOST_WORDS = {"upvotes": "upvotes", "freshness": "new"}


def breakdown(pick: Pick, profile: Profile) -> list[str]:
    """Every contribution to the pick's score, one line each, ending with their sum."""
    weights = dict(profile.keywords)
    reads = dict(profile.fields)
    feed = f" × feed {pick.feed_weight:g}" if pick.feed_weight != 1.0 else ""
    width = max([len(m.term) for m in pick.matches] + [12])
    lines = []
    for m in sorted(pick.matches, key=lambda m: -m.points):
        if m.follow:
            how = f"followed {'author' if m.field == 'authors' else 'organisation'}{feed}"
            where: str = m.field
        else:
            how = (
                f"weight {weights.get(m.term, 0):g} × field {reads.get(m.field, 0):g}"
                f" × saturation {m.saturation:.2f}{feed}"
            )
            where = m.field + (f" ×{m.count}" if m.count > 1 else "")
        lines.append(f"{m.points:+8.3f}  {m.term:<{width}}  {where:<12}  {how}")
    for b in pick.boosts:
        if b.kind == "upvotes":
            what, how = f"{b.value:g} upvotes", f"popularity {profile.popularity:g}"
        else:
            what, how = f"{b.value:.0f} h old", f"freshness {profile.freshness:g}"
        lines.append(f"{b.points:+8.3f}  {what:<{width}}  {'boost':<12}  {how}, bounded")
    lines.append(f"{'= ' + format(pick.score, 'g'):>8}")
    return lines


def _where(matches: list[Match]) -> str:
    if matches[0].follow:
        return "followed"
    return " + ".join(m.field + (f" ×{m.count}" if m.count > 1 else "") for m in matches)
