"""Text as people read it: feed text made inert (plain), cut and wrapped by display width
(East Asian wide characters count 2), escaped for Markdown, links kept only when http(s).
Pure functions of strings; render.py and the templates use them."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from functools import cache, lru_cache
from urllib.parse import quote, urlsplit

EXCERPT_CHARS = 300
#: bidi controls: embeddings and overrides (U+202A–202E), isolates (U+2066–2069), the marks
#: (U+200E/F, U+061C). Feed text could reorder what a reader sees around it ("exe.lave"):
#: they are removed from every output.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_WHITESPACE_CONTROLS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85"
#: C0 and C1 controls and DEL (ESC sequences recolour or retitle a terminal, BEL rings, NUL
#: cuts a C string short), and bidi controls: dropped; the ones that separate (tab, line
#: breaks) become spaces
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
_CLEAN = str.maketrans(
    {
        c: " " if c in _WHITESPACE_CONTROLS else None
        for c in [*map(chr, [*range(32), *range(127, 160)]), *BIDI_CONTROLS]
    }
)
TEXT_WIDTH = 78
#: octets; a word longer than this is broken to keep lines under 998 octets (RFC 5322)
LONGEST_WORD = 900
# Inline syntax is escaped everywhere; block syntax (headings, lists, quotes) only where a
# line starts, which is the only place it acts. Backslash escapes are CommonMark-safe.
# Characters Python-Markdown does not backslash-unescape become entities, which both it and
# CommonMark show as written.
# `{` and `}` are escaped too: `{: onclick=… }` and `{#id .class}` are attribute lists for
# Python-Markdown's attr_list (in `extra`, what MkDocs sites use).
_MD_INLINE = re.compile(r"([\\`*_\[\]{}])")
_MD_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "~": "&#126;"})
_MD_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+(?=[.)]))")
# Trailing #s end a heading (Python-Markdown even without a space before them): not shown.
_MD_CLOSING_HASHES = re.compile(r"#+$")

_CLEAN_LINK = str.maketrans(dict.fromkeys(_CLEAN))


def plain(text: str) -> str:
    """Feed text without control characters (C0, DEL, C1) or bidi controls: what every
    output shows of a title, name, link or summary, and what a terminal may print. Tab and
    line breaks become spaces, the rest are dropped."""
    return text.translate(_CLEAN) if _UNSAFE.search(text) else text


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

    `hang` indents the lines after the first (default: like the first). Widths are display
    columns: East Asian wide and fullwidth characters count 2, and a line may break between
    two of them (Chinese and Japanese put no spaces between words)."""
    if (
        text
        and len(indent) + len(text) <= width
        and text.isprintable()
        and text.strip() == text
        and (text.isascii() or not _has_wide(text) or display_width(text) + len(indent) <= width)
    ):
        return indent + text  # what textwrap gives a line that fits, without its cost
    text = plain(text)
    if not text.isascii() and _has_wide(text):
        return _wrap_wide(text, width, indent, indent if hang is None else hang)
    longest = max((len(word.encode()) for word in text.split()), default=0)
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_long_words=longest > LONGEST_WORD,
        break_on_hyphens=False,
    )


@cache
def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


@cache
def _columns(char: str) -> int:
    return 0 if unicodedata.combining(char) else 2 if _is_wide(char) else 1


def display_width(text: str) -> int:
    """Columns a terminal or a monospaced mail client gives the text: East Asian wide (W) and
    fullwidth (F) characters take 2, combining marks 0, the rest 1."""
    if text.isascii():
        return len(text)
    return sum(map(_columns, text))


def _has_wide(text: str) -> bool:
    # (no wide character comes before U+1100)
    return any(map(_is_wide, _FROM_U1100.findall(text)))


_FROM_U1100 = re.compile("[\u1100-\U0010ffff]")


#: a wrapping unit: a run of spaces, one wide character (a line may break after any), or a
#: run of other characters (a word)
_WIDE_CHUNK = re.compile(r"\s+|[^\s]")
#: what may not start a line (closing brackets and punctuation, Japanese small kana): JIS
#: X 4051's rule, kept short
_NO_LINE_START = frozenset(
    "、。，．・：；？！）」』】〕〉》｝］〙〗’”%‰℃ーぁぃぅぇぉっゃゅょァィゥェォッャュョ"
)


def _chunks(text: str) -> list[str]:
    """The text as spaces, single wide characters and words, a closing mark kept with the
    character before it."""
    chunks: list[str] = []
    word: list[str] = []
    for m in _WIDE_CHUNK.finditer(text):
        char = m[0]
        if char[0].isspace():
            if word:
                chunks.append("".join(word))
                word = []
            chunks.append(" ")
        elif _is_wide(char) or (word and _is_wide(word[-1])):
            # a break is allowed before and after a wide character, but not before a mark
            # that may not start a line
            if word and char not in _NO_LINE_START:
                chunks.append("".join(word))
                word = []
            word.append(char)
        else:
            word.append(char)
    if word:
        chunks.append("".join(word))
    return chunks


def _wrap_wide(text: str, width: int, indent: str, hang: str) -> str:
    """Greedy filling by display width, for text holding wide characters. Spaces between
    chunks are kept (one), dropped where a line breaks; a word wider than a line stands
    alone on its line, unless so long that its line would pass SMTP's 998-octet limit."""
    lines: list[str] = []
    line, used, space = indent, display_width(indent), False
    fresh = True  # nothing but the indent on this line yet
    for chunk in _chunks(text):
        if chunk == " ":
            space = not fresh
            continue
        pieces = [chunk]
        if len(chunk.encode()) > LONGEST_WORD:
            step = max(1, width - len(hang))
            pieces = [chunk[i : i + step] for i in range(0, len(chunk), step)]
        for piece in pieces:
            needed = display_width(piece) + (1 if space else 0)
            if not fresh and used + needed > width:
                lines.append(line)
                line, used, space, fresh = hang, display_width(hang), False, True
                needed = display_width(piece)
            if space:
                line += " "
            line += piece
            used += needed
            space, fresh = False, False
    lines.append(line)
    return "\n".join(lines)


def numbered(title: str, number: int) -> str:
    """A title for the plain-text part as "12. Title…", wrapped with later lines under it."""
    digits = len(str(number))
    wrapped = _numbered(title, digits)
    return f"{number}. {wrapped[digits + 2 :]}" if wrapped else f"{number}."


@lru_cache(maxsize=8192)
def _numbered(title: str, digits: int) -> str:
    # wrapped once per title and width of number, behind a placeholder of the same width
    return wrap(title, indent="#" * (digits + 2), hang="   ")


@lru_cache(maxsize=8192)
def markdown_escape(text: str) -> str:
    """Feed text as literal Markdown: no links, emphasis, headings or HTML can be injected."""
    return _MD_LINE_START.sub(_escape_line_start, markdown_heading(text))


@lru_cache(maxsize=1024)
def markdown_heading(text: str) -> str:
    """Feed text as the literal text of a Markdown heading (after "## ")."""
    escaped = _MD_INLINE.sub(r"\\\1", " ".join(plain(text).split())).translate(_MD_ENTITIES)
    return _MD_CLOSING_HASHES.sub(lambda m: "\\#" * len(m[0]), escaped)


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
    if _UNSAFE.search(url):
        url = url.translate(_CLEAN_LINK)  # as a browser's URL parser drops tabs and newlines
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1"
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url
    return None
