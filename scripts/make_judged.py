"""Build the papers of the judged ranking set from the shared Daily-Papers pages.

    python scripts/make_judged.py [--pages ../shared/data/daily-papers-pages.json]

Writes tests/data/judged/papers.json: every distinct paper of the three pages (by normalised
title, first appearance kept) with an id made from its title, its title and its abstract.
The grades (tests/data/judged/grades.csv) and the profiles (profiles.toml) beside it are
written by hand; see tests/data/judged/README.md for how they were made. Deterministic:
re-running on the same input changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAGES = ROOT.parent / "shared" / "data" / "daily-papers-pages.json"
OUT = ROOT / "tests" / "data" / "judged" / "papers.json"


def paper_id(title: str) -> str:
    norm = re.sub(r"\W+", " ", title.casefold()).strip()
    return "ex-" + hashlib.sha256(norm.encode()).hexdigest()[:10]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    a = ap.parse_args()
    pages = json.loads(a.pages.read_text())["pages"]
    papers: dict[str, dict[str, str]] = {}
    for page in pages:
        for e in page["entries"]:
            pid = paper_id(e["title"])
            papers.setdefault(pid, {"id": pid, "title": e["title"], "abstract": e["abstract"]})
    OUT.write_text(json.dumps(list(papers.values()), indent=1, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(papers)} papers")


if __name__ == "__main__":
    main()
