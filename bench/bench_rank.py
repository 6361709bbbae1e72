"""Ranking cost: 10,000 entries × 1,000 and × 10,000 profiles of 20 terms, in one pass.

    .venv/bin/python bench/bench_rank.py [--entries 10000] [--profiles 1000 10000]
                                         [--repeats 3] [--baseline-budget 8]

Entries: the peer harness's synthetic arXiv-like corpus (../shared/peer-bench, make_feeds:
real titles and abstracts recombined; 210 feeds of 50, so that 10,000 remain once
cross-listed entries are merged), parsed by digest. Profiles: the peer's recipe
(bench_match.make_profiles): 1-3 word n-grams of the corpus, drawn by √df, none a word-prefix
of another in the same profile; weights 1-3.

Measured: `KeywordRanker(profiles, collection=entries).rank_many(entries, profiles)`, i.e.
compile every term into one trie of stems (and automaton), read each entry once, take the
collection statistics, score all entry × profile pairs, choose each profile's top 20 and
explain every pick; then
the same with `explained=False` (picks carry their score only), since building the Match
records of 200,000 picks is a large part of the cost at 10,000 profiles. Above one batch of
entries (2,048) or one block of profiles (1,024), digest forks a helper process per further
core (workers=None) to read or score the later ones; the output says how many processes it
used, and then the explained run is repeated in one process (workers=1), which must pick
identically.

Baseline, timed in the same run: the same scores the way the old ranker found matches, one
profile at a time and one compiled regex per term, over the entries' stemmed text (which the
baseline is given for free), then the same formula and top 20. It runs on a sample of
profiles for --baseline-budget seconds and is extrapolated. On that sample every profile's
picks and the score of every entry must equal the ranker's, or the script exits 1.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digest.models import FIELDS, Entry, Profile
from digest.parse import parse_feed
from digest.rank import (
    Collection,
    KeywordRanker,
    compile_term,
    saturation,
    stem,
)

ROOT = Path(__file__).resolve().parent.parent
PEER_BENCH = ROOT.parent / "shared" / "peer-bench"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TOKEN = re.compile(r"\w+|[^\w\s]")
# the peer's recipe for profile terms (bench_match.py), kept word for word
STOP = set(
    """a an the and or of for to in on with by from at as is are was were be been this that
these those we our our their its it which not can via into over under using based than then
also such both more most new show shows propose proposed paper method methods approach
results result model models while however use used first two three one when where how what
they them has have had do does through across between without within each other all any only
may""".split()
)
WORD = re.compile(r"[a-z0-9][a-z0-9\-]*[a-z0-9]|[a-z]")


def load_entries(n: int) -> list[Entry]:
    if not PEER_BENCH.is_dir():
        sys.exit(f"{PEER_BENCH} is missing: the peer harness builds the corpus")
    sys.path.insert(0, str(PEER_BENCH))
    import _common  # type: ignore[import-not-found]

    found: dict[str, Entry] = {}
    for path in _common.feed_files(_common.corpus(feeds=210)):
        for e in parse_feed(path.stem, path.read_bytes()).entries:
            key = e.guid or e.link or e.title
            if key not in found:
                found[key] = Entry(
                    id=key,
                    title=e.title,
                    link=e.link,
                    summary=e.summary,
                    published=e.published,
                    feeds=(path.stem,),
                    first_seen=NOW,
                    authors=e.authors,
                )
            if len(found) == n:
                return list(found.values())
    return list(found.values())


def make_profiles(entries: list[Entry], n: int, per: int, rng: random.Random) -> list[Profile]:
    df: collections.Counter[str] = collections.Counter()
    for e in entries[:4000]:
        words = WORD.findall(f"{e.title}\n{e.summary}".lower())
        grams = set()
        for k in (1, 2, 3):
            for i in range(len(words) - k + 1):
                g = words[i : i + k]
                if g[0] in STOP or g[-1] in STOP or (k == 1 and len(g[0]) < 4):
                    continue
                grams.add(" ".join(g))
        df.update(grams)
    pools = {
        k: sorted((g, f) for g, f in df.items() if g.count(" ") == k - 1 and 3 <= f <= 0.2 * 4000)
        for k in (1, 2, 3)
    }
    cum = {k: list(itertools.accumulate(f**0.5 for _, f in pool)) for k, pool in pools.items()}
    profiles = []
    for i in range(n):
        terms: list[str] = []
        keys: set[str] = set()
        while len(terms) < per:
            k = rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
            g = rng.choices(pools[k], cum_weights=cum[k])[0][0]
            if (
                all(
                    not (g + " ").startswith(h + " ") and not (h + " ").startswith(g + " ")
                    for h in terms
                )
                and compile_term(g)[0] not in keys
            ):  # "model" and "models" are one term
                terms.append(g)
                keys.add(compile_term(g)[0])
        weights = [float(rng.choice((1, 1.5, 2, 3))) for _ in terms]
        profiles.append(Profile(f"p{i}", tuple(zip(terms, weights, strict=True)), (), 20, 1.0))
    return profiles


class RegexBaseline:
    """One profile at a time, one regex per term: what the old ranker did, same formula."""

    def __init__(self, entries: list[Entry], collection: Collection) -> None:
        self.entries = entries
        self.collection = collection
        self.read = [FIELDS.index("title"), FIELDS.index("summary")]
        # given for free: each entry's title and summary as stems, and their lengths
        self.streams = []
        for e in entries:
            fields = []
            for text in (e.title, e.summary):
                tokens = TOKEN.findall(text)
                fields.append((" " + " ".join(stem(t.lower()) for t in tokens) + " ", len(tokens)))
            self.streams.append(fields)
        published = [(-(e.published or NOW).timestamp(), e.id) for e in entries]
        self.order = sorted(range(len(entries)), key=published.__getitem__)

    def scores(self, profile: Profile) -> list[float]:
        stats = self.collection
        field_weights = dict(profile.fields)
        terms = []
        for term, weight in profile.keywords:
            key = compile_term(term)[0]
            pattern = re.compile("(?=" + re.escape(key) + ")")
            terms.append((pattern, weight))
        out = []
        for fields in self.streams:
            total = 0.0
            for pattern, weight in terms:
                for name, (stream, length) in zip(("title", "summary"), fields, strict=True):
                    count = len(pattern.findall(stream))
                    if count:
                        sat = saturation(count, length, stats.average_length.get(name))
                        total += weight * field_weights[name] * sat
            out.append(round(total, 6))
        return out

    def picks(self, profile: Profile, scores: list[float]) -> list[tuple[str, float]]:
        ranked = sorted(
            (i for i in self.order if scores[i] >= profile.min_score and scores[i] > 0),
            key=lambda i: -scores[i],  # stable: ties keep the newer-then-id order
        )
        return [(self.entries[i].id, scores[i]) for i in ranked[: profile.max_entries]]


def timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--profiles", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--terms", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-budget", type=float, default=8.0, help="seconds of baseline")
    a = ap.parse_args()
    entries = load_entries(a.entries)
    rng = random.Random(11)
    every = make_profiles(entries, max(a.profiles), a.terms, rng)
    median_len = sorted(len(e.summary) for e in entries)[len(entries) // 2]
    print(
        f"{len(entries)} entries (median summary {median_len} chars); profiles of {a.terms} terms"
    )
    lines = []
    for n in a.profiles:
        profiles = every[:n]
        distinct = len({compile_term(t)[0] for p in profiles for t, _ in p.keywords})
        box: dict[str, object] = {}
        medians: dict[tuple[bool, int | None], float] = {}
        used = 1
        for explained, workers in ((True, None), (False, None), (True, 1)):
            if workers == 1 and used == 1:
                continue  # the runs above used one process already

            def run(
                profiles: list[Profile] = profiles,
                explained: bool = explained,
                workers: int | None = workers,
                box: dict[str, object] = box,
            ) -> None:
                ranker = KeywordRanker(profiles, collection=entries, workers=workers)
                box["picks"] = ranker.rank_many(entries, profiles, explained=explained)
                box["ranker"] = ranker

            times, _ = timed(run, a.repeats)
            medians[explained, workers] = statistics.median(times)
            spread = f"[{min(times):.2f}–{max(times):.2f}]"
            what = "picks explained" if explained else "picks with scores only"
            ran = box["ranker"]
            assert isinstance(ran, KeywordRanker)
            if workers is None:
                used = ran.workers_used
            print(
                f"  {n} profiles ({distinct} distinct terms), one pass, {what}, "
                f"{ran.workers_used} process{'es' if ran.workers_used > 1 else ''}: median "
                f"{medians[explained, workers]:.2f}s {spread} over {a.repeats} runs"
            )
            if workers is None and explained:
                picks, ranker = box["picks"], ran
            elif workers == 1 and box["picks"] != picks:
                sys.exit(f"bench_rank: one process picks differently from {used} on {n} profiles")
        assert isinstance(ranker, KeywordRanker) and isinstance(picks, list)
        # the baseline on a sample, with the ranker's statistics, checked pick by pick
        baseline = RegexBaseline(entries, ranker.collection)
        matrix = ranker.score_matrix(entries, profiles[:50])
        done, spent = 0, 0.0
        while done < n and spent < a.baseline_budget:
            profile = profiles[done]
            t0 = time.perf_counter()
            scores = baseline.scores(profile)
            expected = baseline.picks(profile, scores)
            spent += time.perf_counter() - t0
            got = [(p.entry.id, p.score) for p in picks[done]]
            if got != expected:
                sys.exit(f"bench_rank: picks differ from the baseline on profile {done}")
            if done < matrix.shape[1] and not np.array_equal(matrix[:, done], np.asarray(scores)):
                bad = int(np.flatnonzero(matrix[:, done] != np.asarray(scores))[0])
                sys.exit(f"bench_rank: score of entry {bad} differs on profile {done}")
            done += 1
        full = spent / done * n
        print(
            f"    per-profile regex baseline: {done} profiles in {spent:.2f}s → ~{full:,.0f}s "
            f"for {n} (extrapolated); picks identical on all {done}, every score on "
            f"{min(done, matrix.shape[1])}"
        )
        alone = medians.get((True, 1))
        single = f"; in one process {alone:.2f}s explained ({full / alone:,.0f}×)" if alone else ""
        lines.append(
            f"RESULT rank ({len(entries)} entries × {n} profiles × {a.terms} terms, digest in "
            f"{used} process{'es' if used > 1 else ''}; the baseline in one): digest "
            f"{medians[True, None]:.2f}s median with every pick explained "
            f"({full / medians[True, None]:,.0f}× the per-profile regex baseline, "
            f"~{full:,.0f}s), {medians[False, None]:.2f}s with scores only "
            f"({full / medians[False, None]:,.0f}×){single}"
        )
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
