"""Digest → HTML email, plain text and Markdown, through the Jinja templates."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import css_inline
import jinja2
import markdown
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .errors import TemplateError
from .models import Digest, Entry, Pick, RenderedDigest
from .rank import why

EXCERPT_CHARS = 300
TEXT_WIDTH = 78
#: octets; a word longer than this is broken to keep lines under 998 octets (RFC 5322)
LONGEST_WORD = 900
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


class InliningLoader(jinja2.FileSystemLoader):
    """Loads templates with the CSS of HTML ones inlined into style attributes, once.

    Mail clients drop or mangle <style>; inlining per message would cost more than the
    rendering itself. So the template *source* is inlined when it is loaded: Jinja syntax
    is swapped for inert placeholders (comments where a block tag stands, so the HTML
    parser cannot move it out of a table), css-inline runs, and the placeholders are put
    back. @media rules (dark mode) stay in a <style> block.
    """

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".html.j2"):
            source = inline_template_css(source, filename)
        return source, filename, uptodate


_JINJA_SYNTAX = re.compile(r"\{%-?.*?-?%\}|\{\{.*?\}\}|\{#.*?#\}", re.DOTALL)
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def inline_template_css(source: str, filename: str = "<template>") -> str:
    """A Jinja HTML template with its <style> rules moved into style attributes."""
    found: list[str] = []

    def protect(m: re.Match[str]) -> str:
        found.append(m[0])
        token = f"JINJA{len(found) - 1}X"
        return f"<!--{token}-->" if m[0].startswith("{%") else token

    inlined = _INLINER.inline(_JINJA_SYNTAX.sub(protect, source))
    for i, original in enumerate(found):
        token = f"JINJA{i}X"
        for form in (f"<!--{token}-->", token):
            if form in inlined:
                inlined = inlined.replace(form, original, 1)
                break
        else:
            raise TemplateError(f"{filename}: cannot inline CSS around {original!r}")
    return inlined


@lru_cache(maxsize=4)
def environment(directory: Path | None = None) -> jinja2.Environment:
    """The built-in templates, or a user's directory (falling back to the built-in ones for
    templates it lacks) rendered in Jinja's sandbox: a template is code."""
    loader: jinja2.BaseLoader = InliningLoader(template_dir())
    env_class = jinja2.Environment
    if directory is not None:
        loader = jinja2.ChoiceLoader([InliningLoader(directory), loader])
        env_class = SandboxedEnvironment
    env = env_class(
        loader=loader,
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


def render(
    digest: Digest, templates: Path | None = None, unsubscribe_url: str | None = None
) -> RenderedDigest:
    """Render every format of one digest, with the user's templates when given."""
    env = environment(templates)
    title = subject(digest)
    context = {
        "digest": digest,
        "subject": title,
        "unsubscribe_url": http_url(unsubscribe_url),
        "picks": [_pick_view(pick, digest.reader.timezone) for pick in digest.picks],
    }
    return RenderedDigest(
        subject=title,
        html=_render(env, "digest.html.j2", context),
        text=_render(env, "digest.txt.j2", context),
        markdown=_render(env, "digest.md.j2", context),
    )


def _render(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as e:
        where = f"{e.filename}:{e.lineno}" if isinstance(e, jinja2.TemplateSyntaxError) else name
        raise TemplateError(f"template {where}: {e.message or type(e).__name__}") from e


def archive_page(title: str, markdown_text: str, up: str | None = None) -> str:
    """One page of the static archive: a Markdown digest (whose feed text is already
    escaped) or index rendered to HTML by the `markdown` package."""
    body = markdown.markdown(markdown_text, output_format="html")
    page = environment().get_template("archive.html.j2")
    return page.render(title=title, body=Markup(body), up=up)


def render_index(title: str, pages: list[tuple[date, str, int]]) -> str:
    """The Markdown index of dated pages: (local date, relative link, number of picks)."""
    return environment().get_template("index.md.j2").render(title=title, pages=pages)


# Many subscribers share the day's entries: their text is escaped and wrapped once.
@lru_cache(maxsize=8192)
def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a summary, cut at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.-–— ")
    return cut + "…"


@lru_cache(maxsize=8192)
def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", hang: str | None = None) -> str:
    """Wrap for the plain-text part. Words (URLs) are not broken, unless one is so long that
    its line would pass SMTP's 998-octet limit.

    `hang` indents the lines after the first (default: like the first)."""
    longest = max((len(word.encode()) for word in text.split()), default=0)
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_long_words=longest > LONGEST_WORD,
        break_on_hyphens=False,
    )


@lru_cache(maxsize=8192)
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


@dataclass(frozen=True, slots=True)
class PickView:
    """A pick as the templates show it. Everything but the number is computed once per
    pick and zone and shared by every digest that holds the pick."""

    pick: Pick
    entry: Entry
    url: str | None
    #: "published 2026-11-20" or "seen 2026-11-23", in the reader's zone
    date: str
    #: authors and organisation
    byline: str
    #: feeds · date · byline · upvotes
    meta: str
    excerpt: str
    why: str
    score: str
    #: the text part's lines after the title, wrapped and indented
    text_body: str
    #: the Markdown link (or text) for the title, and the lines after it
    md_title: str
    md_body: str


@lru_cache(maxsize=8192)
def _pick_view(pick: Pick, zone: str) -> PickView:
    entry = pick.entry
    url = http_url(entry.link)
    date = _local_date(entry, ZoneInfo(zone))
    byline = _byline(entry)
    parts = [", ".join(entry.feeds), date, byline]
    if entry.upvotes is not None:
        parts.append(f"▲ {entry.upvotes}")
    meta = " · ".join(p for p in parts if p)
    short = excerpt(entry.summary) if entry.summary else ""
    reason, score = why(pick), f"{round(pick.score, 1):g}"
    text_lines = [wrap(url, indent="   ")] if url else []
    text_lines.append(wrap(meta, indent="   "))
    if short:
        text_lines.append(wrap(short, indent="   "))
    text_lines.append(wrap(f"Why: {reason} — score {score}", indent="   "))
    title = markdown_escape(entry.title)
    md_lines = [f"*{markdown_escape(meta)}*", ""]
    if short:
        md_lines += [markdown_escape(short), ""]
    md_lines.append(f"**Why:** {markdown_escape(reason)} — score {score}")
    return PickView(
        pick=pick,
        entry=entry,
        url=url,
        date=date,
        byline=byline,
        meta=meta,
        excerpt=short,
        why=reason,
        score=score,
        text_body="\n".join(text_lines),
        md_title=f"[{title}](<{markdown_url(url)}>)" if url else title,
        md_body="\n".join(md_lines),
    )


def _local_date(entry: Entry, zone: ZoneInfo) -> str:
    """When the entry was published, or else when it was first seen, in the reader's zone:
    a digest of what is new can hold papers published long ago, and says so."""
    if entry.published is not None:
        return f"published {entry.published.astimezone(zone).date().isoformat()}"
    return f"seen {entry.first_seen.astimezone(zone).date().isoformat()}"


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
