"""Digests rendered per second, all three formats (HTML with inlined CSS, text, Markdown).

    python bench/bench_render.py [--entries 30] [--digests 500] [--repeats 7]

The floor is the same three documents built with f-strings (escaping included, the CSS
written inline by hand), timed in the same run. Target: >= 2,000 digests/s.
"""

from __future__ import annotations

import argparse
from html import escape

from _data import digest, median_time

from digest.models import Digest
from digest.rank import why
from digest.render import excerpt, markdown_escape, render, wrap

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=30)
    ap.add_argument("--digests", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    digests = [digest(a.entries, f"reader{i}", offset=i) for i in range(a.digests)]
    ours, ours_t = median_time(lambda: [render(d) for d in digests], a.repeats)
    base, base_t = median_time(lambda: [floor(d) for d in digests], a.repeats)
    sample = render(digests[0])
    assert 'style="' in sample.html and "<style>" in sample.html, "CSS was not inlined"
    rate, floor_rate = a.digests / ours, a.digests / base
    print(f"{a.digests} digests of {a.entries} entries; HTML {len(sample.html) / 1000:.0f} KB")
    print(f"  digest render (HTML+text+Markdown): median {ours:.3f} s, {rate:,.0f} digests/s")
    print(f"    runs: {', '.join(f'{t:.3f}' for t in ours_t)}")
    print(f"  f-string floor (same three formats): median {base:.3f} s, {floor_rate:,.0f}/s")
    print(f"    runs: {', '.join(f'{t:.3f}' for t in base_t)}")
    print(
        f"RESULT render: {rate:,.0f} digests/s all three formats (target 2,000), "
        f"{rate / floor_rate:.2f}x the f-string floor"
    )


if __name__ == "__main__":
    main()
