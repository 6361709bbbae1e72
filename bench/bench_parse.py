"""Parse throughput: digest's parse_feed (lxml fast path) against feedparser, same bytes.

    python bench/bench_parse.py [--syn-feeds 40] [--repeats 5]

Two corpora, as in ../shared/peer-bench/bench_parse.py: the real feeds in
../shared/data/real-feeds and the first --syn-feeds feeds of the synthetic arXiv-shaped
corpus (built by the peer harness when missing). Four parsers (the last when installed),
timed in the same run:

- digest: `parse_feed`, what `digest collect` runs (fast path, feedparser for the rest);
- digest via feedparser: `parse_with_feedparser`, the same records through feedparser;
- feedparser: bare `feedparser.parse`, the peer, with no text clean-up at all;
- fastfeedparser, when installed (`pip install fastfeedparser`): the other fast peer; on
  the real feeds it gives other ids than feedparser for 30 of 951 entries, other authors
  for 45, other categories for 31, and no arXiv fields, so digest does not use it.

Both digest paths give the same records (checked here on every document, and in
tests/test_parse.py), and so do the ratios printed: digest's time against each other's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import feedparser
from _data import median_time, peer_bench

try:  # a peer the shared harness measures; not a dependency of digest
    import fastfeedparser
except ImportError:
    fastfeedparser = None

from digest.parse import fast_parse, parse_feed, parse_with_feedparser


def corpora(syn_feeds: int) -> dict[str, list[Path]]:
    peer_bench()
    import _common  # the peer harness: corpus paths, and builds the corpus when missing

    real = _common.feed_files(_common.REAL_FEEDS)
    synthetic = _common.feed_files(_common.corpus())[:syn_feeds]
    return {"real feeds": real, f"synthetic arXiv-like ({syn_feeds} x 50)": synthetic}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syn-feeds", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    ratios = []
    for label, paths in corpora(args.syn_feeds).items():
        docs = [(p.name, p.read_bytes()) for p in paths]
        fast = sum(fast_parse(body) is not None for _, body in docs)
        entries = 0
        for name, body in docs:
            mine = parse_feed(name, body).entries
            if mine != parse_with_feedparser(name, body).entries:
                raise SystemExit(f"bench_parse: {name}: the fast path differs from feedparser")
            entries += len(mine)
        runs = {
            "digest parse_feed": lambda docs=docs: [parse_feed(n, b) for n, b in docs],
            "digest via feedparser": lambda docs=docs: [
                parse_with_feedparser(n, b) for n, b in docs
            ],
            "feedparser.parse (peer)": lambda docs=docs: [feedparser.parse(b) for _, b in docs],
        }
        if fastfeedparser is not None:
            runs["fastfeedparser (peer)"] = lambda docs=docs: [
                fastfeedparser.parse(b) for _, b in docs
            ]
        times = {name: median_time(fn, args.repeats) for name, fn in runs.items()}
        mb = sum(len(b) for _, b in docs) / 1e6
        print(
            f"\n{label}: {len(docs)} docs ({fast} on the fast path), {entries} entries, {mb:.1f} MB"
        )
        for name, (median, spread) in times.items():
            print(
                f"  {name:26s} {median:8.3f} s  {entries / median:9,.0f} entries/s  "
                f"(min {min(spread):.3f}, max {max(spread):.3f})"
            )
        mine = times["digest parse_feed"][0]
        peer = times["feedparser.parse (peer)"][0]
        via = times["digest via feedparser"][0]
        ratios.append(
            f"{label}: {peer / mine:.1f}x feedparser, {via / mine:.1f}x our feedparser path"
        )
    print("\nRESULT parse (digest parse_feed is faster by): " + "; ".join(ratios))


if __name__ == "__main__":
    main()
