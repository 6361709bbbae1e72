"""The keyword ranker: profiles × entries → scored, explained picks, every profile in one pass.

Every profile's words and phrases go into one trie of stem ids (prefixes and acronyms into one
Aho-Corasick automaton), so each entry is read once however many readers there are; the
scores of all profiles then come out of a few array operations. The formula is formula.py's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import cast

import numpy as np

from ..models import FIELDS, Entry, Field, LeftOut, Pick, Profile, Ranking
from .explain import sectioned
from .formula import (
    FRESHNESS_HALF_LIFE,
    NO_STATISTICS,
    UPVOTES_FULL,
    Collection,
)
from .match import (
    PROFILE_BLOCK,
    Analysis,
    Compiled,
    Floats,
    Ints,
    Row,
    Vocabulary,
    statistics,
)
from .picks import Made, explain_block, full_pick, reason_of
from .pool import Helper, collector_paused, helper_processes, split_evenly
from .scoring import Found, Hits, Scores, average_of, reads_field, saturations, score_rows
from .select import Selected, select_block, select_picks, tiebreak
from .terms import FOLLOW


def score(
    entry: Entry,
    profile: Profile,
    feed_weights: Mapping[str, float] | None = None,
    collection: Collection = NO_STATISTICS,
) -> Pick | None:
    """The entry's score with every contribution behind it, or None when it is excluded."""
    ranker = KeywordRanker([profile], feed_weights=feed_weights, collection=collection)
    return ranker.explain(entry, profile)[0]


class KeywordRanker:
    """Ranks entries for any number of profiles, reading each entry once for all of them.

    `collection`: the statistics for length normalisation, or the entries to take
    them from (the pipeline passes what the state file holds); None: no statistics.
    `now`: the instant freshness is measured from; None: each entry's first-seen time, so
    that its age is how old it was when it arrived.
    `workers`: processes ranking more than one block of profiles (PROFILE_BLOCK) may use;
    None: one per core this process may run on.
    """

    def __init__(
        self,
        profiles: Iterable[Profile] = (),
        *,
        feed_weights: Mapping[str, float] | None = None,
        collection: Collection | Sequence[Entry] | None = None,
        now: datetime | None = None,
        workers: int | None = None,
    ) -> None:
        self._workers = workers
        #: the most processes reading or ranking has used so far
        self.workers_used = 1
        self._vocabulary = Vocabulary()
        self._profiles: dict[Profile, Compiled] = {}
        #: the same, by id(profile): hashing a profile walks all its terms
        self._by_id: dict[int, Compiled] = {}
        self._feed_weights = dict(feed_weights or {})
        self._now = now
        self._analyses: dict[Entry, Analysis] = {}
        self._rows: dict[Entry, Row] = {}
        self._hits: dict[Entry, dict[int, list[tuple[int, int]]]] = {}
        self._averages: list[float | None] | None = None
        self._collection = collection if isinstance(collection, Collection) else NO_STATISTICS
        self._collection_entries: Sequence[Entry] | None = None
        with collector_paused():
            for profile in profiles:
                self._compiled(profile)
            if collection is not None and not isinstance(collection, Collection):
                # taken again whenever a profile ranked later brings new terms
                self._collection_entries = collection
                self._collection = self.statistics(collection)

    @property
    def collection(self) -> Collection:
        return self._collection

    def rank(self, entries: Sequence[Entry], profile: Profile) -> list[Pick]:
        """The profile's picks, best first."""
        return self.rank_many(entries, [profile])[0]

    def rank_many(
        self, entries: Sequence[Entry], profiles: Sequence[Profile], *, explained: bool = True
    ) -> list[list[Pick]]:
        """Each profile's picks over the same entries, all scored in one pass.

        `explained=False`: the picks carry their score but no matches or boosts, for a caller
        that shows no reasons (building them is most of the cost for many profiles); those
        of profiles with sections = "tag" are explained to find their tag, then stripped."""
        with collector_paused():
            return self._rank_many(entries, profiles, explained)

    def _rank_many(
        self, entries: Sequence[Entry], profiles: Sequence[Profile], explained: bool
    ) -> list[list[Pick]]:
        compiled = [self._compiled(p) for p in profiles]
        rows = self._rows_for(entries)
        order = tiebreak(rows)
        result: list[list[Pick]] = []
        found = Found.of(rows, self._vocabulary.size, self._factors()) if explained else None
        seen = Made()
        blocks = [
            compiled[start : start + PROFILE_BLOCK]
            for start in range(0, len(compiled), PROFILE_BLOCK)
        ]
        selected = self._selected_blocks(rows, blocks, order, explained)
        for block, (chosen, picked) in zip(blocks, selected, strict=True):
            if found is not None:
                explained_block = explain_block(
                    rows, block, chosen, picked, found, seen, self._hit_map
                )
                result += [
                    sectioned(p, c.profile) for p, c in zip(explained_block, block, strict=True)
                ]
                continue
            scores = iter(picked)
            for j, picks in enumerate(chosen):
                profile = block[j].profile
                totals = list(itertools.islice(scores, len(picks)))
                if profile.sections == "tag":
                    tagged = [
                        self._pick(rows[i], block[j], t) for i, t in zip(picks, totals, strict=True)
                    ]
                    bare = [replace(p, matches=(), boosts=()) for p in sectioned(tagged, profile)]
                    result.append(bare)
                    continue
                plain = [
                    Pick(rows[i].entry, t, (), rows[i].feed_weight)
                    for i, t in zip(picks, totals, strict=True)
                ]
                result.append(sectioned(plain, profile))
        return result

    def _selected_blocks(
        self,
        rows: Sequence[Row],
        blocks: Sequence[Sequence[Compiled]],
        order: Ints,
        explained: bool,
    ) -> Iterator[Selected]:
        """Each block's picks (row indices per profile) and their scores, in one list.

        With more than one block and more than one worker, helper processes (forked, so
        they share what this one has read) score and select the later blocks while this
        one does the first few and explains them all: scoring is array work, explaining
        Python that holds the GIL, so threads would not run them side by side."""
        self._factors()  # made before forking, once
        helpers = min(self._helpers(), len(blocks) - 1)
        # this process also explains every block: it takes fewer of them
        own = len(blocks) if helpers < 1 else max(1, len(blocks) // (2 * (helpers + 1)))
        if not explained and helpers >= 1:
            own = max(1, len(blocks) // (helpers + 1))
        shares = split_evenly(len(blocks) - own, helpers)
        started: list[tuple[Helper | None, range]] = []
        try:
            first = own
            for share in shares:
                span = range(first, first + share)
                mine = [blocks[k] for k in span]
                started.append((Helper.start(partial(self._select_all, rows, mine, order)), span))
                first += share
            for helper, _ in started:
                if helper is not None:
                    helper.listen()
            used = 1 + sum(helper is not None for helper, _ in started)
            self.workers_used = max(self.workers_used, used)
            steps: dict[tuple[int, int], tuple[Hits, Floats]] = {}
            buffer = np.empty(len(rows) * max((len(b) for b in blocks), default=0))
            for k in range(own):
                yield self._selected(rows, blocks[k], order, buffer, steps)
            for helper, span in started:
                for k in span:
                    done = cast(Selected | None, helper.receive() if helper else None)
                    if done is None:  # the helper failed or could not start: do it here
                        helper = None
                        done = self._selected(rows, blocks[k], order, buffer, steps)
                    yield done
        finally:
            for helper, _ in started:
                if helper is not None:
                    helper.close()

    def _helpers(self) -> int:
        return helper_processes(self._workers)

    def _select_all(
        self, rows: Sequence[Row], blocks: Sequence[Sequence[Compiled]], order: Ints
    ) -> Iterator[Selected]:
        steps: dict[tuple[int, int], tuple[Hits, Floats]] = {}
        buffer = np.empty(len(rows) * max(len(b) for b in blocks))
        for block in blocks:
            yield self._selected(rows, block, order, buffer, steps)

    def _selected(
        self,
        rows: Sequence[Row],
        block: Sequence[Compiled],
        order: Ints,
        buffer: Floats,
        steps: dict[tuple[int, int], tuple[Hits, Floats]],
    ) -> Selected:
        scores = self._scores(rows, block, selecting=True, buffer=buffer, steps=steps)
        chosen = select_block(rows, block, scores, order)
        pick_row = np.asarray([i for picks in chosen for i in picks], dtype=np.int64)
        pick_of = np.repeat(np.arange(len(block)), [len(picks) for picks in chosen])
        return chosen, scores.total[pick_row, pick_of].tolist()

    def score_matrix(self, entries: Sequence[Entry], profiles: Sequence[Profile]) -> Floats:
        """Every profile's score of every entry: an entries × profiles array, 0 for entries
        that match nothing (excluded ones keep their score; ranking drops them)."""
        compiled = [self._compiled(p) for p in profiles]
        return self._scores(self._rows_for(entries), compiled).total

    def ranking(self, entries: Sequence[Entry], profile: Profile) -> Ranking:
        """The picks, and every other entry with its breakdown and why it was left out."""
        compiled = self._compiled(profile)
        rows = self._rows_for(entries)
        order = tiebreak(rows)
        scores = self._scores(rows, [compiled])
        column = scores.column(0)
        picks, cut = select_picks(rows, profile, column, order, reasons=True)
        chosen = set(picks)
        left: list[tuple[float, int, LeftOut]] = []
        for i, row in enumerate(rows):
            if i in chosen:
                continue
            pick = self._pick(row, compiled, None)
            reason = cut.get(i) or reason_of(compiled, pick, column, i, self._hit_map(row))
            left.append((-pick.score, int(order[i]), LeftOut(pick, reason)))
        left.sort(key=lambda item: item[:2])
        chosen_picks = [self._pick(rows[i], compiled, float(column.total[i])) for i in picks]
        return Ranking(
            picks=tuple(sectioned(chosen_picks, profile)),
            left_out=tuple(item[2] for item in left),
        )

    def explain(self, entry: Entry, profile: Profile) -> tuple[Pick | None, Pick]:
        """The entry's pick (None when excluded or without a required term) and its breakdown,
        before min_score and max_entries are applied."""
        compiled = self._compiled(profile)
        row = self._rows_for([entry])[0]
        pick = self._pick(row, compiled, None)
        hits = self._hit_map(row)
        if any(reads_field(hits.get(tid, ()), compiled.reads) for _, tid in compiled.exclude):
            return None, pick
        if compiled.require and not any(
            reads_field(hits.get(tid, ()), compiled.reads) for _, tid in compiled.require
        ):
            return None, pick
        return pick, pick

    def statistics(self, entries: Iterable[Entry]) -> Collection:
        """Document frequencies of every term the profiles use, and average field lengths."""
        analyses = self._analyses_for(list({e.id: e for e in entries}.values()))
        return statistics(analyses, self._vocabulary)

    # the parts

    def _compiled(self, profile: Profile) -> Compiled:
        compiled = self._by_id.get(id(profile))
        if compiled is not None and compiled.profile is profile:
            return compiled
        compiled = self._profiles.get(profile)
        if compiled is not None:
            self._by_id[id(profile)] = compiled
            return compiled
        vocabulary = self._vocabulary
        before = vocabulary.size
        reads = dict(profile.fields)
        follows = [(n, vocabulary.follow("authors", n), w, "authors") for n, w in profile.authors]
        follows += [
            (n, vocabulary.follow("organisation", n), w, "organisation")
            for n, w in profile.organisations
        ]
        # two spellings of one term ("agent" and "agents") count once, at the higher weight
        keywords: dict[int, tuple[str, float]] = {}
        for term, weight in profile.keywords:
            tid = vocabulary.term(term)
            if tid not in keywords or keywords[tid][1] < weight:
                keywords[tid] = (keywords.get(tid, (term, 0.0))[0], weight)
        compiled = Compiled(
            profile=profile,
            keywords=tuple((t, tid, w) for tid, (t, w) in keywords.items()),
            exclude=tuple((t, vocabulary.term(t)) for t in profile.exclude),
            require=tuple((t, vocabulary.term(t)) for t in profile.require),
            follows=tuple(cast(list[tuple[str, int, float, Field]], follows)),
            reads=tuple(reads.get(f, 0.0) for f in FIELDS),
            scoring=frozenset(keywords) | {tid for _, tid, _, _ in follows},
        )
        self._profiles[profile] = self._by_id[id(profile)] = compiled
        if vocabulary.size != before:  # new terms: what was read before is incomplete
            self._analyses.clear()
            self._rows.clear()
            self._hits.clear()
            self._averages = None
            if self._collection_entries is not None:
                self._collection = self.statistics(self._collection_entries)
        return compiled

    def _analyses_for(self, entries: Sequence[Entry]) -> list[Analysis]:
        missing = [e for e in entries if e not in self._analyses]
        analyses, used = self._vocabulary.analyse(missing, self._helpers())
        self.workers_used = max(self.workers_used, used)
        for entry, analysis in zip(missing, analyses, strict=True):
            self._analyses[entry] = analysis
        return [self._analyses[e] for e in entries]

    def _rows_for(self, entries: Sequence[Entry]) -> list[Row]:
        unique = list({e.id: e for e in entries}.values())  # the same id twice counts once
        self._analyses_for([e for e in unique if e not in self._rows])
        return [self._row(e) for e in unique]

    def _row(self, entry: Entry) -> Row:
        row = self._rows.get(entry)
        if row is not None:
            return row
        upvotes = entry.upvotes or 0
        age = max(
            timedelta(0), (self._now or entry.first_seen) - (entry.published or entry.first_seen)
        )
        row = Row(
            entry=entry,
            analysis=self._analyses[entry],
            feed_weight=max((self._feed_weights.get(f, 1.0) for f in entry.feeds), default=1.0),
            popularity=min(1.0, math.log1p(upvotes) / math.log1p(UPVOTES_FULL))
            if upvotes > 0
            else 0.0,
            freshness=0.5 ** (age / FRESHNESS_HALF_LIFE),
            age_hours=age.total_seconds() / 3600,
        )
        self._rows[entry] = row
        return row

    def _hit_map(self, row: Row) -> dict[int, list[tuple[int, int]]]:
        hits = self._hits.get(row.entry)
        if hits is None:
            hits = self._hits[row.entry] = row.analysis.hits()
        return hits

    def _factors(self) -> list[float | None]:
        """Each field's average length under the collection's statistics (None: not
        normalised)."""
        if self._averages is None:
            self._averages = [average_of(self._collection, field) for field in FIELDS]
        return self._averages

    def _base(self, hits: Hits) -> Floats:
        """The saturation of each hit (1 for a followed name)."""
        base = saturations(hits, self._factors())
        base[hits.field == FOLLOW] = 1.0
        return base

    def _scores(
        self,
        rows: Sequence[Row],
        profiles: Sequence[Compiled],
        *,
        selecting: bool = False,
        buffer: Floats | None = None,
        steps: dict[tuple[int, int], tuple[Hits, Floats]] | None = None,
    ) -> Scores:
        return score_rows(
            rows,
            profiles,
            self._vocabulary.size,
            self._base,
            selecting=selecting,
            buffer=buffer,
            steps=steps,
        )

    def _pick(self, row: Row, compiled: Compiled, total: float | None) -> Pick:
        return full_pick(row, compiled, total, self._hit_map(row), self._factors())
