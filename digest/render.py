"""Digest → HTML email, plain text and Markdown, through the Jinja templates."""

from __future__ import annotations

import re
import textwrap
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2

from .models import Digest, Entry, Pick, RenderedDigest
from .rank import why

EXCERPT_CHARS = 300
TEXT_WIDTH = 78
# Inline syntax is escaped everywhere; block syntax (headings, lists, quotes) only where a
# line starts, which is the only place it acts. Backslash escapes are CommonMark-safe.
# Characters Python-Markdown does not backslash-unescape become entities, which both it and
# CommonMark show as written.
_MD_INLINE = re.compile(r"([\\`*_\[\]])")
_MD_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "~": "&#126;"})
_MD_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+(?=[.)]))")


def template_dir() -> Path:
    """The templates shipped in the wheel, or the source tree's during development."""
    packaged = Path(__file__).with_name("templates")
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


@lru_cache(maxsize=4)
def environment(directory: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or template_dir()),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        why=why,
        excerpt=excerpt,
        wrap=wrap,
        md=markdown_escape,
        md_url=markdown_url,
        http_url=http_url,
    )
    return env


def subject(digest: Digest) -> str:
    return f"{digest.title} — {digest.local_date.isoformat()}: {len(digest.picks)} new"


def render(digest: Digest) -> RenderedDigest:
    """Render every format of one digest."""
    env = environment()
    title = subject(digest)
    context = {
        "digest": digest,
        "subject": title,
        "picks": [_pick_view(pick, ZoneInfo(digest.reader.timezone)) for pick in digest.picks],
    }
    return RenderedDigest(
        subject=title,
        html=env.get_template("digest.html.j2").render(context),
        text=env.get_template("digest.txt.j2").render(context),
        markdown=env.get_template("digest.md.j2").render(context),
    )


def render_index(title: str, pages: list[tuple[date, str, int]]) -> str:
    """The Markdown index of dated pages: (local date, relative link, number of picks)."""
    return environment().get_template("index.md.j2").render(title=title, pages=pages)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a summary, cut at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.-–— ")
    return cut + "…"


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", hang: str | None = None) -> str:
    """Wrap for the plain-text part; long words (URLs) are never broken.

    `hang` indents the lines after the first (default: like the first)."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_long_words=False,
        break_on_hyphens=False,
    )


def markdown_escape(text: str) -> str:
    """Feed text as literal Markdown: no links, emphasis, headings or HTML can be injected."""
    escaped = _MD_INLINE.sub(r"\\\1", " ".join(text.split())).translate(_MD_ENTITIES)
    return _MD_LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(m: re.Match[str]) -> str:
    mark = m[2]
    return m[1] + (mark + "\\" if mark[0].isdigit() else "\\" + mark)


def markdown_url(url: str) -> str:
    """A URL that cannot close a Markdown link early."""
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def http_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host, else None: feeds may carry javascript: links."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    return None


def _pick_view(pick: Pick, zone: ZoneInfo) -> dict[str, object]:
    entry = pick.entry
    return {
        "pick": pick,
        "entry": entry,
        "url": http_url(entry.link),
        "date": _local_date(entry, zone),
        "byline": _byline(entry),
        "why": why(pick),
        "score": f"{pick.score:g}",
    }


def _local_date(entry: Entry, zone: ZoneInfo) -> str:
    when: datetime = entry.published or entry.first_seen
    return when.astimezone(zone).date().isoformat()


def _byline(entry: Entry) -> str:
    parts: list[str] = []
    if entry.authors:
        shown = ", ".join(entry.authors[:3])
        parts.append(
            shown + (f" and {len(entry.authors) - 3} more" if len(entry.authors) > 3 else "")
        )
    if entry.organisation:
        parts.append(entry.organisation)
    return " · ".join(parts)
