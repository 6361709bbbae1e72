"""Shared set-up for the benchmarks: real digests built from the bundled example feeds."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from digest.dedupe import merge
from digest.models import Digest, Entry, Match, Pick, Profile, Reader
from digest.parse import parse_feed

ROOT = Path(__file__).resolve().parent.parent
PEER_BENCH = ROOT.parent / "shared" / "peer-bench"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def peer_bench() -> Path:
    """../shared/peer-bench on sys.path, for the peers' harnesses and floors."""
    if not PEER_BENCH.is_dir():
        sys.exit(f"{PEER_BENCH} is missing: the peer harnesses live there")
    sys.path.insert(0, str(PEER_BENCH))
    return PEER_BENCH


@lru_cache(maxsize=2)
def entries(spread: bool = False) -> tuple[Entry, ...]:
    """The day's entries every digest of a run draws from (the example feeds, deduplicated).

    The example entries are all published at 06:00 UTC, the same date in every zone;
    `spread` spreads them over the 24 hours before NOW instead, as a mix of feeds would be,
    so that zones hours apart show some of them on different dates."""
    found: list[Entry] = []
    for path in sorted((ROOT / "examples" / "feeds").iterdir()):
        parsed = parse_feed(path.name, path.read_bytes())
        for c in merge([(path.stem, str(path), parsed.entries)]):
            e = c.entry
            published = NOW - timedelta(minutes=len(found) * 37 % 1440) if spread else e.published
            found.append(
                Entry(
                    id=c.id,
                    title=e.title,
                    link=e.link,
                    summary=e.summary,
                    published=published,
                    feeds=c.feeds,
                    first_seen=NOW,
                    authors=e.authors,
                    organisation=e.organisation,
                    upvotes=e.upvotes,
                )
            )
    return tuple(found)


ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC")
TERMS = (
    "learning", "model", "agent", "vision", "reward", "language", "robot", "graph", "diffusion",
    "RL", "transformer*", "benchmark", "reasoning", "retrieval", "speech", "video", "alignment",
    "DPO", "planning", "memory", "code", "3D", "medical", "sparse",
)  # fmt: skip


def digest(
    n: int, name: str = "ada", offset: int = 0, profile: int | None = None, spread: bool = False
) -> Digest:
    """An n-pick digest with realistic text, scores and why lines, as a real run builds one.

    Entries are shared between digests, as the day's entries are. A pick is a profile's: each
    `profile` (default: the reader's own, numbered by `offset`) picks its own entries and
    scores them its own way, so readers who share a profile get the same picks, and others
    get their own scores and why lines. The zone (dates shown) is the reader's; `spread`:
    see entries()."""
    pool = entries(spread)
    number = offset if profile is None else profile
    k = len(TERMS)
    terms = (TERMS[number % k], TERMS[(number // k + 1) % k], TERMS[(number // k**2 + 2) % k])
    prof = Profile(f"bench{number}", tuple((t, 1.0) for t in terms), (), n, 0.0)
    picks = []
    for i in range(n):
        j = (number + i) % len(pool)
        points = 1.0 + (number * 7 + j * 13) % 50 / 10
        matches = (Match(terms[0], "title", points), Match(terms[1 + j % 2], "summary", 1.0))
        score = round(points + 1.0 + number * 1e-4, 6)
        picks.append(Pick(entry=pool[j], score=score, matches=matches))
    zone = ZONES[offset % len(ZONES)]
    reader = Reader(f"subscriber:{name}", name, prof, zone)
    return Digest(reader, "Morning papers", NOW.date(), NOW, tuple(picks), considered=n * 10)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, template compilation, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times
