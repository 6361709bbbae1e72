"""Ranking quality on two hand-graded sets: digest's profile ranking against naive weighted
counting and BM25 with the same terms.

`judged/` (176 papers × 3 readers) is what the ranker was first tuned on; `judged-arxiv/`
(575 real arXiv papers × 5 readers) was graded, and its profiles written, before any ranker
ran on it (its README says how). A change to the ranking must hold on both."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import DATA
from factories import NOW

from digest.config import load_config
from digest.models import Entry, Profile
from digest.rank import KeywordRanker, stem

SETS = {"judged": 176, "judged-arxiv": 575}
_WORD = re.compile(r"\w+")


def papers(name: str) -> list[Entry]:
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
        for p in json.loads((DATA / name / "papers.json").read_text())
    ]


def grades(name: str) -> dict[str, dict[str, int]]:
    with (DATA / name / "grades.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    readers = [column for column in rows[0] if column not in ("id", "title")]
    return {reader: {row["id"]: int(row[reader]) for row in rows} for reader in readers}


def profiles(name: str, tmp_path: Path) -> dict[str, Profile]:
    """The profiles as a user's config file holds them, through the real config loader."""
    config = tmp_path / f"{name}.toml"
    config.write_text(
        '[digest]\nmax_entries = 1000\nmin_score = 0\n[[feeds]]\nname = "papers"\nurl = "x.json"\n'
        + (DATA / name / "profiles.toml").read_text()
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


def naive(entries: Sequence[Entry], profile: Profile) -> list[str]:
    """Weighted keyword counting, what a user could write in a few lines: each term's weight
    × its occurrences (as stems, phrases as runs of words) in title + abstract."""
    texts = [
        " " + " ".join(stem(w) for w in _WORD.findall(f"{e.title} {e.summary}".lower())) + " "
        for e in entries
    ]
    terms = [(" " + " ".join(stem(w) for w in _WORD.findall(t.lower())) + " ", weight)
             for t, weight in profile.keywords]  # fmt: skip
    scored = []
    for e, text in zip(entries, texts, strict=True):
        s = sum(weight * text.count(term) for term, weight in terms)
        if s > 0:
            scored.append((-s, e.id))
    return [i for _, i in sorted(scored)]


def quality(name: str, tmp_path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """(nDCG@10, nDCG@30) per ranker and reader."""
    entries = papers(name)
    graded = grades(name)
    profs = profiles(name, tmp_path)
    ranker = KeywordRanker(profs.values(), collection=entries)  # statistics: the whole set
    rankers: dict[str, Callable[[Profile], list[str]]] = {
        "digest": lambda p: [pick.entry.id for pick in ranker.rank(entries, p)],
        "naive": lambda p: naive(entries, p),
        "BM25": lambda p: bm25(entries, p, lambda w: w),
        "BM25+stem": lambda p: bm25(entries, p, stem),
    }
    return {
        ranker_name: {
            reader: (ndcg(rank(p), graded[reader], 10), ndcg(rank(p), graded[reader], 30))
            for reader, p in profs.items()
        }
        for ranker_name, rank in rankers.items()
    }


def report(results: dict[str, dict[str, tuple[float, float]]]) -> str:
    lines = []
    for name, by_reader in results.items():
        cells = "  ".join(f"{r} {a:.3f}/{b:.3f}" for r, (a, b) in by_reader.items())
        at10, at30 = at(by_reader, 0), at(by_reader, 1)
        lines.append(f"{name:10} {cells}  mean {at10:.3f}/{at30:.3f}")
    return "\n".join(lines)


def at(by_reader: dict[str, tuple[float, float]], k: int) -> float:
    """Mean nDCG@10 (k=0) or nDCG@30 (k=1) over the readers."""
    return sum(pair[k] for pair in by_reader.values()) / len(by_reader)


@pytest.mark.parametrize("name", SETS)
def test_every_paper_is_graded_for_every_reader(name: str) -> None:
    ids = {e.id for e in papers(name)}
    assert len(ids) == SETS[name]
    for reader, grade in grades(name).items():
        assert set(grade) == ids, reader
        assert set(grade.values()) == {0, 1, 2}, reader


@pytest.mark.parametrize("name", SETS)
def test_digest_ranks_at_least_as_well_as_naive_counting_and_bm25(
    name: str, tmp_path: Path
) -> None:
    """Issue 18's targets for keywords alone, on both sets: nDCG@30 at least naive counting's
    and BM25's, nDCG@10 within 0.01 of naive counting's."""
    results = quality(name, tmp_path)
    shown = f"{name}\n" + report(results)
    print("\n" + shown)
    digest = results["digest"]
    for peer in ("naive", "BM25", "BM25+stem"):
        assert at(digest, 1) >= at(results[peer], 1), shown
    assert at(digest, 0) >= at(results["naive"], 0) - 0.01, shown
    assert at(digest, 0) > at(results["BM25"], 0), shown
