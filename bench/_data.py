"""Shared set-up for the benchmarks: real digests built from the bundled example feeds."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
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


def entries() -> list[Entry]:
    found: list[Entry] = []
    for path in sorted((ROOT / "examples" / "feeds").iterdir()):
        parsed = parse_feed(path.name, path.read_bytes())
        for c in merge([(path.stem, str(path), parsed.entries)]):
            e = c.entry
            found.append(
                Entry(
                    id=c.id,
                    title=e.title,
                    link=e.link,
                    summary=e.summary,
                    published=e.published,
                    feeds=c.feeds,
                    first_seen=NOW,
                    authors=e.authors,
                    organisation=e.organisation,
                    upvotes=e.upvotes,
                )
            )
    return found


def digest(n: int, name: str = "ada", offset: int = 0) -> Digest:
    """An n-pick digest with realistic text, scores and why lines."""
    pool = entries()
    profile = Profile("bench", (("learning", 2.0), ("model", 1.0)), (), n, 0.0)
    picks = []
    for i in range(n):
        e = pool[(offset + i) % len(pool)]
        matches = (Match("learning", "title", 4.0), Match("model", "summary", 1.0))
        picks.append(Pick(entry=e, score=5.0, matches=matches))
    reader = Reader(f"subscriber:{name}", name, profile, "Europe/Berlin")
    return Digest(reader, "Morning papers", NOW.date(), NOW, tuple(picks), considered=n * 10)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, template compilation, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times
