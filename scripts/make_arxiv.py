"""Build the arXiv-shaped test feeds in tests/data/arxiv/ from the shared Daily-Papers pages.

    python scripts/make_arxiv.py [--pages ../shared/data/daily-papers-pages.json]

Three documents about the same few papers, in the shapes `digest` reads arXiv papers in:

- listing-rss.xml: an rss.arxiv.org listing (oai:arXiv.org guids with the version,
  `arxiv:announce_type` new / cross / replace / replace-cross, `dc:creator`, categories);
- api-v2.atom: an arXiv API answer, where the first paper is now at version 2
  (`<id>http://arxiv.org/abs/…v2</id>`, `arxiv:primary_category`, one <author> each);
- daily-papers.json: a Daily-Papers page whose first paper is the same one again
  (it links https://huggingface.co/papers/<arXiv id>).

Titles and abstracts are real (the first page of the listing); ids, authors and
categories are made up. Deterministic: re-running the script changes no file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAGES = ROOT.parent / "shared" / "data" / "daily-papers-pages.json"
OUT = ROOT / "tests" / "data" / "arxiv"
ANNOUNCE = ["new", "cross", "replace", "replace-cross"]
CATEGORIES = [["cs.LG", "cs.AI"], ["cs.CL"], ["cs.CV", "cs.LG"], ["stat.ML", "cs.LG"]]
AUTHORS = [
    ["Ada Lovelace", "Alan Turing"],
    ["Grace Hopper"],
    ["Edsger Dijkstra", "Barbara Liskov", "Donald Knuth"],
    ["Katherine Johnson", "John von Neumann"],
]


def papers(pages: Path) -> list[dict[str, Any]]:
    first = json.loads(pages.read_text(encoding="utf-8"))["pages"][0]["entries"][:4]
    return [
        {
            "id": f"2411.{10001 + i:05d}",
            "title": e["title"],
            "abstract": " ".join(str(e["abstract"]).split()),
            "announce": ANNOUNCE[i],
            "categories": CATEGORIES[i],
            "authors": AUTHORS[i],
        }
        for i, e in enumerate(first)
    ]


def listing_rss(items: list[dict[str, Any]]) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">',
        "  <channel>",
        "    <title>cs.LG updates on arXiv.org</title>",
        "    <link>http://rss.arxiv.org/rss/cs.LG</link>",
        "    <description>cs.LG updates on the arXiv.org e-print archive.</description>",
        "    <pubDate>Mon, 23 Nov 2026 00:00:00 -0500</pubDate>",
    ]
    for p in items:
        version = 1 if p["announce"] in ("new", "cross") else 2
        out += [
            "    <item>",
            f"      <title>{escape(str(p['title']))}</title>",
            f"      <link>https://arxiv.org/abs/{p['id']}</link>",
            f"      <description>arXiv:{p['id']}v{version} Announce Type: {p['announce']} \n"
            f"Abstract: {escape(str(p['abstract']))}</description>",
            f'      <guid isPermaLink="false">oai:arXiv.org:{p["id"]}v{version}</guid>',
            *(f"      <category>{c}</category>" for c in p["categories"]),
            "      <pubDate>Mon, 23 Nov 2026 00:00:00 -0500</pubDate>",
            f"      <arxiv:announce_type>{p['announce']}</arxiv:announce_type>",
            "      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>",
            f"      <dc:creator>{escape(', '.join(p['authors']))}</dc:creator>",
            "    </item>",
        ]
    out += ["  </channel>", "</rss>", ""]
    return "\n".join(out)


def api_atom(items: list[dict[str, Any]]) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">',
        "  <id>https://arxiv.org/api/query</id>",
        "  <title>arXiv Query: cat:cs.LG</title>",
        "  <updated>2026-11-24T05:00:00Z</updated>",
    ]
    for p in items:
        cats = p["categories"]
        out += [
            "  <entry>",
            f"    <id>http://arxiv.org/abs/{p['id']}v2</id>",
            f"    <title>{escape(str(p['title']))}</title>",
            "    <updated>2026-11-24T05:00:00Z</updated>",
            "    <published>2026-11-20T17:00:00Z</published>",
            f"    <summary>  {escape(str(p['abstract']))}\n</summary>",
            *(f"    <author><name>{escape(a)}</name></author>" for a in p["authors"]),
            f'    <link href="https://arxiv.org/abs/{p["id"]}v2" rel="alternate" '
            'type="text/html"/>',
            f'    <link title="pdf" href="https://arxiv.org/pdf/{p["id"]}v2" rel="related" '
            'type="application/pdf"/>',
            f"    <arxiv:primary_category term={quoteattr(cats[0])} "
            'scheme="http://arxiv.org/schemas/atom"/>',
            *(
                f'    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>'
                for c in reversed(cats)
            ),
            "  </entry>",
        ]
    out += ["</feed>", ""]
    return "\n".join(out)


def daily_papers(items: list[dict[str, Any]]) -> str:
    page = [
        {
            "paper": {
                "id": p["id"],
                "title": p["title"],
                "summary": p["abstract"],
                "upvotes": 17,
                "publishedAt": "2026-11-20T17:00:00.000Z",
                "authors": [{"name": a} for a in p["authors"]],
            },
            "title": p["title"],
            "publishedAt": "2026-11-24T06:00:00.000Z",
        }
        for p in items
    ]
    return json.dumps(page, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    args = ap.parse_args()
    items = papers(args.pages)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "listing-rss.xml").write_text(listing_rss(items), encoding="utf-8")
    # the API answer: the first paper again at v2, and one the listing does not have
    (OUT / "api-v2.atom").write_text(api_atom([items[0], items[3]]), encoding="utf-8")
    (OUT / "daily-papers.json").write_text(daily_papers([items[0]]), encoding="utf-8")


if __name__ == "__main__":
    main()
