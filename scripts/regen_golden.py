"""Rewrite tests/golden/: the built-in templates' rendering of one fixed digest.

    python scripts/regen_golden.py [--check]

The digest is built here from fixed records (entries, picks, a reader, a fixed `now`), so
tests/test_render_golden.py and this script render exactly the same thing. After a change to
the templates or to rendering, run this, then review `git diff tests/golden/` as the change a
reader will see. `--check` writes nothing and exits 1 when a file differs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
#: the instant the digest is built for
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
UNSUBSCRIBE = "https://digest.example.org/unsubscribe?token=golden"


def golden_digest() -> object:
    """One digest that shows every part of the templates: sections (a named one and
    "Other"), a pick with several matched terms and boosts, a feed weight, a long summary cut
    to an excerpt, a pick without a link, an entry without a date (dated by when it was
    seen), many authors, upvotes, CJK text wrapped by width, feed problems."""
    from digest.models import (
        DEFAULT_FIELD_WEIGHTS,
        Boost,
        Digest,
        Entry,
        Match,
        Pick,
        Profile,
        Reader,
    )

    def entry(n: int, title: str, summary: str, **more: object) -> Entry:
        values: dict[str, object] = {
            "id": f"urn:golden:{n}",
            "title": title,
            "link": f"https://papers.example.org/abs/2611.{n:05d}",
            "summary": summary,
            "published": datetime(2026, 11, 22, 18, 30, tzinfo=UTC),
            "feeds": ("arXiv cs.LG",),
            "first_seen": datetime(2026, 11, 23, 4, 0, tzinfo=UTC),
        }
        values.update(more)
        return Entry(**values)  # type: ignore[arg-type]

    picks = (
        Pick(
            entry=entry(
                1,
                "RLHF Workflow: From Reward Modeling to Online RLHF",
                "We present the workflow of Online Iterative Reinforcement Learning from Human "
                "Feedback (RLHF) in this technical report, which is widely reported to "
                "outperform its offline counterpart by a large margin in the recent large "
                "language model (LLM) literature. However, existing open-source RLHF projects "
                "are still largely confined to the offline learning setting. In this report "
                "we aim to fill in this gap and provide a detailed recipe.",
                authors=("Hanze Dong", "Wei Xiong", "Bo Pang", "Haoxiang Wang", "Han Zhao"),
                organisation="Salesforce AI Research",
                upvotes=128,
                feeds=("arXiv cs.LG", "Daily Papers"),
            ),
            score=14.25,
            matches=(
                Match("RLHF", "title", 6.0, count=2),
                Match("RLHF", "summary", 2.5, count=3),
                Match("reward model", "title", 3.5),
                Match("reinforcement learning", "summary", 1.25),
            ),
            feed_weight=1.25,
            boosts=(Boost("upvotes", 1.0, 128),),
            section="Alignment",
        ),
        Pick(
            entry=entry(
                2,
                "Preference optimization without a reference model: *simple* & [fast]",
                "A short summary with Markdown-looking text: # not a heading, <b>not bold</b>.",
                authors=("Ada Lovelace",),
            ),
            score=6.5,
            matches=(
                Match("preference", "title", 4.0),
                Match("policy optimization", "summary", 2.5),
            ),
            section="Alignment",
        ),
        Pick(
            entry=entry(
                3,
                "大規模言語モデル（LLM）を用いた強化学習による推論能力の向上についての研究と、"
                "その評価方法の提案",
                "強化学習は機械学習の一分野であり、エージェントが環境との相互作用を通じて報酬を"
                "最大化する行動を学習する。",
                link=None,
                published=None,
                feeds=("Papers (日本語)",),
            ),
            score=3.0,
            matches=(Match("reinforcement learning", "title", 3.0),),
        ),
    )
    profile = Profile(
        name="rl",
        keywords=(("RLHF", 3.0), ("reward model", 2.0), ("preference", 1.0)),
        exclude=("survey",),
        max_entries=10,
        min_score=1.0,
        fields=DEFAULT_FIELD_WEIGHTS,
    )
    return Digest(
        reader=Reader(key="subscriber:ada", name="ada", profile=profile, timezone="Europe/London"),
        title="Morning papers",
        local_date=date(2026, 11, 23),
        generated_at=NOW,
        picks=picks,
        considered=42,
        feed_problems=("Daily Papers p3 (Atom): HTTP 503 Service Unavailable (3rd day)",),
    )


def rendered() -> dict[str, str]:
    """File name → content, for each format of the golden digest."""
    from digest.models import Digest
    from digest.render import render, render_index

    digest = golden_digest()
    assert isinstance(digest, Digest)
    parts = render(digest, unsubscribe_url=UNSUBSCRIBE)
    pages = [(date(2026, 11, 23), "2026-11-23.md", 3), (date(2026, 11, 20), "2026-11-20.md", 0)]
    return {
        "digest.subject.txt": parts.subject + "\n",
        "digest.html": parts.html,
        "digest.txt": parts.text,
        "digest.md": parts.markdown,
        "index.md": render_index("Morning papers", pages),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a change")
    args = parser.parse_args(argv)
    changed = []
    for name, content in rendered().items():
        path = GOLDEN / name
        data = content.encode()
        if path.exists() and path.read_bytes() == data:
            continue
        changed.append(name)
        if not args.check:
            GOLDEN.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    verb = "differ" if args.check else "rewritten"
    print(f"{len(changed)} golden files {verb}: {', '.join(changed) or '-'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
