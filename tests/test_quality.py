"""Ranking quality on a hand-graded set: digest's profile ranking against BM25, same terms."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from conftest import DATA
from factories import NOW

from digest.config import load_config
from digest.models import Entry, Profile
from digest.rank import KeywordRanker, stem

JUDGED = DATA / "judged"
_WORD = re.compile(r"\w+")


def papers() -> list[Entry]:
    return [
        Entry(
            id=p["id"],
            title=p["title"],
            link=None,
            summary=p["abstract"],
            published=NOW,
            feeds=("papers",),
            first_seen=NOW,
        )
        for p in json.loads((JUDGED / "papers.json").read_text())
    ]


def grades() -> dict[str, dict[str, int]]:
    with (JUDGED / "grades.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        reader: {row["id"]: int(row[reader]) for row in rows}
        for reader in ("rl", "agents", "vision")
    }


def profiles(tmp_path: Path) -> dict[str, Profile]:
    """The profiles as a user's config file holds them, through the real config loader."""
    config = tmp_path / "judged.toml"
    config.write_text(
        '[digest]\nmax_entries = 1000\nmin_score = 0\n[[feeds]]\nname = "papers"\nurl = "x.json"\n'
        + (JUDGED / "profiles.toml").read_text()
    )
    return dict(load_config(config).profiles)


def ndcg(ranked: Sequence[str], grade: dict[str, int], k: int) -> float:
    def dcg(gains: Sequence[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k]))

    ideal = dcg(sorted(grade.values(), reverse=True))
    return dcg([grade[i] for i in ranked]) / ideal


def bm25(entries: Sequence[Entry], profile: Profile, norm: Callable[[str], str]) -> list[str]:
    """Okapi BM25 (k1 1.5, b 0.75, Lucene's idf) over title + abstract; the query is every
    word of every profile term, once, without weights. Only documents that score."""
    docs = [[norm(w) for w in _WORD.findall(f"{e.title} {e.summary}".lower())] for e in entries]
    df = Counter(w for d in docs for w in set(d))
    average = sum(map(len, docs)) / len(docs)
    query = {norm(w) for term, _ in profile.keywords for w in _WORD.findall(term.lower())}
    scored = []
    for e, d in zip(entries, docs, strict=True):
        tf = Counter(d)
        s = 0.0
        for w in query:
            if tf[w]:
                idf = math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * tf[w] * 2.5 / (tf[w] + 1.5 * (0.25 + 0.75 * len(d) / average))
        if s > 0:
            scored.append((-s, e.id))
    return [i for _, i in sorted(scored)]


def quality(tmp_path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """(nDCG@10, nDCG@30) per ranker and reader."""
    entries = papers()
    graded = grades()
    profs = profiles(tmp_path)
    ranker = KeywordRanker(profs.values(), collection=entries)  # statistics: the whole set
    rankers: dict[str, Callable[[Profile], list[str]]] = {
        "digest": lambda p: [pick.entry.id for pick in ranker.rank(entries, p)],
        "BM25": lambda p: bm25(entries, p, lambda w: w),
        "BM25+stem": lambda p: bm25(entries, p, stem),
    }
    return {
        name: {
            reader: (ndcg(rank(p), graded[reader], 10), ndcg(rank(p), graded[reader], 30))
            for reader, p in profs.items()
        }
        for name, rank in rankers.items()
    }


def report(results: dict[str, dict[str, tuple[float, float]]]) -> str:
    lines = []
    for name, by_reader in results.items():
        cells = "  ".join(f"{r} {a:.3f}/{b:.3f}" for r, (a, b) in by_reader.items())
        lines.append(f"{name:10} {cells}  mean {mean(by_reader):.3f}")
    return "\n".join(lines)


def mean(by_reader: dict[str, tuple[float, float]]) -> float:
    values = [v for pair in by_reader.values() for v in pair]
    return sum(values) / len(values)


def test_every_paper_is_graded_for_every_reader() -> None:
    ids = {e.id for e in papers()}
    assert len(ids) == 176
    for reader, grade in grades().items():
        assert set(grade) == ids, reader
        assert set(grade.values()) == {0, 1, 2}, reader


def test_digest_ranks_better_than_bm25_with_the_same_terms(tmp_path: Path) -> None:
    results = quality(tmp_path)
    shown = report(results)  # nDCG@10/nDCG@30 per reader; mean of both over the readers
    print("\n" + shown)
    digest = mean(results["digest"])
    assert digest > mean(results["BM25"]), shown
    assert digest > mean(results["BM25+stem"]), shown
