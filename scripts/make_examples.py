"""Build the bundled example feeds and the test feeds from the shared Daily-Papers pages.

    python scripts/make_examples.py [--pages ../shared/data/daily-papers-pages.json]

Page 1 becomes an RSS 2.0 feed, page 2 a Daily-Papers JSON listing (the shape of that site's
API), page 3 an Atom feed: the three formats `digest` reads, with the real overlap between
pages kept, so the example shows cross-feed de-duplication. The listing gives no paper ids,
links or author names, so ids are made from the title (`ex-` + a hash; the links they form
lead nowhere) and author names are left out. Output is deterministic: re-running the
script on the same input changes no file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAGES = ROOT.parent / "shared" / "data" / "daily-papers-pages.json"
LINK = "https://huggingface.co/papers/{id}"
#: the date the listing was captured; papers without a date on the page get it
FALLBACK_DATE = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def paper_id(title: str) -> str:
    norm = re.sub(r"\W+", " ", title.casefold()).strip()
    return "ex-" + hashlib.sha256(norm.encode()).hexdigest()[:10]


def page_date(text: str | None) -> datetime | None:
    """'May 10, 2022' → that day at 06:00 UTC; a date without a year is not used."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%b %d, %Y").replace(hour=6, tzinfo=UTC)
    except ValueError:
        return None


def organisation(raw: str | None) -> str | None:
    # the page shows the org's handle then its display name ("nvidia NVIDIA")
    return raw.split(" ", 1)[-1] if raw else None


def rss(title: str, entries: list[dict[str, object]]) -> str:
    items = []
    for e in entries:
        link = LINK.format(id=e["id"])
        when = e["date"] or FALLBACK_DATE
        assert isinstance(when, datetime)
        items.append(
            "  <item>\n"
            f"    <title>{escape(str(e['title']))}</title>\n"
            f"    <link>{link}</link>\n"
            f'    <guid isPermaLink="true">{link}</guid>\n'
            f"    <pubDate>{format_datetime(when)}</pubDate>\n"
            f"    <description>{escape(str(e['abstract']))}</description>\n"
            "  </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
        f"  <title>{escape(title)}</title>\n  <link>https://huggingface.co/papers</link>\n"
        f"  <description>{escape(title)}</description>\n" + "".join(items) + "</channel>\n</rss>\n"
    )


def atom(title: str, entries: list[dict[str, object]]) -> str:
    items = []
    for e in entries:
        link = LINK.format(id=e["id"])
        when = e["date"] or FALLBACK_DATE
        assert isinstance(when, datetime)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        items.append(
            "  <entry>\n"
            f"    <id>{link}</id>\n"
            f"    <title>{escape(str(e['title']))}</title>\n"
            f'    <link href="{link}"/>\n'
            f"    <published>{stamp}</published>\n    <updated>{stamp}</updated>\n"
            f"    <summary>{escape(str(e['abstract']))}</summary>\n"
            "  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"  <title>{escape(title)}</title>\n  <id>urn:digest-example:{paper_id(title)}</id>\n"
        f"  <updated>{FALLBACK_DATE:%Y-%m-%dT%H:%M:%SZ}</updated>\n" + "".join(items) + "</feed>\n"
    )


def daily_papers(entries: list[dict[str, object]]) -> str:
    items = []
    for e in entries:
        when = e["date"] or FALLBACK_DATE
        assert isinstance(when, datetime)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        paper: dict[str, object] = {
            "id": e["id"],
            "title": e["title"],
            "summary": e["abstract"],
            "authors": [],
            "publishedAt": stamp,
        }
        if e["upvotes"] is not None:
            paper["upvotes"] = e["upvotes"]
        item: dict[str, object] = {
            "paper": paper,
            "title": e["title"],
            "summary": e["abstract"],
            "publishedAt": stamp,
        }
        if e["org"]:
            item["organization"] = {"fullname": e["org"]}
        items.append(item)
    return json.dumps(items, indent=1, ensure_ascii=False) + "\n"


def load(pages_path: Path) -> list[list[dict[str, object]]]:
    data = json.loads(pages_path.read_text(encoding="utf-8"))
    return [
        [
            {
                "id": paper_id(raw["title"]),
                "title": raw["title"],
                "abstract": raw["abstract"],
                "date": page_date(raw.get("date")),
                "upvotes": raw.get("upvotes"),
                "org": organisation(raw.get("org")),
            }
            for raw in page["entries"]
        ]
        for page in data["pages"]
    ]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    args = parser.parse_args()
    page1, page2, page3 = load(args.pages)

    feeds = ROOT / "examples" / "feeds"
    write(feeds / "papers-page1.rss", rss("Daily Papers, page 1", page1))
    write(feeds / "papers-page2.json", daily_papers(page2))
    write(feeds / "papers-page3.atom", atom("Daily Papers, page 3", page3))

    # Two days of two feeds for the end-to-end tests: day 2 of feed A repeats its last
    # 10 entries of day 1 and adds 10; feed B carries 5 of feed A's day-2 entries and 10 more.
    data = ROOT / "tests" / "data" / "two-days"
    day1, day2 = page3[:30], page3[20:40]
    write(data / "feed-a-day1.rss", rss("Feed A", day1))
    write(data / "feed-a-day2.rss", rss("Feed A", day2))
    write(data / "feed-b-day1.atom", atom("Feed B", page1[:10]))
    write(data / "feed-b-day2.atom", atom("Feed B", page1[:10] + page3[35:40] + page1[10:20]))


if __name__ == "__main__":
    main()
