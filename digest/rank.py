"""Profiles × entries → scored, explained picks, for every profile in one pass.

Every profile's words and phrases go into one trie of stem ids (prefixes and acronyms into one
Aho-Corasick automaton), so each entry is read once however many readers there are; the
scores of all profiles then come out of a few array operations.

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

import dataclasses
import gc
import itertools
import math
import multiprocessing
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from multiprocessing.connection import Connection
from typing import Protocol, cast

import ahocorasick
import numpy as np
import numpy.typing as npt

from .models import (
    FIELDS,
    OTHER_SECTION,
    Boost,
    Entry,
    Field,
    LeftOut,
    Match,
    Pick,
    Profile,
    Ranking,
)

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

_TOKEN = re.compile(r"\w+|[^\w\s]")
_ACRONYM = re.compile(r"[A-Z]{2,6}")
# Each entry field becomes one string holding three streams, each with its own separator so
# that a key can only match in its own stream: stems (words, phrases), lowercase tokens
# (prefixes), tokens as written (acronyms). The separators are whitespace, never in a token.
_STEMS, _LOWER, _CASE = " ", "\x1f", "\x1e"
_FOLLOW = len(FIELDS)  # pseudo-field of followed names: field weights do not apply
_OLDEST = datetime.min.replace(tzinfo=UTC)
# words the suffix rules would get wrong, and that papers use
_STEM_EXCEPTIONS = {
    "bias": "bias",
    "biases": "bias",
    "embed": "embed",
    "embeds": "embed",
    "news": "news",
    "physics": "physics",
    "series": "series",
    "species": "species",
    "hundred": "hundred",
    "shed": "shed",
    "lens": "lens",
}
_VOWEL = re.compile("[aeiouy]")


class Ranker(Protocol):
    """Anything that turns a profile and new entries into the picks of one digest."""

    def rank(self, entries: Sequence[Entry], profile: Profile) -> list[Pick]: ...


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


def stem(word: str) -> str:
    """The light stem of a lowercase token: plural, -ed, -ing and a final -e are removed.

    Light on purpose: "models", "modelling" and "modeled" meet at "model", "learned" and
    "learning" at "learn", but "generative" and "generation" stay apart."""
    if word in _STEM_EXCEPTIONS:
        return _STEM_EXCEPTIONS[word]
    if len(word) <= 2 or not word.isalpha():
        return word
    w = word
    if len(w) > 3 and w.endswith("s"):
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("sses"):
            w = w[:-2]
        elif not w.endswith(("ss", "us", "is")):
            w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("ing", "ed")) and not w.endswith("eed"):
        base = w[:-3] if w.endswith("ing") else w[:-2]
        if len(base) >= 2 and _VOWEL.search(base):
            w = base
            if len(w) >= 3 and w[-1] == w[-2] and w[-1] not in "aeiousz":
                w = w[:-1]  # running → run, modelling → model
    if len(w) >= 3 and w.endswith("e"):
        w = w[:-1]  # so that "make", "makes" and "making" meet
    return w


@lru_cache(maxsize=65536)
def compile_term(term: str) -> tuple[str, ...]:
    """The keys of a profile term (stems for the trie, text for the automaton); the first
    is the term's identity.

    Two terms with the same first key are the same term ("model" and "models")."""
    text = term.strip()
    if _ACRONYM.fullmatch(text):
        return (f"{_CASE}{text}{_CASE}", f"{_CASE}{text}s{_CASE}")
    if text.endswith("*"):
        tokens = [t.lower() for t in _TOKEN.findall(text[:-1])]
        return (_LOWER + _LOWER.join(tokens),)
    stems = [stem(t.lower()) for t in _TOKEN.findall(text)]
    return (_STEMS + _STEMS.join(stems) + _STEMS,)


def follow_key(field: Field, name: str) -> str:
    """The identity of a followed name: case and spacing do not matter."""
    return f"\x00{field}:{' '.join(name.casefold().split())}"


def rarity(documents: int, frequency: int) -> float:
    """BM25's idf over the idf of a term in one entry of ten (RARITY_ONE), never below 1: a
    term that common, or commoner, counts its weight; a rarer one more.

    The floor keeps a reader's main interest from fading when their feeds are full of it
    (every entry of an RL feed says "reinforcement learning"), and keeps min_score meaning
    what it says: one title mention of a weight-1 term is worth about 2."""
    if documents <= 0:
        return 1.0
    idf = _idf(documents, min(frequency, documents))
    return max(1.0, idf / _idf(documents, RARITY_ONE * documents))


def _idf(documents: float, frequency: float) -> float:
    return math.log(1.0 + (documents - frequency + 0.5) / (frequency + 0.5))


def saturation(count: int, length: int, average: float | None) -> float:
    """What `count` mentions in a field of `length` tokens are worth (BM25's tf part)."""
    norm = 1.0 if not average else 1.0 - B + B * length / average
    return count * (K1 + 1.0) / (count + K1 * norm)


def score(
    entry: Entry,
    profile: Profile,
    feed_weights: Mapping[str, float] | None = None,
    collection: Collection = NO_STATISTICS,
) -> Pick | None:
    """The entry's score with every contribution behind it, or None when it is excluded."""
    ranker = KeywordRanker([profile], feed_weights=feed_weights, collection=collection)
    return ranker.explain(entry, profile)[0]


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
                f" × rarity {m.rarity:.2f} × saturation {m.saturation:.2f}{feed}"
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


#: a block's picks (row indices, per profile) and their scores, in one list
_Selected = tuple[list[list[int]], list[float]]


class _Helper:
    """A forked process that works through a share of a job, sending back each result as
    it finishes it; a thread here takes them in at once, since a helper blocked on a full
    pipe would wait for this process to finish its own share."""

    def __init__(self, process: multiprocessing.process.BaseProcess, pipe: Connection) -> None:
        self._process = process
        self._pipe = pipe
        self._results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._taker: threading.Thread | None = None

    @classmethod
    def start(cls, results: Callable[[], Iterable[object]]) -> _Helper | None:
        """A helper sending each of `results()`, or None when no process can be forked.
        Call `listen` once every helper is forked."""
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)

        def work() -> None:
            receiving.close()
            with sending:
                for result in results():
                    sending.send(result)

        process = context.Process(target=work, name="digest-rank", daemon=True)
        try:
            process.start()
        except (OSError, AssertionError):  # no fork left, or a daemon cannot have children
            receiving.close()
            sending.close()
            return None
        sending.close()
        return cls(process, receiving)

    def listen(self) -> None:
        self._taker = threading.Thread(target=self._take, name="digest-rank", daemon=True)
        self._taker.start()

    def _take(self) -> None:
        while True:
            try:
                self._results.put(self._pipe.recv())
            except (EOFError, OSError):  # done, or failed: receive says None from here on
                self._results.put(None)
                return

    def receive(self) -> object | None:
        """The next result; None once the helper has failed."""
        return self._results.get()

    def close(self) -> None:
        if self._process.is_alive():  # the caller stopped early: the taker sees EOF
            self._process.kill()
        self._process.join()
        if self._taker is not None:
            self._taker.join()
        self._pipe.close()


def _shares(blocks: int, helpers: int) -> list[int]:
    """`blocks` split into `helpers` runs as even as can be."""
    if helpers < 1:
        return []
    size, extra = divmod(blocks, helpers)
    return [size + (k < extra) for k in range(helpers) if size + (k < extra)]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Ranking makes hundreds of thousands of records and no reference cycles; the cyclic
    garbage collector, run every 700 allocations, would walk them all again and again
    (a seventh of the time at 10,000 profiles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- matching ----------------------------------------------------------------------------

_Floats = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.int64]
#: entries read in one pass; profiles scored together; cells computed at once
_READ_BATCH = 2048
_PROFILE_BLOCK = 1024
#: rows searched together for a profile's best (see _select_block)
_RUN = 16
_CELLS = 1 << 20
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What the trie and automaton found in one entry: statistics-free, for every profile.

    One element per (term, field) found, by term id then field: the term id, the field
    index (_FOLLOW for a followed name) and the number of occurrences."""

    terms: _Ints
    fields: _Ints
    counts: _Ints
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


_Read = tuple[_Ints, _Ints, _Ints, list[int], list[tuple[int, ...]]]


class _StemIds(dict[str, int]):
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
            self.clear()  # the stems' ids stay: the trie holds them (see _Vocabulary._trie)
        result = self[token] = self.of_stem(stem(token.lower()))
        return result


class _Trie:
    """Phrases as paths of stem ids; finds, at every token, each phrase starting there."""

    #: a node's edges are keyed node × _WIDE + stem id
    _WIDE = 1 << 32

    def __init__(self) -> None:
        self._edges: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        self.edge_keys = _EMPTY
        self.edge_to = _EMPTY
        self.term_at = _EMPTY
        self.root = np.zeros(1, dtype=np.int64)
        self.branches = np.zeros(1, dtype=bool)

    def add(self, stems: list[int], tid: int) -> None:
        node = 0
        for sid in stems:
            key = node * self._WIDE + sid
            node = self._edges.setdefault(key, len(self._edges) + 1)
        self._ends[node] = tid

    def built(self) -> _Trie:
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

    def find(self, tokens: _Ints) -> tuple[_Ints, _Ints]:
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


class _Vocabulary:
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
        self._stem_ids = _StemIds()
        self._stem_trie: _Trie | None = None

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
            self._needs_lower |= keys[0].startswith(_LOWER)
            self._needs_case |= keys[0].startswith(_CASE)
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

    def analyse(self, entries: Sequence[Entry], helpers: int = 0) -> tuple[list[_Analysis], int]:
        """Read the entries, in one pass of the trie (and of the automaton) per batch;
        with `helpers`, forked processes read the later batches meanwhile. Also: how many
        processes did."""
        batches = [
            entries[start : start + _READ_BATCH] for start in range(0, len(entries), _READ_BATCH)
        ]
        # below a few batches a fork costs about what it saves
        helpers = max(0, min(helpers, len(batches) - 1)) if len(batches) >= 4 else 0
        # the larger share here: splitting what the helpers send back is work too
        own = -(-len(batches) // (helpers + 1))
        started: list[tuple[_Helper | None, range]] = []
        if helpers > 0:
            self._built()  # before forking: a helper's would be lost
            self._trie()
        try:
            first = own
            for share in _shares(len(batches) - own, helpers):
                span = range(first, first + share)
                mine = [batches[k] for k in span]
                started.append((_Helper.start(partial(map, self._read, mine)), span))
                first += share
            for helper, _ in started:
                if helper is not None:
                    helper.listen()
            found: list[_Analysis] = []
            for batch in batches[:own]:
                found += self._split(batch, self._read(batch))
            for helper, span in started:
                for k in span:
                    read = cast(_Read | None, helper.receive() if helper is not None else None)
                    if read is None:  # the helper failed or could not start: read it here
                        helper = None
                        read = self._read(batches[k])
                    found += self._split(batches[k], read)
            return found, 1 + sum(helper is not None for helper, _ in started)
        finally:
            for helper, _ in started:
                if helper is not None:
                    helper.close()

    def _split(self, entries: Sequence[Entry], read: _Read) -> list[_Analysis]:
        """Each entry's part of what `_read` found, with the names it follows."""
        tids_of, fields, counts, bounds, lengths = read
        result = []
        for i, entry in enumerate(entries):
            a, b = bounds[i], bounds[i + 1]
            terms, where, count = tids_of[a:b], fields[a:b], counts[a:b]
            followed = self._followed(entry) if self._follows else []
            if followed:  # after the terms found in text, whatever their ids
                terms = np.concatenate([terms, np.asarray(followed, dtype=np.int64)])
                where = np.concatenate([where, np.full(len(followed), _FOLLOW)])
                count = np.concatenate([count, np.ones(len(followed), dtype=np.int64)])
            result.append(_Analysis(terms, where, count, lengths[i]))
        return result

    def _read(self, entries: Sequence[Entry]) -> _Read:
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
                tokens = _TOKEN.findall(text)
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
        owners = [_EMPTY]
        tids = [_EMPTY]
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
            parts += [_LOWER, _LOWER.join([t.lower() for t in tokens]), _LOWER]
        if self._needs_case:
            parts += [_CASE, _CASE.join(tokens), _CASE]
        return "".join(parts)

    def _trie(self) -> _Trie | None:
        """Words and phrases, found by their stems' ids in arrays."""
        if self._stem_ids.stems > 2_000_000:  # a long-running scheduler: start again
            self._stem_ids, self._stem_trie = _StemIds(), None
        if self._stem_trie is None and any(k.startswith(_STEMS) for k in self._keys):
            trie = _Trie()
            for key, tid in self._keys.items():
                if key.startswith(_STEMS):
                    trie.add(
                        [self._stem_ids.of_stem(s) for s in key.strip(_STEMS).split(_STEMS)], tid
                    )
            self._stem_trie = trie.built()
        return self._stem_trie

    def _built(self) -> ahocorasick.Automaton | None:
        """Prefixes and acronyms, which the trie of stems cannot find."""
        if self._automaton is None and (self._needs_lower or self._needs_case):
            automaton = ahocorasick.Automaton()
            for key, tid in self._keys.items():
                if not key.startswith(_STEMS):
                    automaton.add_word(key, tid)
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton


# --- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Profile:
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
class _Row:
    """One entry under this ranker's feed weights and clock."""

    entry: Entry
    analysis: _Analysis
    feed_weight: float
    #: 0 to 1: how much of a profile's popularity and freshness points this entry earns
    popularity: float
    freshness: float
    age_hours: float


class KeywordRanker:
    """Ranks entries for any number of profiles, reading each entry once for all of them.

    `collection`: the statistics for rarity and length normalisation, or the entries to take
    them from (the pipeline passes what the state file holds); None: no statistics.
    `now`: the instant freshness is measured from; None: each entry's first-seen time, so
    that its age is how old it was when it arrived.
    `workers`: processes ranking more than one block of profiles (_PROFILE_BLOCK) may use;
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
        self._vocabulary = _Vocabulary()
        self._profiles: dict[Profile, _Profile] = {}
        #: the same, by id(profile): hashing a profile walks all its terms
        self._by_id: dict[int, _Profile] = {}
        self._feed_weights = dict(feed_weights or {})
        self._now = now
        self._analyses: dict[Entry, _Analysis] = {}
        self._rows: dict[Entry, _Row] = {}
        self._hits: dict[Entry, dict[int, list[tuple[int, int]]]] = {}
        self._rarity: list[float] = []
        self._averages: list[float | None] = []
        self._collection = collection if isinstance(collection, Collection) else NO_STATISTICS
        self._collection_entries: Sequence[Entry] | None = None
        with _collector_paused():
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
        with _collector_paused():
            return self._rank_many(entries, profiles, explained)

    def _rank_many(
        self, entries: Sequence[Entry], profiles: Sequence[Profile], explained: bool
    ) -> list[list[Pick]]:
        compiled = [self._compiled(p) for p in profiles]
        rows = self._rows_for(entries)
        order = _tiebreak(rows)
        result: list[list[Pick]] = []
        found = _Found.of(rows, self._vocabulary.size, self._factors()[1]) if explained else None
        seen = _Made()
        blocks = [
            compiled[start : start + _PROFILE_BLOCK]
            for start in range(0, len(compiled), _PROFILE_BLOCK)
        ]
        selected = self._selected_blocks(rows, blocks, order, explained)
        for block, (chosen, picked) in zip(blocks, selected, strict=True):
            if found is not None:
                explained_block = self._explain_block(rows, block, chosen, picked, found, seen)
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
        rows: Sequence[_Row],
        blocks: Sequence[Sequence[_Profile]],
        order: _Ints,
        explained: bool,
    ) -> Iterator[_Selected]:
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
        shares = _shares(len(blocks) - own, helpers)
        started: list[tuple[_Helper | None, range]] = []
        try:
            first = own
            for share in shares:
                span = range(first, first + share)
                mine = [blocks[k] for k in span]
                started.append((_Helper.start(partial(self._select_all, rows, mine, order)), span))
                first += share
            for helper, _ in started:
                if helper is not None:
                    helper.listen()
            used = 1 + sum(helper is not None for helper, _ in started)
            self.workers_used = max(self.workers_used, used)
            steps: dict[tuple[int, int], tuple[_Hits, _Floats]] = {}
            buffer = np.empty(len(rows) * max((len(b) for b in blocks), default=0))
            for k in range(own):
                yield self._selected(rows, blocks[k], order, buffer, steps)
            for helper, span in started:
                for k in span:
                    done = cast(_Selected | None, helper.receive() if helper else None)
                    if done is None:  # the helper failed or could not start: do it here
                        helper = None
                        done = self._selected(rows, blocks[k], order, buffer, steps)
                    yield done
        finally:
            for helper, _ in started:
                if helper is not None:
                    helper.close()

    def _helpers(self) -> int:
        """How many helper processes to fork: workers - 1, by default one per spare core.

        None in a process running other threads (a scheduler's): a fork copies whatever
        locks they hold, held."""
        if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
            return 0
        workers = self._workers
        if workers is None:
            cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            workers = len(cores) if cores is not None else (os.cpu_count() or 1)
        return max(0, workers - 1)

    def _select_all(
        self, rows: Sequence[_Row], blocks: Sequence[Sequence[_Profile]], order: _Ints
    ) -> Iterator[_Selected]:
        steps: dict[tuple[int, int], tuple[_Hits, _Floats]] = {}
        buffer = np.empty(len(rows) * max(len(b) for b in blocks))
        for block in blocks:
            yield self._selected(rows, block, order, buffer, steps)

    def _selected(
        self,
        rows: Sequence[_Row],
        block: Sequence[_Profile],
        order: _Ints,
        buffer: _Floats,
        steps: dict[tuple[int, int], tuple[_Hits, _Floats]],
    ) -> _Selected:
        scores = self._scores(rows, block, selecting=True, buffer=buffer, steps=steps)
        chosen = _select_block(rows, block, scores, order)
        pick_row = np.asarray([i for picks in chosen for i in picks], dtype=np.int64)
        pick_of = np.repeat(np.arange(len(block)), [len(picks) for picks in chosen])
        return chosen, scores.total[pick_row, pick_of].tolist()

    def score_matrix(self, entries: Sequence[Entry], profiles: Sequence[Profile]) -> _Floats:
        """Every profile's score of every entry: an entries × profiles array, 0 for entries
        that match nothing (excluded ones keep their score; ranking drops them)."""
        compiled = [self._compiled(p) for p in profiles]
        return self._scores(self._rows_for(entries), compiled).total

    def ranking(self, entries: Sequence[Entry], profile: Profile) -> Ranking:
        """The picks, and every other entry with its breakdown and why it was left out."""
        compiled = self._compiled(profile)
        rows = self._rows_for(entries)
        order = _tiebreak(rows)
        scores = self._scores(rows, [compiled])
        column = scores.column(0)
        picks, cut = _select(rows, profile, column, order, reasons=True)
        chosen = set(picks)
        left: list[tuple[float, int, LeftOut]] = []
        for i, row in enumerate(rows):
            if i in chosen:
                continue
            pick = self._pick(row, compiled, None)
            reason = cut.get(i) or self._reason(row, compiled, pick, column, i)
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
        if any(_read(hits.get(tid, ()), compiled.reads) for _, tid in compiled.exclude):
            return None, pick
        if compiled.require and not any(
            _read(hits.get(tid, ()), compiled.reads) for _, tid in compiled.require
        ):
            return None, pick
        return pick, pick

    def statistics(self, entries: Iterable[Entry]) -> Collection:
        """Document frequencies of every term the profiles use, and average field lengths."""
        analyses = self._analyses_for(list({e.id: e for e in entries}.values()))
        frequency: dict[int, int] = {}
        normalised = [FIELDS.index(f) for f in NORMALISED]
        totals = [0] * len(normalised)
        if analyses:
            size = max(self._vocabulary.size, 1)
            # an entry's hits are by term id, then field: a term's fields sit together
            pairs = np.concatenate(
                [i * size + a.terms[a.fields != _FOLLOW] for i, a in enumerate(analyses)] + [_EMPTY]
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
        keys = self._vocabulary.keys
        documents = len(analyses)
        return Collection(
            documents=documents,
            document_frequency={keys[tid]: n for tid, n in frequency.items()},
            average_length={
                field: totals[k] / documents for k, field in enumerate(NORMALISED) if documents
            },
        )

    # the parts

    def _compiled(self, profile: Profile) -> _Profile:
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
        compiled = _Profile(
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
            self._rarity = []
            if self._collection_entries is not None:
                self._collection = self.statistics(self._collection_entries)
        return compiled

    def _analyses_for(self, entries: Sequence[Entry]) -> list[_Analysis]:
        missing = [e for e in entries if e not in self._analyses]
        analyses, used = self._vocabulary.analyse(missing, self._helpers())
        self.workers_used = max(self.workers_used, used)
        for entry, analysis in zip(missing, analyses, strict=True):
            self._analyses[entry] = analysis
        return [self._analyses[e] for e in entries]

    def _rows_for(self, entries: Sequence[Entry]) -> list[_Row]:
        unique = list({e.id: e for e in entries}.values())  # the same id twice counts once
        self._analyses_for([e for e in unique if e not in self._rows])
        return [self._row(e) for e in unique]

    def _row(self, entry: Entry) -> _Row:
        row = self._rows.get(entry)
        if row is not None:
            return row
        upvotes = entry.upvotes or 0
        age = max(
            timedelta(0), (self._now or entry.first_seen) - (entry.published or entry.first_seen)
        )
        row = _Row(
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

    def _hit_map(self, row: _Row) -> dict[int, list[tuple[int, int]]]:
        hits = self._hits.get(row.entry)
        if hits is None:
            hits = self._hits[row.entry] = row.analysis.hits()
        return hits

    def _rarities(self) -> _Floats:
        """Each term id's rarity under the collection's statistics."""
        return np.asarray(self._factors()[0])

    def _factors(self) -> tuple[list[float], list[float | None]]:
        """Each term id's rarity, and each field's average length (None: not normalised)."""
        if len(self._rarity) != self._vocabulary.size:
            stats = self._collection
            frequency = stats.document_frequency
            self._rarity = [
                rarity(stats.documents, frequency.get(key, 0)) for key in self._vocabulary.keys
            ]
            self._averages = [_average(stats, field) for field in FIELDS]
        return self._rarity, self._averages

    def _base(self, hits: _Hits) -> _Floats:
        """rarity × saturation of each hit (1 for a followed name)."""
        base = self._rarities()[hits.term] * _saturations(hits, self._factors()[1])
        base[hits.field == _FOLLOW] = 1.0
        return base

    def _scores(
        self,
        rows: Sequence[_Row],
        profiles: Sequence[_Profile],
        *,
        selecting: bool = False,
        buffer: _Floats | None = None,
        steps: dict[tuple[int, int], tuple[_Hits, _Floats]] | None = None,
    ) -> _Scores:
        """Every profile's scores of every row, from the rows' hits in a few array operations.

        `selecting`: also set the score of every row a profile cannot pick to -1 and take
        the maxima of each run of rows (for _select_block), while each part is in cache.
        `buffer`: at least rows × profiles floats to hold the scores, reused from block to
        block because fresh memory costs a page fault per 4 KiB on first touch.
        `steps`: the hits of each run of rows with their rarity × saturation, kept from
        block to block (they do not depend on the profiles)."""
        n, m = len(rows), len(profiles)
        size = self._vocabulary.size
        weighted = _Owners.of(
            size,
            [
                [(tid, w) for _, tid, w in p.keywords] + [(tid, w) for _, tid, w, _ in p.follows]
                for p in profiles
            ],
        )
        excluding = _Owners.of(size, [[(t, 1.0) for _, t in p.exclude] for p in profiles])
        requiring = _Owners.of(size, [[(t, 1.0) for _, t in p.require] for p in profiles])
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
        maxima = np.empty((-(-n // _RUN), m)) if selecting else None
        step = max(1, _CELLS // max(m, 1) // _RUN) * _RUN
        for start in range(0, n, step):  # each step on a block that stays in cache
            part = rows[start : start + step]
            stop = start + len(part)
            if steps is None or (start, stop) not in steps:
                hits = _Hits.of(part)
                base = self._base(hits)
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
                whole = (stop - start) // _RUN * _RUN
                first = start // _RUN
                runs = total[start : start + whole].reshape(-1, _RUN, m).max(axis=1)
                maxima[first : first + len(runs)] = runs
                if whole < stop - start:
                    maxima[-1] = total[start + whole : stop].max(axis=0)
        return _Scores(
            total,
            np.broadcast_to(excluded, (n, m)),
            np.broadcast_to(required | ~requires[None, :], (n, m)),
            maxima,
        )

    def _pick(self, row: _Row, compiled: _Profile, total: float | None) -> Pick:
        """Every contribution of the entry for the profile; `total`: the score already
        computed for it (None: their sum). Many picks at once: _explain_block."""
        hits = self._hit_map(row)
        weight = row.feed_weight
        reads = compiled.reads
        matches: list[Match] = []
        rarities, averages = self._factors()
        lengths = row.analysis.lengths
        for term, tid, w in compiled.keywords:
            found = hits.get(tid)
            if found is None:
                continue
            rare = rarities[tid]
            for field, count in found:
                read = reads[field]
                if field == _FOLLOW or read <= 0:
                    continue
                sat = saturation(count, lengths[field], averages[field])
                points = w * read * rare * sat * weight
                matches.append(Match(term, FIELDS[field], points, count, rare, sat))
        for followed, tid, w, where in compiled.follows:
            if tid in hits:
                matches.append(Match(followed, where, w * weight, follow=True))
        boosts = self._boosts(row, compiled.profile) if matches else []
        if total is None:
            total = round(sum(m.points for m in matches) + sum(b.points for b in boosts), 6)
        return Pick(row.entry, total, tuple(matches), weight, tuple(boosts))

    def _explain_block(
        self,
        rows: Sequence[_Row],
        block: Sequence[_Profile],
        chosen: Sequence[Sequence[int]],
        scores: Sequence[float],
        found: _Found,
        seen: _Made,
    ) -> list[list[Pick]]:
        """The picks of a block of profiles with their contributions, as _pick makes them,
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
        rarities = self._rarities()
        rare = rarities[found.term[hit]]
        sat = found.saturation[hit]
        row_of = pick_row[pair_pick[hit_pair]]
        feed = np.asarray([r.feed_weight for r in rows])[row_of]
        points = weight * read * rare * sat * feed  # in _pick's order: the same floats
        owner = pair_pick[hit_pair]
        bounds = np.searchsorted(owner, np.arange(len(pick_row) + 1)).tolist()
        names = [term for t in terms for term, _, _ in t]
        # a Match is a value: many picks share one (the same term found once in a title of
        # the same length…), so each distinct one is made once, here and in earlier blocks
        name_ids = np.asarray([seen.name_ids.setdefault(n, len(seen.name_ids)) for n in names])
        count = found.count[hit]
        columns = (sat, rare, points, count, field, name_ids[kw] if len(kw) else kw)
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
            for k, f, c, pt, ra, sa in zip(
                kw[first].tolist(),
                field[first].tolist(),
                count[first].tolist(),
                points[first].tolist(),
                rare[first].tolist(),
                sat[first].tolist(),
                strict=True,
            ):
                mkey = (names[k], f, c, pt, ra, sa)
                match = seen.matches.get(mkey)
                if match is None:
                    match = seen.matches[mkey] = Match(names[k], FIELDS[f], pt, c, ra, sa)
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
                    hits = self._hit_map(row)
                    matches += [
                        Match(name, where, w * row.feed_weight, follow=True)
                        for name, tid, w, where in compiled.follows
                        if tid in hits
                    ]
                boosts = self._boosts(row, profile) if matches else []
                out.append(Pick(row.entry, score, tuple(matches), row.feed_weight, tuple(boosts)))
            result.append(out)
        return result

    @staticmethod
    def _boosts(row: _Row, profile: Profile) -> list[Boost]:
        """The popularity and freshness points of an entry that matched something."""
        boosts: list[Boost] = []
        if profile.popularity and row.popularity:
            value = float(row.entry.upvotes or 0)
            boosts.append(Boost("upvotes", profile.popularity * row.popularity, value))
        if profile.freshness and row.freshness:
            boosts.append(Boost("freshness", profile.freshness * row.freshness, row.age_hours))
        return boosts

    def _reason(self, row: _Row, compiled: _Profile, pick: Pick, scores: _Column, i: int) -> str:
        profile = compiled.profile
        if scores.excluded[i]:
            hits = self._hit_map(row)
            terms = [t for t, tid in compiled.exclude if _read(hits.get(tid, ()), compiled.reads)]
            return "excluded by " + ", ".join(f'"{t}"' for t in terms)
        if not pick.matches:
            return "matched no term"
        if not scores.required[i]:
            return "none of the required terms (" + ", ".join(t for t, _ in compiled.require) + ")"
        return f"below min_score {profile.min_score:g}"


@dataclass(slots=True)
class _Made:
    """The Match records made while ranking, each once: Match is a frozen value."""

    #: (term, field index, count, points, rarity, saturation) → the record
    matches: dict[tuple[str, int, int, float, float, float], Match] = dataclasses.field(
        default_factory=dict
    )
    #: term → a number, for comparing terms in arrays
    name_ids: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Found:
    """Every hit of a list of rows, searchable by (row, term id): for explaining picks."""

    #: the vocabulary's size: a hit's key is row × size + term id
    size: int
    #: the distinct keys, sorted, and where each one's hits start in `order` (one more
    #: element: the end); `order` lists the hits by key, then field
    keys: _Ints
    start: _Ints
    order: _Ints
    term: _Ints
    field: _Ints
    count: _Ints
    #: what the hit's count is worth in its field (saturation and length normalisation)
    saturation: _Floats

    @classmethod
    def of(cls, rows: Sequence[_Row], size: int, averages: Sequence[float | None]) -> _Found:
        hits = _Hits.of(rows)
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
            _saturations(hits, averages),
        )


@dataclass(frozen=True, slots=True)
class _Column:
    """One profile's scores of every row."""

    total: _Floats
    excluded: _Bools
    required: _Bools


@dataclass(frozen=True, slots=True)
class _Scores:
    """Entries × profiles: the score (0: nothing matched), and the exclude / require tests."""

    total: _Floats
    excluded: _Bools
    #: True when the profile requires nothing, or a required term is there
    required: _Bools
    #: when made for selecting: the best score in each run of _RUN rows (runs × profiles),
    #: and `total` is -1 wherever a profile cannot pick the row
    maxima: _Floats | None = None

    def column(self, j: int) -> _Column:
        return _Column(self.total[:, j], self.excluded[:, j], self.required[:, j])


@dataclass(frozen=True, slots=True)
class _Hits:
    """The hits of a run of rows, flattened: for each, its row, term, field, count and the
    length of its field."""

    rows: int
    row: _Ints
    term: _Ints
    field: _Ints
    count: _Ints
    length: _Ints

    @classmethod
    def of(cls, rows: Sequence[_Row]) -> _Hits:
        analyses = [r.analysis for r in rows]
        row = np.repeat(np.arange(len(rows)), [len(a.terms) for a in analyses])
        field = np.concatenate([a.fields for a in analyses] + [_EMPTY])
        lengths = np.asarray([a.lengths + (0,) for a in analyses], dtype=np.int64)
        return cls(
            len(rows),
            row,
            np.concatenate([a.terms for a in analyses] + [_EMPTY]),
            field,
            np.concatenate([a.counts for a in analyses] + [_EMPTY]),
            lengths[row, field] if len(row) else _EMPTY,
        )


class _Owners:
    """Term id → the profiles using it, with their weights: a compressed sparse row."""

    def __init__(self, size: int, profiles: _Ints, terms: _Ints, weights: _Floats) -> None:
        by = np.lexsort((profiles, terms))  # by term, then profile
        terms = terms[by]
        # 32-bit indices: half the memory traffic of the inner loop (spread)
        self.profiles = profiles[by].astype(np.int32)
        self.weights = weights[by]
        self.start = np.searchsorted(terms, np.arange(size + 1)).astype(np.int32)
        #: the profile of each slot (owner × places + field) in spread
        self.slot_profile = np.repeat(self.profiles, len(FIELDS) + 1)

    @classmethod
    def of(cls, size: int, owned: Sequence[Sequence[tuple[int, float]]]) -> _Owners:
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
        hits: _Hits,
        reads: _Floats,
        m: int,
        base: _Floats | None = None,
        out: _Floats | None = None,
    ) -> _Floats:
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


def _select_block(
    rows: Sequence[_Row], profiles: Sequence[_Profile], scores: _Scores, order: _Ints
) -> list[list[int]]:
    """Each profile's picks, for every profile of the block at once.

    Rows go in runs of _RUN; the top k rows of a profile lie in its k runs with the highest
    maxima, so only those are searched. Profiles with max_per_feed go the exact way
    (_select); so do ties across the cut, among the rows that share the last score."""
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
    candidates = (chosen[:, :, None] * _RUN + np.arange(_RUN)[None, None, :]).reshape(m, -1)
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
            picks.append(_select(rows, prof.profile, scores.column(j), order)[0])
        elif ties[j]:
            # only runs whose best reaches the last wanted score hold such rows
            reach = np.flatnonzero(maxima[j] >= last[j])
            tied = (reach[:, None] * _RUN + np.arange(_RUN)[None, :]).ravel()
            tied = tied[tied < n]
            tied = tied[masked[tied, j] >= last[j]]
            tied = tied[np.lexsort((order[tied], -masked[tied, j]))]
            picks.append(tied[:limit].tolist())
        else:
            picks.append(top_rows[j, :limit][top_values[j, :limit] > 0].tolist())
    return picks


def _select(
    rows: Sequence[_Row], profile: Profile, scores: _Column, order: _Ints, *, reasons: bool = False
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


def _saturations(hits: _Hits, averages: Sequence[float | None]) -> _Floats:
    """`saturation` of every hit, in arrays; `averages`: each field's average length (None:
    not normalised), as `_factors` gives them."""
    average = np.asarray([a or 0.0 for a in averages] + [0.0])[hits.field]
    norm = np.ones(len(hits.field))
    some = average > 0
    norm[some] = 1.0 - B + B * hits.length[some] / average[some]
    count = hits.count.astype(np.float64)
    return count * (K1 + 1.0) / (count + K1 * norm)


def _average(stats: Collection, field: Field) -> float | None:
    return stats.average_length.get(field) if field in NORMALISED else None


def _read(hits: Iterable[tuple[int, int]], reads: tuple[float, ...]) -> bool:
    return any(f != _FOLLOW and reads[f] > 0 for f, _ in hits)


def _tiebreak(rows: Sequence[_Row]) -> npt.NDArray[np.int64]:
    """Each row's place when scores tie: newer first, then by id."""
    keyed = sorted(
        range(len(rows)),
        key=lambda i: (-(rows[i].entry.published or _OLDEST).timestamp(), rows[i].entry.id),
    )
    order = np.empty(len(rows), dtype=np.int64)
    order[keyed] = np.arange(len(rows))
    return order
