"""Matching: every profile's terms in one trie of stem ids and one Aho-Corasick automaton,
so that each entry is read once however many profiles there are."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import cast

import ahocorasick
import numpy as np
import numpy.typing as npt

from ..models import FIELDS, Entry, Field, Profile
from .formula import NORMALISED, Collection
from .pool import Helper, split_evenly
from .terms import CASE, FOLLOW, LOWER, STEMS, TOKEN, compile_term, follow_key, stem

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
#: entries read in one pass; profiles scored together; cells computed at once
READ_BATCH = 2048
PROFILE_BLOCK = 1024
#: rows searched together for a profile's best (see select_block)
RUN = 16
CELLS = 1 << 20
EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the trie and automaton found in one entry: statistics-free, for every profile.

    One element per (term, field) found, by term id then field: the term id, the field
    index (FOLLOW for a followed name) and the number of occurrences."""

    terms: Ints
    fields: Ints
    counts: Ints
    #: tokens per field, in FIELDS order
    lengths: tuple[int, ...]

    def hits(self) -> dict[int, list[tuple[int, int]]]:
        """term id → [(field index, count), …]"""
        found: dict[int, list[tuple[int, int]]] = {}
        for tid, field, count in zip(
            self.terms.tolist(), self.fields.tolist(), self.counts.tolist(), strict=True
        ):
            if tid in found:
                found[tid].append((field, count))
            else:
                found[tid] = [(field, count)]
        return found


Read = tuple[Ints, Ints, Ints, list[int], list[tuple[int, ...]]]


class StemIds(dict[str, int]):
    """token as written → the id of its stem, learnt on first sight."""

    def __init__(self) -> None:
        super().__init__()
        self._ids: dict[str, int] = {}

    @property
    def stems(self) -> int:
        return len(self._ids)

    def of_stem(self, stem_: str) -> int:
        return self._ids.setdefault(stem_, len(self._ids))

    def __missing__(self, token: str) -> int:
        if len(self) > 500_000:  # a long-running scheduler must not grow without bound
            self.clear()  # the stems' ids stay: the trie holds them (see Vocabulary._trie)
        result = self[token] = self.of_stem(stem(token.lower()))
        return result


class Trie:
    """Phrases as paths of stem ids; finds, at every token, each phrase starting there."""

    #: a node's edges are keyed node × _WIDE + stem id
    _WIDE = 1 << 32

    def __init__(self) -> None:
        self._edges: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        self.edge_keys = EMPTY
        self.edge_to = EMPTY
        self.term_at = EMPTY
        self.root = np.zeros(1, dtype=np.int64)
        self.branches = np.zeros(1, dtype=bool)

    def add(self, stems: list[int], tid: int) -> None:
        node = 0
        for sid in stems:
            key = node * self._WIDE + sid
            node = self._edges.setdefault(key, len(self._edges) + 1)
        self._ends[node] = tid

    def built(self) -> Trie:
        keys = np.fromiter(self._edges.keys(), dtype=np.int64, count=len(self._edges))
        to = np.fromiter(self._edges.values(), dtype=np.int64, count=len(self._edges))
        order = np.argsort(keys)
        self.edge_keys, self.edge_to = keys[order], to[order]
        self.term_at = np.full(len(self._edges) + 1, -1, dtype=np.int64)
        for node, tid in self._ends.items():
            self.term_at[node] = tid
        self.branches = np.zeros(len(self._edges) + 1, dtype=bool)
        self.branches[self.edge_keys // self._WIDE] = True
        # the first step from every token is the busiest: a plain array, by stem id
        first = self.edge_keys < self._WIDE
        self.root = np.zeros(int(self.edge_keys[first].max(initial=-1)) + 2, dtype=np.int64)
        self.root[self.edge_keys[first]] = self.edge_to[first]
        return self

    def find(self, tokens: Ints) -> tuple[Ints, Ints]:
        """(position, term id) of every phrase in `tokens` (-1: a boundary none crosses)."""
        # stem ids the trie does not know (text read after it was built, boundaries) → node 0
        node = self.root[np.clip(tokens, -1, len(self.root) - 1)]
        starts = np.flatnonzero(node)
        node = node[starts]
        tid = self.term_at[node]
        ends = tid >= 0
        found_at, found_tid = [starts[ends]], [tid[ends]]
        depth = 1
        while len(starts):
            going = self.branches[node]  # only nodes with children go on
            starts, node = starts[going], node[going]
            at = starts + depth
            inside = at < len(tokens)
            starts, node, at = starts[inside], node[inside], at[inside]
            key = node * self._WIDE + tokens[at]
            place = np.minimum(np.searchsorted(self.edge_keys, key), len(self.edge_keys) - 1)
            hit = (self.edge_keys[place] == key) & (tokens[at] >= 0)
            starts, node = starts[hit], self.edge_to[place[hit]]
            tid = self.term_at[node]
            ends = tid >= 0
            found_at.append(starts[ends])
            found_tid.append(tid[ends])
            depth += 1
        return np.concatenate(found_at), np.concatenate(found_tid)


class Vocabulary:
    """Every term of every profile, in one trie of stems (words and phrases) and one
    automaton (prefixes and acronyms); term ids index the score arrays."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        #: term id → its key
        self.keys: list[str] = []
        self._keys: dict[str, int] = {}
        #: a term as written → its id
        self._texts: dict[str, int] = {}
        self._automaton: ahocorasick.Automaton | None = None
        self._needs_lower = False
        self._needs_case = False
        self._follows: dict[str, int] = {}
        self._stem_ids = StemIds()
        self._stem_trie: Trie | None = None

    def term(self, text: str) -> int:
        tid = self._texts.get(text)
        if tid is not None:  # the common case: 10,000 profiles share their terms
            return tid
        keys = compile_term(text)
        tid = self.ids.get(keys[0])
        if tid is None:
            tid = self.ids[keys[0]] = len(self.ids)
            self.keys.append(keys[0])
            for key in keys:
                self._keys[key] = tid
            self._needs_lower |= keys[0].startswith(LOWER)
            self._needs_case |= keys[0].startswith(CASE)
            self._automaton = None
            self._stem_trie = None
        self._texts[text] = tid
        return tid

    def follow(self, field: Field, name: str) -> int:
        key = follow_key(field, name)
        tid = self.ids.get(key)
        if tid is None:
            tid = self.ids[key] = self._follows[key] = len(self.ids)
            self.keys.append(key)
        return tid

    @property
    def size(self) -> int:
        return len(self.ids)

    def analyse(self, entries: Sequence[Entry], helpers: int = 0) -> tuple[list[Analysis], int]:
        """Read the entries, in one pass of the trie (and of the automaton) per batch;
        with `helpers`, forked processes read the later batches meanwhile. Also: how many
        processes did."""
        batches = [
            entries[start : start + READ_BATCH] for start in range(0, len(entries), READ_BATCH)
        ]
        # below a few batches a fork costs about what it saves
        helpers = max(0, min(helpers, len(batches) - 1)) if len(batches) >= 4 else 0
        # the larger share here: splitting what the helpers send back is work too
        own = -(-len(batches) // (helpers + 1))
        started: list[tuple[Helper | None, range]] = []
        if helpers > 0:
            self._built()  # before forking: a helper's would be lost
            self._trie()
        try:
            first = own
            for share in split_evenly(len(batches) - own, helpers):
                span = range(first, first + share)
                mine = [batches[k] for k in span]
                started.append((Helper.start(partial(map, self._read, mine)), span))
                first += share
            for helper, _ in started:
                if helper is not None:
                    helper.listen()
            found: list[Analysis] = []
            for batch in batches[:own]:
                found += self._split(batch, self._read(batch))
            for helper, span in started:
                for k in span:
                    read = cast(Read | None, helper.receive() if helper is not None else None)
                    if read is None:  # the helper failed or could not start: read it here
                        helper = None
                        read = self._read(batches[k])
                    found += self._split(batches[k], read)
            return found, 1 + sum(helper is not None for helper, _ in started)
        finally:
            for helper, _ in started:
                if helper is not None:
                    helper.close()

    def _split(self, entries: Sequence[Entry], read: Read) -> list[Analysis]:
        """Each entry's part of what `_read` found, with the names it follows."""
        tids_of, fields, counts, bounds, lengths = read
        result = []
        for i, entry in enumerate(entries):
            a, b = bounds[i], bounds[i + 1]
            terms, where, count = tids_of[a:b], fields[a:b], counts[a:b]
            followed = self._followed(entry) if self._follows else []
            if followed:  # after the terms found in text, whatever their ids
                terms = np.concatenate([terms, np.asarray(followed, dtype=np.int64)])
                where = np.concatenate([where, np.full(len(followed), FOLLOW)])
                count = np.concatenate([count, np.ones(len(followed), dtype=np.int64)])
            result.append(Analysis(terms, where, count, lengths[i]))
        return result

    def _read(self, entries: Sequence[Entry]) -> Read:
        """Every (entry, term, field) found and its count, by entry, term and field; where
        each entry's run starts (one more: the end); each entry's field lengths."""
        automaton = self._built()
        trie = self._trie()
        nfields = len(FIELDS)
        streams: list[str] = []
        stream_owners: list[int] = []  # entry × field of each stream
        tokens_of: list[int] = []  # every field's stem ids, each followed by -1
        token_owners: list[int] = []  # entry × field of each of those fields
        token_ends: list[int] = []
        stem_ids = self._stem_ids
        lengths: list[tuple[int, ...]] = []
        for i, entry in enumerate(entries):
            texts = (
                entry.title,
                entry.summary,
                " ; ".join(entry.authors),
                entry.organisation or "",
                " ; ".join(entry.categories),
            )
            sizes = []
            for field, text in enumerate(texts):
                tokens = TOKEN.findall(text)
                sizes.append(len(tokens))
                if not tokens:
                    continue
                if trie is not None:
                    tokens_of += map(stem_ids.__getitem__, tokens)
                    tokens_of.append(-1)
                    token_owners.append(i * nfields + field)
                    token_ends.append(len(tokens_of))
                if automaton is not None:
                    streams.append(self._streams(tokens))
                    stream_owners.append(i * nfields + field)
            lengths.append(tuple(sizes))
        size = max(self.size, 1)
        owners = [EMPTY]
        tids = [EMPTY]
        if trie is not None and tokens_of:
            at, tid = trie.find(np.asarray(tokens_of, dtype=np.int64))
            spans = np.diff(np.asarray(token_ends), prepend=0)
            owners.append(np.repeat(np.asarray(token_owners, dtype=np.int64), spans)[at])
            tids.append(tid)
        if automaton is not None and streams:
            # one pass over every stream, joined by a separator no key contains
            text = "\x1d".join(streams)
            ends = np.cumsum(np.fromiter(map(len, streams), dtype=np.int64) + 1)
            flat = np.fromiter(
                itertools.chain.from_iterable(automaton.iter(text)), dtype=np.int64
            ).reshape(-1, 2)
            segment = np.searchsorted(ends, flat[:, 0], side="right")
            owners.append(np.asarray(stream_owners, dtype=np.int64)[segment])
            tids.append(flat[:, 1])
        owner = np.concatenate(owners)
        # entry, then term, then field: an entry's hits of one term sit together
        entry_of, field_of = np.divmod(owner, nfields)
        cell = (entry_of * size + np.concatenate(tids)) * nfields + field_of
        cells, counts = np.unique(cell, return_counts=True)
        owned, fields = np.divmod(cells, nfields)
        entry_of, tids_of = np.divmod(owned, size)
        bounds = np.searchsorted(entry_of, np.arange(len(entries) + 1))
        return tids_of, fields, counts, bounds.tolist(), lengths

    def _followed(self, entry: Entry) -> list[int]:
        names = [follow_key("authors", n) for n in entry.authors]
        if entry.organisation:
            names.append(follow_key("organisation", entry.organisation))
        return sorted({self._follows[n] for n in names if n in self._follows})

    def _streams(self, tokens: list[str]) -> str:
        """The text the automaton reads: the field's tokens in lowercase and as written."""
        parts = []
        if self._needs_lower:
            parts += [LOWER, LOWER.join([t.lower() for t in tokens]), LOWER]
        if self._needs_case:
            parts += [CASE, CASE.join(tokens), CASE]
        return "".join(parts)

    def _trie(self) -> Trie | None:
        """Words and phrases, found by their stems' ids in arrays."""
        if self._stem_ids.stems > 2_000_000:  # a long-running scheduler: start again
            self._stem_ids, self._stem_trie = StemIds(), None
        if self._stem_trie is None and any(k.startswith(STEMS) for k in self._keys):
            trie = Trie()
            for key, tid in self._keys.items():
                if key.startswith(STEMS):
                    trie.add(
                        [self._stem_ids.of_stem(s) for s in key.strip(STEMS).split(STEMS)], tid
                    )
            self._stem_trie = trie.built()
        return self._stem_trie

    def _built(self) -> ahocorasick.Automaton | None:
        """Prefixes and acronyms, which the trie of stems cannot find."""
        if self._automaton is None and (self._needs_lower or self._needs_case):
            automaton = ahocorasick.Automaton()
            for key, tid in self._keys.items():
                if not key.startswith(STEMS):
                    automaton.add_word(key, tid)
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton


@dataclass(frozen=True, slots=True)
class Compiled:
    """A profile with its terms resolved to vocabulary ids."""

    profile: Profile
    #: (term, term id, weight)
    keywords: tuple[tuple[str, int, float], ...]
    exclude: tuple[tuple[str, int], ...]
    require: tuple[tuple[str, int], ...]
    #: (name, term id, weight, field)
    follows: tuple[tuple[str, int, float, Field], ...]
    #: field weights in FIELDS order
    reads: tuple[float, ...]
    #: every term id that can add points
    scoring: frozenset[int]


@dataclass(frozen=True, slots=True)
class Row:
    """One entry under this ranker's feed weights and clock."""

    entry: Entry
    analysis: Analysis
    feed_weight: float
    #: 0 to 1: how much of a profile's popularity and freshness points this entry earns
    popularity: float
    freshness: float
    age_hours: float


def statistics(analyses: Sequence[Analysis], vocabulary: Vocabulary) -> Collection:
    """Document frequencies of every term the vocabulary holds, and average field lengths,
    over the analyses of a collection's entries (each entry once)."""
    frequency: dict[int, int] = {}
    normalised = [FIELDS.index(f) for f in NORMALISED]
    totals = [0] * len(normalised)
    if analyses:
        size = max(vocabulary.size, 1)
        # an entry's hits are by term id, then field: a term's fields sit together
        pairs = np.concatenate(
            [i * size + a.terms[a.fields != FOLLOW] for i, a in enumerate(analyses)] + [EMPTY]
        )
        first = np.ones(len(pairs), dtype=bool)
        first[1:] = pairs[1:] != pairs[:-1]
        distinct = pairs[first] % size
        counts = np.bincount(distinct, minlength=size)
        ids = np.flatnonzero(counts)
        frequency = dict(zip(ids.tolist(), counts[ids].tolist(), strict=True))
        for a in analyses:
            for k, f in enumerate(normalised):
                totals[k] += a.lengths[f]
    keys = vocabulary.keys
    documents = len(analyses)
    return Collection(
        documents=documents,
        document_frequency={keys[tid]: n for tid, n in frequency.items()},
        average_length={
            field: totals[k] / documents for k, field in enumerate(NORMALISED) if documents
        },
    )
