"""Feed text → one line of plain text: titles, summaries, names."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

import nh3

TITLE_FROM_SUMMARY = 80
# C0 and C1 control characters (terminal escapes, NUL, backspace…) never reach a digest;
# tabs and line breaks (\x09-\x0d) become spaces with the rest of the white space.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# a block or break tag separates words: "<p>One</p><p>Two" is "One Two", not "OneTwo"
_BLOCK_TAG = re.compile(
    r"<(?=(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section"
    r"|article))\b)",
    re.IGNORECASE,
)
_DROP_CONTENT = {"script", "style"}


def plain_text(value: str | None) -> str:
    """Feed HTML or text → one line of plain text; script and style content are dropped."""
    if not value:
        return ""
    text = value
    if "<" in text:  # text without a tag needs no HTML parser, only its entities decoded
        text = nh3.clean(_BLOCK_TAG.sub(" <", text), tags=set(), clean_content_tags=_DROP_CONTENT)
    return one_line(html.unescape(text))


def one_line(text: str) -> str:
    return " ".join(_CONTROLS.sub("", text).split())


def entry_title(title: str | None, summary: str | None, is_text: bool = False) -> str:
    """The feed's title, else the start of its text (some RSS items have no title); a text
    title ("History of the <blink> tag") is text, only an HTML one has its tags removed."""
    text = one_line(title or "") if is_text else plain_text(title)
    if text:
        return text
    text = plain_text(summary)
    if len(text) > TITLE_FROM_SUMMARY:
        text = text[:TITLE_FROM_SUMMARY].rsplit(" ", 1)[0] + "…"
    return text or "(untitled)"


def clean_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in (plain_text(name) for name in names) if n))


def author_names(authors: object) -> tuple[str, ...]:
    if not isinstance(authors, list):
        return ()
    return clean_names(as_str(a.get("name")) for a in authors if isinstance(a, dict))


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""
