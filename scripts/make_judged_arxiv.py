"""Build the papers of the second judged set from a real arXiv RSS feed.

    python scripts/make_judged_arxiv.py [--rss ../shared/data/real-feeds/lionelsy-arxiv15.rss]

Writes tests/data/judged-arxiv/papers.json: every distinct paper of the feed (by arXiv id,
first appearance kept) with its arXiv id without the version ("2512.25061"), its English title
and its English abstract: the text after "<h3>摘要:</h3>" in the item's description (the
Chinese GPT summary before it is dropped), HTML removed, entities decoded, whitespace
collapsed. The grades, profiles and likes beside it are written by hand; see
tests/data/judged-arxiv/README.md for how they were made. Deterministic: re-running on the
same input changes nothing. Standard library only.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RSS = ROOT.parent / "shared" / "data" / "real-feeds" / "lionelsy-arxiv15.rss"
OUT = ROOT / "tests" / "data" / "judged-arxiv" / "papers.json"

ABSTRACT_MARK = re.compile(r"<h3>\s*摘要\s*[:：]\s*</h3>")
# new-style ids (2512.25061) and old-style ones (hep-th/9901001), the version dropped
ARXIV_ID = re.compile(
    r"arxiv\.org/abs/(?P<id>\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
)
# an HTML tag, not a literal "<" of the text ("$0<z<4.2$", "(p<0.05)": the feed escapes both once)
TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
SPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded, whitespace collapsed."""
    return SPACE.sub(" ", html.unescape(TAG.sub(" ", text))).strip()


def arxiv_id(link: str) -> str:
    m = ARXIV_ID.search(link)
    if m is None:
        raise SystemExit(f"no arXiv id in link {link!r}")
    return m.group("id")


def english_abstract(description: str) -> str:
    parts = ABSTRACT_MARK.split(description, maxsplit=1)
    if len(parts) != 2:
        raise SystemExit(f"no <h3>摘要:</h3> in description {description[:80]!r}")
    return clean(parts[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rss", type=Path, default=DEFAULT_RSS)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    channel = ET.parse(a.rss).getroot().find("channel")
    if channel is None:
        raise SystemExit(f"{a.rss}: no <channel>")
    papers: dict[str, dict[str, str]] = {}
    items = channel.findall("item")
    for item in items:
        pid = arxiv_id(item.findtext("link", ""))
        papers.setdefault(
            pid,
            {
                "id": pid,
                "title": clean(item.findtext("title", "")),
                "abstract": english_abstract(item.findtext("description", "")),
            },
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(list(papers.values()), indent=1, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(papers)} papers from {len(items)} items")


if __name__ == "__main__":
    main()
