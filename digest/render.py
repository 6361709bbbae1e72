"""Digest → HTML email, plain text and Markdown, through the Jinja templates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property, lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import css_inline
import jinja2
import markdown
from jinja2.runtime import Context, Macro
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .errors import TemplateError
from .models import Digest, Entry, Pick, RenderedDigest
from .rank import why
from .typeset import (
    _UNSAFE,
    _numbered,
    excerpt,
    http_url,
    markdown_escape,
    markdown_heading,
    markdown_url,
    numbered,
    plain,
    wrap,
)

#: the heading of picks without a section, in a digest where others have one
UNSECTIONED = "Other"


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
        return f"<!--{token}-->" if m[0].startswith("{%") or _own_line(m) else token

    inlined = _INLINER.inline(_JINJA_SYNTAX.sub(protect, source))
    for i, original in enumerate(found):
        token = f"JINJA{i}X"
        # (a comment in <title> or <textarea> is text, written back escaped)
        for form in (f"<!--{token}-->", f"&lt;!--{token}--&gt;", token):
            if form in inlined:
                inlined = inlined.replace(form, original, 1)
                break
        else:
            raise TemplateError(f"{filename}: cannot inline CSS around {original!r}")
    return inlined


def _own_line(m: re.Match[str]) -> bool:
    """An expression that is a line of its own prints whole elements (a pick's row); as
    text between table rows the HTML parser would move it out of the table, so it is
    protected as a comment, like a statement."""
    before = m.string[: m.start()].rsplit("\n", 1)[-1]
    after = m.string[m.end() :].split("\n", 1)[0]
    return not before.strip() and (not after.strip() or after.lstrip().startswith("{%"))


class _Environment(jinja2.Environment):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The globals as one dict, not Jinja's ChainMap over the environment's: ours are
        all set before a template loads, and copying a ChainMap into each render's context
        cost a third of a short template's render."""
        return {**self.globals, **(d or {})}


class _SandboxedEnvironment(SandboxedEnvironment):
    make_globals = _Environment.make_globals


@lru_cache(maxsize=4)
def environment(directory: Path | None = None) -> jinja2.Environment:
    """The built-in templates, or a user's directory (falling back to the built-in ones for
    templates it lacks) rendered in Jinja's sandbox: a template is code."""
    loader: jinja2.BaseLoader = InliningLoader(template_dir())
    env_class: type[jinja2.Environment] = _Environment
    if directory is not None:
        loader = jinja2.ChoiceLoader([InliningLoader(directory), loader])
        env_class = _SandboxedEnvironment
    env = env_class(
        loader=loader,
        # the built-in templates are part of the installed package; a user's are re-read
        auto_reload=directory is not None,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["pick_rows"] = pick_rows
    env.filters.update(
        why=why,
        excerpt=excerpt,
        wrap=wrap,
        numbered=numbered,
        md=markdown_escape,
        md_heading=markdown_heading,
        md_url=markdown_url,
        http_url=http_url,
    )
    return env


def subject(digest: Digest) -> str:
    return f"{digest.title} — {digest.local_date.isoformat()}: {len(digest.picks)} new"


#: the formats a digest renders to
FORMATS = frozenset({"html", "text", "markdown"})


def render(
    digest: Digest,
    templates: Path | None = None,
    unsubscribe_url: str | None = None,
    *,
    formats: frozenset[str] = FORMATS,
) -> RenderedDigest:
    """Render the formats of one digest (every one by default; a format not asked for is
    ""), with the user's templates when given.

    The HTML part shows fewer picks, and says how many more there were, when all of them
    would make it larger than HTML_BUDGET as sent: Gmail clips a larger one, and the footer
    with the unsubscribe link would be what is lost. The text and Markdown parts hold all."""
    env = environment(templates)
    digest = _shown(digest)
    title = subject(digest)
    context = _context(digest, title, http_url(unsubscribe_url), len(digest.picks))
    html = ""
    if "html" in formats:
        html = _render(env, "digest.html.j2", context)
        if digest.picks and not _fits(html):
            html = _fitting_html(env, digest, title, http_url(unsubscribe_url))
    return RenderedDigest(
        subject=title,
        html=html,
        text=_render(env, "digest.txt.j2", context) if "text" in formats else "",
        markdown=_render(env, "digest.md.j2", context) if "markdown" in formats else "",
    )


#: octets of the HTML part as sent (quoted-printable), at most: Gmail clips messages whose
#: HTML passes 102 KB, and headers and the text part come on top
HTML_BUDGET = 90_000
#: a quoted-printable line holds at most 76 characters: a soft break ("=" CRLF) after each
_QP_LINE = 73


def html_size(html: str) -> int:
    """The size of the HTML as compose() sends it, quoted-printable: each non-ASCII octet
    and each "=" takes three octets, a soft line break three more every ~73. Counted, not
    encoded; never below what the encoding gives (tests/test_render.py checks)."""
    octets = len(html.encode())
    escaped = octets - len(html.encode("ascii", "ignore")) + html.count("=")
    size = octets + 2 * escaped
    return size + 3 * size // _QP_LINE


def _fits(html: str) -> bool:
    """html_size(html) <= HTML_BUDGET, mostly without its second pass: each non-ASCII
    character of k octets adds k - 1 to the UTF-8 length, so they hold at most twice that."""
    octets = len(html.encode())
    bound = octets + 2 * (2 * (octets - len(html)) + html.count("="))
    return bound + 3 * bound // _QP_LINE <= HTML_BUDGET or html_size(html) <= HTML_BUDGET


def _context(digest: Digest, title: str, unsubscribe: str | None, shown: int) -> dict[str, object]:
    """What the templates see, with the first `shown` picks (the rest: `left_out`)."""
    layout = _layout(digest.picks[:shown], digest.reader.timezone)
    return {
        "digest": digest,
        "subject": title,
        "unsubscribe_url": unsubscribe,
        "picks": layout.shown,
        "sections": layout.sections,
        "sectioned": layout.sectioned,
        #: how many of the digest's picks this part leaves out (only HTML_BUDGET does)
        "left_out": len(digest.picks) - shown,
    }


def _fitting_html(
    env: jinja2.Environment, digest: Digest, title: str, unsubscribe: str | None
) -> str:
    """The HTML with as many of the top picks as fit HTML_BUDGET (at least none): found by
    bisection, as a pick's size varies."""
    fits, too_many = 0, len(digest.picks)
    best: str | None = None
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        html = _render(env, "digest.html.j2", _context(digest, title, unsubscribe, middle))
        if _fits(html):
            fits, best = middle, html
        else:
            too_many = middle
    if best is None:
        best = _render(env, "digest.html.j2", _context(digest, title, unsubscribe, fits))
    return best


def _shown(digest: Digest) -> Digest:
    """The digest with its own text (title, names, feed problems) as `plain` shows it."""
    reader, profile = digest.reader, digest.reader.profile
    texts = (digest.title, reader.name, profile.name, *digest.feed_problems)
    if not any(map(_UNSAFE.search, texts)):
        return digest
    return replace(
        digest,
        title=plain(digest.title),
        reader=replace(
            reader, name=plain(reader.name), profile=replace(profile, name=plain(profile.name))
        ),
        feed_problems=tuple(map(plain, digest.feed_problems)),
    )


class Section(NamedTuple):
    """Picks shown under one heading, each with its number in the digest."""

    #: the heading; "" when the digest has no sections
    name: str
    items: tuple[tuple[int, PickView], ...]


#: which template and macro made a section's rows
_RowMaker = tuple[str | None, str]


class _Items(tuple[tuple[int, "PickView"], ...]):
    """A section's (number, pick) pairs, with the rows `pick_rows` made of them. A tuple:
    a layout is shared by many digests, so no template may change it (`_rows` is hidden
    from sandboxed templates, as every "_" name is)."""

    _rows: dict[_RowMaker, str]

    def __new__(cls, items: Iterable[tuple[int, PickView]]) -> _Items:
        self = super().__new__(cls, items)
        self._rows = {}
        return self


def group(picks: Sequence[PickView]) -> tuple[Section, ...]:
    """Picks under a heading per section, sections in order of first appearance, picks in
    rank order within each and numbered through. One unnamed section when no pick has one;
    when some do, picks without one go under UNSECTIONED."""
    if not any(item.section for item in picks):
        return (Section("", _Items(enumerate(picks, 1))),) if picks else ()
    by_name: dict[str, list[PickView]] = {}
    for item in picks:
        name = " ".join(plain(item.section).split()) or UNSECTIONED
        by_name.setdefault(name, []).append(item)
    sections, number = [], 0
    for name, items in by_name.items():
        sections.append(Section(name, _Items(enumerate(items, number + 1))))
        number += len(items)
    return tuple(sections)


@jinja2.pass_context
def pick_rows(context: Context, row: Macro, items: Sequence[tuple[int, PickView]]) -> str:
    """The template's `row` macro for each (number, pick) of a section, joined; the loop
    runs here, not in the template.

    With the built-in templates, a section's rows are made once for every digest that
    shares its layout, rather than escaped and wrapped again in each: their row macros
    read nothing but their arguments (tests/test_render.py checks). A user's macro may read
    anything (the subscriber's name), so in the sandbox rows are made for each digest."""
    if not isinstance(row, Macro):
        raise jinja2.TemplateRuntimeError(
            "pick_rows(row, items): row must be a macro taking (number, pick)"
        )
    made: dict[_RowMaker, str] | None = (
        None if context.environment.sandboxed else getattr(items, "_rows", None)
    )
    maker = (context.name, row.name)
    if made is not None and maker in made:
        return made[maker]
    joined = "".join([row(number, item) for number, item in items])
    rows = Markup(joined) if context.eval_ctx.autoescape else joined
    if made is not None:
        made[maker] = rows
    return rows


def _render(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as e:
        where = f"{e.filename}:{e.lineno}" if isinstance(e, jinja2.TemplateSyntaxError) else name
        raise TemplateError(f"template {where}: {e.message or type(e).__name__}") from e


@dataclass(frozen=True, slots=True)
class _Layout:
    """A digest's picks as the templates show them, shared by every digest with the same
    picks showing the same dates (subscribers of one profile, in zones where the dates
    read the same): its sections' rows are made once for them all."""

    picks: tuple[Pick, ...]
    sections: tuple[Section, ...]
    #: the pick views in the order shown
    shown: tuple[PickView, ...]
    sectioned: bool


#: layouts by zone and picks (entry ids and scores: cheap to hash, then checked whole)
_LAYOUTS: dict[tuple[str, tuple[str, ...], tuple[float, ...]], _Layout] = {}
#: the same layouts by the ids of the views they show, which they keep alive: zones where
#: every pick's date reads the same share one
_LAYOUTS_SHOWING: dict[tuple[int, ...], _Layout] = {}
#: a layout of 30 picks, its views and its rows in three formats hold ~220 KB
LAYOUTS_MAX = 128
_ENTRY_ID = attrgetter("entry.id")
_SCORE = attrgetter("score")


def _layout(picks: tuple[Pick, ...], zone: str) -> _Layout:
    key = (zone, tuple(map(_ENTRY_ID, picks)), tuple(map(_SCORE, picks)))
    found = _LAYOUTS.get(key)
    if found is not None and found.picks == picks:
        return found
    views = [_pick_view(pick, zone) for pick in picks]
    showing = tuple(map(id, views))
    layout = _LAYOUTS_SHOWING.get(showing)
    if layout is None:
        sections = group(views)
        layout = _Layout(
            picks=picks,
            sections=sections,
            shown=tuple(item for section in sections for _, item in section.items),
            sectioned=bool(sections[0].name) if sections else False,
        )
        _LAYOUTS_SHOWING[showing] = layout
    if len(_LAYOUTS) >= LAYOUTS_MAX:  # never fewer than _LAYOUTS_SHOWING: both go at once
        _LAYOUTS.clear()
        _LAYOUTS_SHOWING.clear()
    _LAYOUTS[key] = layout
    return layout


def archive_page(title: str, markdown_text: str, up: str | None = None) -> str:
    """One page of the static archive: a Markdown digest (whose feed text is already
    escaped) or index rendered to HTML by the `markdown` package."""
    body = markdown.markdown(markdown_text, output_format="html")
    page = environment().get_template("archive.html.j2")
    return page.render(title=title, body=Markup(body), up=up)


def render_index(title: str, pages: list[tuple[date, str, int]]) -> str:
    """The Markdown index of dated pages: (local date, relative link, number of picks)."""
    return environment().get_template("index.md.j2").render(title=title, pages=pages)


def clear_caches() -> None:
    """Forget the text computed for earlier digests: at the end of a run, so that a daemon
    holds none of it until the next one (and benchmarks start each round empty)."""
    for cached in (
        excerpt,
        wrap,
        _numbered,
        markdown_escape,
        markdown_heading,
        _entry_view,
        _dated_entry_view,
    ):
        cached.cache_clear()
    _PICK_VIEWS.clear()
    _LAYOUTS.clear()
    _LAYOUTS_SHOWING.clear()


@dataclass(frozen=True, slots=True)
class EntryView:
    """What a digest shows of an entry, whoever it was picked for: computed once per entry
    and date shown, and shared by every digest that holds the entry."""

    entry: Entry
    #: the entry's title without control characters (see `plain`)
    title: str
    url: str | None
    #: "published 2026-11-20" or "seen 2026-11-23", in the reader's zone
    date: str
    #: authors and organisation
    byline: str
    #: feeds · date · byline · upvotes
    meta: str
    excerpt: str
    #: the text part's lines after the title, up to the why line, wrapped and indented
    text_lines: str
    #: the Markdown link (or text) for the title, and the lines after it up to the why line
    md_title: str
    md_lines: str


@lru_cache(maxsize=8192)
def _entry_view(entry: Entry, zone: str) -> EntryView:
    """The entry as shown in a zone: the same view in every zone where its date reads the
    same, so readers there share what is made from it."""
    return _dated_entry_view(entry, _local_date(entry, ZoneInfo(zone)))


@lru_cache(maxsize=8192)
def _dated_entry_view(entry: Entry, date_shown: str) -> EntryView:
    url = http_url(entry.link)
    byline = plain(_byline(entry))
    parts = [plain(", ".join(entry.feeds)), date_shown, byline]
    if entry.upvotes is not None:
        parts.append(f"▲ {entry.upvotes}")
    meta = " · ".join(p for p in parts if p)
    short = excerpt(plain(entry.summary)) if entry.summary else ""
    text_lines = [wrap(url, indent="   ")] if url else []
    text_lines.append(wrap(meta, indent="   "))
    if short:
        text_lines.append(wrap(short, indent="   "))
    title = markdown_escape(entry.title)
    md_lines = [f"*{markdown_escape(meta)}*", ""]
    if short:
        md_lines += [markdown_escape(short), ""]
    return EntryView(
        entry=entry,
        title=plain(entry.title),
        url=url,
        date=date_shown,
        byline=byline,
        meta=meta,
        excerpt=short,
        text_lines="\n".join(text_lines),
        md_title=f"[{title}](<{markdown_url(url)}>)" if url else title,
        md_lines="\n".join(md_lines),
    )


@dataclass(frozen=True)
class PickView:
    """A pick as the templates show it: its entry's shared view, plus what is the pick's
    own (why line, score, section). The number is the template's (its position)."""

    pick: Pick
    entry: Entry
    title: str
    url: str | None
    date: str
    byline: str
    meta: str
    excerpt: str
    why: str
    score: str
    section: str
    #: the Markdown link (or text) for the title
    md_title: str
    #: the entry's own lines after the title, as the text and the Markdown parts show them
    #: (shared by every pick of the entry); the pick's lines are added when asked for
    text_lines: str
    md_lines: str

    # made on first use and kept (the view is frozen, not slotted, for these): an email
    # never asks for the Markdown, a wiki page never for the text
    @cached_property
    def text_body(self) -> str:
        """The text part's lines after the title, wrapped and indented."""
        why_line = wrap(f"Why: {self.why} — score {self.score}", indent="   ")
        return f"{self.text_lines}\n{why_line}"

    @cached_property
    def md_body(self) -> str:
        """The Markdown part's lines after the title."""
        return f"{self.md_lines}\n**Why:** {markdown_escape(self.why)} — score {self.score}"


#: views of recent picks by (entry id, score, date shown), a key cheaper to hash than the pick
_PICK_VIEWS: dict[tuple[str, float, str], PickView] = {}
PICK_VIEWS_MAX = 8192


def _pick_view(pick: Pick, zone: str) -> PickView:
    """Subscribers who share a profile share its picks: each is made once per date shown."""
    shared = _entry_view(pick.entry, zone)
    key = (pick.entry.id, pick.score, shared.date)
    view = _PICK_VIEWS.get(key)
    if view is not None and (view.pick is pick or view.pick == pick):
        return view
    if len(_PICK_VIEWS) >= PICK_VIEWS_MAX:
        _PICK_VIEWS.clear()
    view = _PICK_VIEWS[key] = _new_pick_view(pick, shared)
    return view


def _new_pick_view(pick: Pick, shared: EntryView) -> PickView:
    reason, score = plain(why(pick)), f"{round(pick.score, 1):g}"
    return PickView(
        pick=pick,
        entry=pick.entry,
        title=shared.title,
        url=shared.url,
        date=shared.date,
        byline=shared.byline,
        meta=shared.meta,
        excerpt=shared.excerpt,
        why=reason,
        score=score,
        section=pick.section,
        md_title=shared.md_title,
        text_lines=shared.text_lines,
        md_lines=shared.md_lines,
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
