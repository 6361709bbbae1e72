"""Hostile feed content is neutralised in every part a reader or a mail server sees.

Each payload of tests/data/hostile/payloads.json (built by scripts/make_hostile.py) arrives as
real feed content does: as the title, the HTML summary, the link or the author of an RSS item,
parsed by `parse_feed`, or as the name of the section a pick is grouped under (a feed's name).
The feed document is RSS (text XML-escaped, so XML's own rules drop some controls) or a JSON
Feed (any character can be written as a JSON escape: ESC, BEL and NUL in a link arrive intact).
The entry is rendered in every format and composed into an email, and each part is checked the
way its consumer reads it: the HTML with an HTML parser, the Markdown through the `markdown`
package (plain, and with the `extra` and `attr_list` extensions MkDocs sites use, where
`{: onclick=… }` would become an attribute) and markdown-it-py (CommonMark), the email by
re-parsing its bytes. No part may hold a control character (but line breaks) or a bidi
control (U+202A–202E, U+2066–2069, U+200E/F, U+061C). One test per position and document shape
checks every payload and reports all failures together.
"""

from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import markdown
import pytest
from conftest import DATA, ROOT, RunDigest
from factories import digest, entry
from markdown_it import MarkdownIt

from digest.models import Pick, RenderedDigest
from digest.parse import parse_feed
from digest.render import render
from digest.send import compose, message_id

CORPUS = DATA / "hostile" / "payloads.json"
GENERATOR = ROOT / "scripts" / "make_hostile.py"
PAYLOADS: list[dict[str, str]] = json.loads(CORPUS.read_text(encoding="utf-8"))

#: payloads this file adds to the corpus: attribute lists after a word (where attr_list takes
#: them: the end of a heading, after an inline element) and controls inside a valid link
LOCAL_PAYLOADS: list[dict[str, str]] = [
    {"kind": "markdown", "payload": p}
    for p in (
        "Title {: onclick=alert(1) }",
        "Title {#id .class onmouseover=alert(1)}",
        "Title {onclick=alert(1)}",
        "*Title*{: onclick=alert(1) }",
        "[Title](https://ok.example/){: onclick=alert(1) }",
        "Title\n{: onclick=alert(1) }",
    )
] + [
    {"kind": "control", "payload": f"https://ok.example/a{c}b"}
    for c in ("\x1b[31m", "\x07", "\x00", "\x9b", "\x7f", "\u202e", "\u2066", "\u200f")
]
HOSTILE = PAYLOADS + LOCAL_PAYLOADS
#: the kinds worth a second document shape: those whose characters XML cannot carry
JSON_KINDS = {"control"}

POSITIONS = ("title", "summary", "link", "author", "section")
BENIGN = {
    "title": "Benign title",
    "summary": "<p>Benign <b>summary</b> text.</p>",
    "link": "https://ok.example/item",
    "author": "Benign Author",
    "section": "",
}
#: the benign section name the section position's baseline is rendered with
BENIGN_SECTION = "Benign section"
SENDER = "Morning papers <digest@example.org>"
TO = "ada@example.org"
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
DIGEST_HEADING = "Morning papers — 2026-11-23"

# Elements that run code, load remote content, take input or restyle the page. None may come
# from a feed; <style>, <meta>, <link> and <title> are the template's own inside <head>.
ACTIVE = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "svg", "math", "img", "image", "picture", "source",
    "video", "audio", "portal", "base", "style", "link", "meta",
}  # fmt: skip
HEAD_ONLY = {"style", "meta", "link", "title"}
#: attributes that fetch or navigate; the template uses none of them
URL_ATTRIBUTES = {
    "src", "srcset", "action", "formaction", "data", "poster", "background", "xlink:href",
    "lowsrc", "dynsrc", "codebase", "classid", "ping", "longdesc", "usemap", "manifest",
}  # fmt: skip
CSS_DANGER = ("expression(", "url(", "javascript:", "behavior:", "-moz-binding", "@import")
#: the template's layout: feed content must not close or open any of these
LAYOUT = ("html", "head", "body", "table", "tr", "td")
#: what the Markdown template produces (h1 title, h2 picks, em byline, strong "Why:")
MARKDOWN_TAGS = {"h1", "h2", "p", "a", "em", "strong"}
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
SAFE_HREF = re.compile(r"(?:https?://[^\s/]|mailto:[^\s])", re.IGNORECASE)
MAX_LINE_OCTETS = 998


# --- the pipeline, as feed content travels through it ------------------------------------------


def json_feed(fields: dict[str, str]) -> bytes:
    """A JSON Feed with one item: what the RSS document says, with nothing escaped away."""
    item = {
        "id": "urn:hostile:1",
        "url": fields["link"],
        "title": fields["title"],
        "content_html": fields["summary"],
        "authors": [{"name": fields["author"]}],
        "date_published": "2026-11-23T05:00:00Z",
    }
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "Hostile feed"}
    return json.dumps({**document, "items": [item]}).encode()


def rss(fields: dict[str, str]) -> bytes:
    """An RSS 2.0 document with one item; text is XML-escaped, as a feed publisher would."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Hostile feed</title>
  <link>https://feed.example/</link>
  <description>tests/test_sanitise.py</description>
  <item>
    <title>{escape(fields["title"])}</title>
    <link>{escape(fields["link"])}</link>
    <guid isPermaLink="false">urn:hostile:1</guid>
    <description>{escape(fields["summary"])}</description>
    <dc:creator>{escape(fields["author"])}</dc:creator>
    <pubDate>Mon, 23 Nov 2026 05:00:00 +0000</pubDate>
  </item>
</channel>
</rss>""".encode()


@dataclass
class Outcome:
    """What one item became: its parsed fields, every rendered part and the email."""

    title: str
    summary: str
    link: str | None
    authors: tuple[str, ...]
    rendered: RenderedDigest
    email: EmailMessage


SHAPES: dict[str, Callable[[dict[str, str]], bytes]] = {"rss": rss, "json": json_feed}


def through_pipeline(fields: dict[str, str], shape: str = "rss") -> Outcome | None:
    """Parse, render and compose; None when parse_feed rejects the document outright.

    The email is composed as the pipeline composes it, except that its Subject also names the
    pick's title and author: today no feed text reaches a header, and this is where it would
    (a subject naming the top pick), so compose's own defences are what is tested."""
    parsed = parse_feed("Hostile feed", SHAPES[shape](fields))
    if not parsed.entries:
        return None
    item = parsed.entries[0]
    e = entry(
        item.title,
        item.summary,
        id="urn:hostile:1",
        feeds=("Hostile feed",),
        link=item.link,
        published=item.published,
        authors=item.authors,
        organisation=item.organisation,
    )
    d = digest([Pick(entry=e, score=2.0, matches=(), section=fields["section"])], reader_name="ada")
    rendered = render(d)
    email = compose(
        sender=SENDER,
        to_name="ada",
        to_address=TO,
        subject=" — ".join([rendered.subject, item.title, *item.authors[:1]]),
        text=rendered.text,
        html=rendered.html,
        msg_id=message_id(d.reader.key, d.local_date.isoformat(), SENDER),
        now=NOW,
    )
    return Outcome(item.title, item.summary, item.link, item.authors, rendered, email)


# --- reading the parts -------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    in_head: bool


class Page(HTMLParser):
    """An HTML document as a browser would tokenise it: elements, end tags, visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.ends: Counter[str] = Counter()
        self.text: list[str] = []
        #: (tag, text) of each h1–h6
        self.headings: list[tuple[str, str]] = []
        self._in_head = False
        self._raw = 0
        self._heading: tuple[str, list[str]] | None = None

    @classmethod
    def of(cls, markup: str) -> Page:
        page = cls()
        page.feed(markup)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, attrs, self._in_head))
        if tag == "head":
            self._in_head = True
        elif tag in ("script", "style"):
            self._raw += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = (tag, [])

    def handle_endtag(self, tag: str) -> None:
        self.ends[tag] += 1
        if tag == "head":
            self._in_head = False
        elif tag in ("script", "style"):
            self._raw = max(0, self._raw - 1)
        elif self._heading and tag == self._heading[0]:
            self.headings.append((tag, _squash("".join(self._heading[1]))))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._in_head or self._raw:
            return
        self.text.append(data)
        if self._heading:
            self._heading[1].append(data)

    @property
    def visible(self) -> str:
        return _squash("".join(self.text))

    def count(self, tag: str) -> int:
        return sum(1 for e in self.elements if e.tag == tag)


def _squash(text: str) -> str:
    """Whitespace collapsed, control and bidi characters dropped, to compare what a reader
    sees."""
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc")
    return " ".join(BIDI.sub("", kept).split())


_MARKDOWN = markdown.Markdown()
_MARKDOWN_EXTRA = markdown.Markdown(extensions=["extra", "attr_list"])
_COMMONMARK = MarkdownIt("commonmark")


def python_markdown(text: str) -> str:
    _MARKDOWN.reset()
    return _MARKDOWN.convert(text)


def python_markdown_extra(text: str) -> str:
    _MARKDOWN_EXTRA.reset()
    return _MARKDOWN_EXTRA.convert(text)


MARKDOWN_RENDERERS: dict[str, Callable[[str], str]] = {
    "markdown": python_markdown,
    "markdown+extra+attr_list": python_markdown_extra,
    "markdown-it": _COMMONMARK.render,
}


def _bad_href(value: str | None) -> bool:
    return not value or not SAFE_HREF.match(value)


def _controls(text: str) -> list[str]:
    return sorted(
        {f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cc" and c != "\n"}
    )


# --- the checks, each yielding what a reader or a mail server would be exposed to --------------


def html_problems(page: Page, baseline: Page) -> Iterator[str]:
    for el in page.elements:
        if el.tag in ACTIVE and not (el.in_head and el.tag in HEAD_ONLY):
            yield f"<{el.tag}> element"
        for name, value in el.attrs:
            if name.startswith("on"):
                yield f"{name}= attribute on <{el.tag}>"
            elif name == "href" and _bad_href(value):
                yield f"<{el.tag} href={value!r}>"
            elif name in URL_ATTRIBUTES:
                yield f"{name}= attribute on <{el.tag}>"
            elif name == "style" and value:
                css = re.sub(r"/\*.*?\*/|\\|\s", "", value.lower())
                yield from (f"style with {d!r} on <{el.tag}>" for d in CSS_DANGER if d in css)
    for tag in LAYOUT:
        if (page.count(tag), page.ends[tag]) != (baseline.count(tag), baseline.ends[tag]):
            yield f"<{tag}> opened/closed {page.count(tag)}/{page.ends[tag]} times, template: "
            f"{baseline.count(tag)}/{baseline.ends[tag]}"


def markdown_problems(page: Page, renderer: str, section: str | None = None) -> Iterator[str]:
    """`section`: the name the pick is grouped under, shown as an h2 above the pick's h3."""
    allowed = MARKDOWN_TAGS if section is None else MARKDOWN_TAGS | {"h3"}
    for el in page.elements:
        if el.tag not in allowed:
            yield f"{renderer}: <{el.tag}> element"
        for name, value in el.attrs:
            if name == "href" and _bad_href(value):
                yield f"{renderer}: <{el.tag} href={value!r}>"
            elif name != "href":
                yield f"{renderer}: {name}= attribute on <{el.tag}>"
    if page.count("a") > 1:
        yield f"{renderer}: {page.count('a')} links, the template makes at most 1"
    for tag in ("em", "strong"):
        if page.count(tag) > 1:
            yield f"{renderer}: {page.count(tag)} <{tag}>, the template makes 1"
    headings = page.headings
    if section is None:
        if [h for h, _ in headings] != ["h1", "h2"]:
            yield f"{renderer}: headings {headings!r}, the template makes one h1 and one h2"
        elif headings[0][1] != DIGEST_HEADING or not re.match(r"1\.( |$)", headings[1][1]):
            yield f"{renderer}: headings {headings!r}"
    elif [h for h, _ in headings] != ["h1", "h2", "h3"]:
        yield f"{renderer}: headings {headings!r}, the template makes an h1, h2 and h3"
    elif (
        headings[0][1] != DIGEST_HEADING
        or _unspaced(headings[1][1]) != _unspaced(section)
        or not re.match(r"1\.( |$)", headings[2][1])
    ):
        yield f"{renderer}: headings {headings!r}"


def _unspaced(text: str) -> str:
    """What a reader sees, spacing aside (control characters may become spaces)."""
    return "".join(_squash(text).split())


def text_problems(text: str, where: str) -> Iterator[str]:
    longest = max((len(line.encode()) for line in text.split("\n")), default=0)
    if longest > MAX_LINE_OCTETS:
        yield f"{where}: a line of {longest} octets"
    yield from control_problems(text, where)


def control_problems(text: str, where: str) -> Iterator[str]:
    """Control characters (but line breaks) and bidi controls, in any part or attribute."""
    if bad := _controls(text):
        yield f"{where}: control characters {', '.join(bad[:6])}"
    if bidi := sorted({f"U+{ord(c):04X}" for c in BIDI.findall(text)}):
        yield f"{where}: bidi controls {', '.join(bidi)}"


def email_problems(message: EmailMessage, expected: list[str], where: str) -> Iterator[str]:
    """What a mail server would see: raw line lengths and the headers as it parses them.

    The text/plain part is `rendered.text`, checked on its own; decoding it again here would
    double the test's run time for no extra finding."""
    raw = message.as_bytes()
    longest = max(len(line) for line in raw.split(b"\r\n") for line in line.split(b"\n"))
    if longest > MAX_LINE_OCTETS:
        yield f"{where}: a raw line of {longest} octets"
    parsed = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    names = [name.lower() for name in parsed.keys()]
    if names != expected:
        extra = sorted(set(names) - set(expected)) or names
        yield f"{where}: headers {extra}, expected {expected}"
    subject = str(parsed.get("Subject", ""))
    if "\r" in subject or "\n" in subject:
        yield f"{where}: CR/LF in Subject {subject!r}"
    yield from control_problems(subject, f"{where} Subject")
    yield from control_problems(str(parsed.get("To", "")), f"{where} To")
    to = parsed["To"]
    recipients = [a.addr_spec for a in to.addresses] if to else []
    if recipients != [TO]:
        yield f"{where}: To addresses {recipients}"
    if parsed.defects:
        yield f"{where}: message defects {parsed.defects}"


def template_problems(
    payload: str, outcome: Outcome, position: str, shown: dict[str, str]
) -> Iterator[str]:
    """`{{ 7*7 }}` and friends are shown as written, never evaluated; `shown` holds the
    visible text of each part."""
    if "7*7" in payload:
        for part, content in shown.items():
            if "49" in content:
                yield f"{part}: '49' appears, the template text was evaluated"
    value = {"title": outcome.title, "summary": outcome.summary, "section": payload}.get(position)
    if position == "author":
        value = outcome.authors[0] if outcome.authors else None
    if value and "{" in value:
        for part, content in shown.items():
            if _squash(value) not in content:
                yield f"{part}: {_squash(value)!r} is not shown as written"


# --- the corpus --------------------------------------------------------------------------------


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_hostile", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_large_distinct_and_up_to_date() -> None:
    payloads = [p["payload"] for p in PAYLOADS]
    assert len(payloads) >= 300
    assert len(set(payloads)) == len(payloads)
    kinds = Counter(p["kind"] for p in PAYLOADS)
    for kind in ("script", "handler", "url", "css", "svg-math", "embed", "pixel", "malformed"):
        assert kinds[kind] >= 10, kind
    for kind in ("template", "markdown", "header", "control", "long"):
        assert kinds[kind] >= 10, kind
    generator = _generator()
    current = generator.dump(generator.payloads())
    assert CORPUS.read_text(encoding="utf-8") == current, "run scripts/make_hostile.py"


def test_the_checks_find_what_they_look_for() -> None:
    """Guards against a vacuous pass: each check flags a part with the problem planted."""
    page = Page.of(
        "<html><head><style>p{}</style></head><body><table><tr><td>"
        '<p onclick="x"><a href=" javascript:alert(1)">x</a><img src="https://t/p.gif">'
        '<svg></svg><span style="background:u\\rl(https://t/p.gif)">x</span></td></tr>'
        "</table></table></body></html>"
    )
    found = " | ".join(
        html_problems(page, Page.of("<html><body><table><tr><td></td></tr></table>"))
    )
    for expected in (
        "onclick=",
        "href=' javascript",
        "<img>",
        "src=",
        "<svg>",
        "'url('",
        "<table>",
    ):
        assert expected in found, (expected, found)
    markdown_page = (
        "# Morning papers — 2026-11-23\n\n## 1. x\n\n# injected\n\n[x](javascript:y) <b>"
    )
    for renderer, to_html in MARKDOWN_RENDERERS.items():
        found = " | ".join(markdown_problems(Page.of(to_html(markdown_page)), renderer))
        assert "headings" in found and "<b>" in found, found
    assert "javascript:y" in " ".join(
        markdown_problems(Page.of(python_markdown(markdown_page)), "")
    )
    attributes = "# Morning papers — 2026-11-23\n\n## 1. x {: onclick=alert(1) }\n\ny{#id}"
    found = " | ".join(markdown_problems(Page.of(python_markdown_extra(attributes)), "extra"))
    assert "onclick= attribute on <h2>" in found, found
    assert len(list(text_problems("ok\x1b[31m\n" + "é" * 500, "text"))) == 2
    assert "bidi controls U+202E" in " ".join(text_problems("exe.\u202etxt", "text"))
    message = EmailMessage()
    message["To"] = TO
    message["Bcc"] = "victim@evil.example"
    found = " | ".join(email_problems(message, ["to"], "email"))
    assert "bcc" in found, found


@pytest.fixture(scope="module")
def baselines() -> dict[bool, tuple[Page, list[str]]]:
    """The benign item's HTML page and header names, without and with a section: what the
    template itself produces."""
    found = {}
    for sectioned in (False, True):  # (both document shapes give the same headers)
        outcome = through_pipeline({**BENIGN, "section": BENIGN_SECTION if sectioned else ""})
        assert outcome is not None
        names = [n.lower() for n in outcome.email.keys()]
        page = Page.of(outcome.rendered.html)
        assert list(html_problems(page, page)) == []
        found[sectioned] = page, names
    return found


def shown_section(name: str) -> str:
    """The heading a section name should show: the name, or "Other" when nothing is left."""
    return name if _squash(name) else "Other"


@pytest.mark.parametrize(
    ("position", "shape"),
    # a section is a feed's name, from the config: the same whatever the document
    [(p, s) for s in SHAPES for p in POSITIONS if s == "rss" or p != "section"],
)
def test_hostile_feed_content_is_neutralised(
    position: str, shape: str, baselines: dict[bool, tuple[Page, list[str]]]
) -> None:
    base_page, base_headers = baselines[position == "section"]
    failures: list[tuple[str, str]] = []
    rejected = 0
    for number, item in enumerate(HOSTILE, 1):
        if shape == "json" and item["kind"] not in JSON_KINDS:
            continue
        payload = item["payload"]
        label = f"#{number} [{item['kind']}] {payload[:70]!r}"
        try:
            outcome = through_pipeline({**BENIGN, position: payload}, shape)
        except Exception as e:  # a crash is a failure to report, not a reason to stop
            failures.append((label, f"raised {type(e).__name__}: {e}"))
            continue
        if outcome is None:
            rejected += 1
            continue
        page = Page.of(outcome.rendered.html)
        problems = list(html_problems(page, base_page))
        section = shown_section(payload) if position == "section" else None
        if section is not None:
            heading = [text for tag, text in page.headings if tag == "h2"]
            if [_unspaced(h) for h in heading] != [_unspaced(section)]:
                problems.append(f"html: section headings {heading!r}")
        shown = {"html": page.visible, "text": _squash(outcome.rendered.text)}
        problems += control_problems(outcome.rendered.html, "html")
        problems += control_problems(outcome.rendered.markdown, "markdown")
        for name, to_html in MARKDOWN_RENDERERS.items():
            markdown_page = Page.of(to_html(outcome.rendered.markdown))
            problems += markdown_problems(markdown_page, name, section)
            shown[name] = markdown_page.visible
        problems += text_problems(outcome.rendered.text, "text")
        problems += email_problems(outcome.email, base_headers, "email")
        problems += template_problems(payload, outcome, position, shown)
        failures += [(label, problem) for problem in dict.fromkeys(problems)]
    assert rejected < len(HOSTILE) // 10, f"parse_feed rejected {rejected} documents"
    if failures:
        pytest.fail(report(position, failures), pytrace=False)


def report(position: str, failures: list[tuple[str, str]]) -> str:
    """Failures grouped by problem, so one bug reads as one line with its payloads."""
    groups: dict[str, list[str]] = {}
    for label, problem in failures:
        key = re.sub(r"\d+ octets", "N octets", problem)
        key = re.sub(r"(U\+[0-9A-F]{4}(, )?)+", "…", key)
        key = re.sub(r"(href=|Subject |headers |To addresses |defects |headings ).*", r"\1…", key)
        key = re.sub(r"^(\w+: )?\d+ (links|<\w+>)", r"\1N \2", key)
        groups.setdefault(key, []).append(f"{label} → {problem}")
    lines = [f"{len(failures)} problems with payloads as the {position}:"]
    for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  {len(items):4} × {key}")
        lines += [f"         {line[:220]}" for line in items[:4]]
    return "\n".join(lines)


# --- a terminal: `digest explain` --------------------------------------------------------------

TERMINAL_TRICKS = (
    "\x1b]0;retitled\x07",  # set the terminal's title
    "\x1b[2J",  # clear the screen
    "\x1b]8;;https://evil.example/\x1b\\",  # an OSC 8 hyperlink
    "\x9b31m",  # a C1 CSI
    "\x00\x07\x08",
    "\u202e",
    "\u2066",
)


def test_explain_prints_no_control_or_bidi_character_from_a_feed(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    """A JSON Feed can carry any character in a title, link or author: none reaches the
    terminal `digest explain` writes to."""
    tricks = "".join(TERMINAL_TRICKS)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Hostile feed",
        "items": [
            {
                "id": f"urn:hostile:{i}",
                "url": f"https://ok.example/{i}{trick}end",
                "title": f"RLHF paper {i} {trick} end",
                "content_text": f"About RLHF {trick}.",
                "authors": [{"name": f"Mallory {trick}"}],
                "date_published": "2026-11-23T05:00:00Z",
            }
            for i, trick in enumerate([*TERMINAL_TRICKS, tricks])
        ],
    }
    (tmp_path / "feed.json").write_text(json.dumps(feed), encoding="utf-8")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\ntitle = "Morning papers"\nstate = "state.sqlite"\noutput = "out"\n'
        'timezone = "UTC"\n\n[[feeds]]\nname = "Hostile feed"\nurl = "feed.json"\n\n'
        '[profiles.rl]\nkeywords = { "RLHF" = 3 }\n\n'
        '[[subscribers]]\nname = "ada"\nemail = "ada@example.org"\nprofile = "rl"\n'
        'send_at = "07:00"\n',
        encoding="utf-8",
    )
    now = "2026-11-23T07:30:00Z"
    collected = run_digest("collect", "--config", str(config), "--now", now)
    assert collected.returncode == 0, collected.stderr
    result = run_digest("explain", "--config", str(config), "--subscriber", "ada", "--now", now)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("RLHF paper") == len(TERMINAL_TRICKS) + 1, result.stdout
    assert list(control_problems(result.stdout, "explain")) == []
    assert "https://ok.example/0]0;retitledend" in result.stdout
