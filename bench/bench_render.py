"""Digests rendered per second, all three formats (HTML with inlined CSS, text, Markdown).

    python bench/bench_render.py [--entries 30] [--digests 500] [--profiles N] [--repeats 7]

Each timed round is what one run does for its subscribers: render's caches start empty,
every digest draws its picks from the same day's entries (the example feeds, their
publication times spread over the day before), and subscribers are in four zones.
Subscribers share profiles (`--profiles`, default 50 for 500 subscribers; a profile's
picks, scores and why lines are its own), so a digest's rows are made once for the
subscribers of its profile who see the same dates, and an entry's own parts once per date
shown for everyone. It then times the worst case too, every subscriber a profile of their
own (only entries shared); `--profiles 0` times that case alone.
The floor is the same three documents built with f-strings (escaping included, the CSS
written inline by hand), with the same caches emptied, timed in alternation with render in
the same run. Target: >= 2,000 digests/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from html import escape

from _data import digest

from digest.models import Digest
from digest.rank import why
from digest.render import clear_caches, render
from digest.typeset import excerpt, markdown_escape, wrap

STYLE_ITEM = "padding: 14px 20px;border-top: 1px solid #e5e7eb;"
STYLE_TITLE = "margin: 0;font-size: 17px;line-height: 24px;font-weight: bold;color: #111827;"


def floor(d: Digest) -> tuple[str, str, str]:
    """The least work that produces the same three documents: f-strings, no templates."""
    html, text, md = [], [], []
    for i, p in enumerate(d.picks, 1):
        e = p.entry
        reason = why(p)
        html.append(
            f'<tr><td style="{STYLE_ITEM}"><p style="{STYLE_TITLE}">{i}. '
            f'<a href="{escape(e.link or "")}">{escape(e.title)}</a></p>'
            f"<p>{escape(', '.join(e.feeds))}</p><p>{escape(excerpt(e.summary))}</p>"
            f"<p>Why: {escape(reason)} — score {p.score:g}</p></td></tr>"
        )
        text.append(
            f"{wrap(f'{i}. {e.title}', hang='   ')}\n   {e.link}\n"
            f"{wrap(excerpt(e.summary), indent='   ')}\n{wrap('Why: ' + reason, indent='   ')}\n"
        )
        md.append(
            f"## {i}. [{markdown_escape(e.title)}](<{e.link}>)\n\n"
            f"{markdown_escape(excerpt(e.summary))}\n\n**Why:** {markdown_escape(reason)}\n"
        )
    return (
        f"<html><body><table>{''.join(html)}</table></body></html>",
        "\n".join(text),
        "\n".join(md),
    )


def rounds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Each function timed `repeats` times in alternation, each from empty caches, after a
    warm-up (imports, template compilation)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            clear_caches()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def measure(a: argparse.Namespace, profiles: int) -> tuple[float, float]:
    """Digests/s of render and of the floor, printed with every round's time."""
    digests = [
        digest(a.entries, f"reader{i}", offset=i, profile=i % profiles, spread=True)
        for i in range(a.digests)
    ]
    times = rounds(
        {
            "render": lambda: [render(d) for d in digests],
            "floor": lambda: [floor(d) for d in digests],
        },
        a.repeats,
    )
    sample = render(digests[0])
    assert 'style="' in sample.html and "<style>" in sample.html, "CSS was not inlined"
    ours, base = statistics.median(times["render"]), statistics.median(times["floor"])
    rate, floor_rate = a.digests / ours, a.digests / base
    print(
        f"{a.digests} digests of {a.entries} entries, {profiles} profiles, "
        f"HTML {len(sample.html) / 1000:.0f} KB"
    )
    print(f"  digest render (HTML+text+Markdown): median {ours:.3f} s, {rate:,.0f} digests/s")
    print(f"    runs: {', '.join(f'{t:.3f}' for t in times['render'])}")
    print(f"  f-string floor (same three formats): median {base:.3f} s, {floor_rate:,.0f}/s")
    print(f"    runs: {', '.join(f'{t:.3f}' for t in times['floor'])}")
    return rate, floor_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=30)
    ap.add_argument("--digests", type=int, default=500)
    ap.add_argument("--profiles", type=int, default=50, help="0: one per subscriber")
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    rate, floor_rate = measure(a, a.profiles or a.digests)
    own = measure(a, a.digests) if a.profiles else None
    print(
        f"RESULT render: {rate:,.0f} digests/s all three formats (target 2,000), "
        f"{rate / floor_rate:.2f}x the f-string floor"
    )
    if own is not None:
        print(
            f"  (every subscriber a profile of their own: {own[0]:,.0f} digests/s, "
            f"{own[0] / own[1]:.2f}x the floor)"
        )


if __name__ == "__main__":
    main()
