"""The term language of a profile: tokens, light stems, phrases, prefixes and acronyms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from ..models import FIELDS, Field

TOKEN = re.compile(r"\w+|[^\w\s]")
ACRONYM = re.compile(r"[A-Z]{2,6}")
# Each entry field becomes one string holding three streams, each with its own separator so
# that a key can only match in its own stream: stems (words, phrases), lowercase tokens
# (prefixes), tokens as written (acronyms). The separators are whitespace, never in a token.
STEMS, LOWER, CASE = " ", "\x1f", "\x1e"
FOLLOW = len(FIELDS)  # pseudo-field of followed names: field weights do not apply
OLDEST = datetime.min.replace(tzinfo=UTC)
# words the suffix rules would get wrong, and that papers use
_STEM_EXCEPTIONS = {
    "bias": "bias",
    "biases": "bias",
    "embed": "embed",
    "embeds": "embed",
    "news": "news",
    "physics": "physics",
    "series": "series",
    "species": "species",
    "hundred": "hundred",
    "shed": "shed",
    "lens": "lens",
}
_VOWEL = re.compile("[aeiouy]")


def stem(word: str) -> str:
    """The light stem of a lowercase token: plural, -ed, -ing and a final -e are removed.

    Light on purpose: "models", "modelling" and "modeled" meet at "model", "learned" and
    "learning" at "learn", but "generative" and "generation" stay apart."""
    if word in _STEM_EXCEPTIONS:
        return _STEM_EXCEPTIONS[word]
    if len(word) <= 2 or not word.isalpha():
        return word
    w = word
    if len(w) > 3 and w.endswith("s"):
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("sses"):
            w = w[:-2]
        elif not w.endswith(("ss", "us", "is")):
            w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("ing", "ed")) and not w.endswith("eed"):
        base = w[:-3] if w.endswith("ing") else w[:-2]
        if len(base) >= 2 and _VOWEL.search(base):
            w = base
            if len(w) >= 3 and w[-1] == w[-2] and w[-1] not in "aeiousz":
                w = w[:-1]  # running → run, modelling → model
    if len(w) >= 3 and w.endswith("e"):
        w = w[:-1]  # so that "make", "makes" and "making" meet
    return w


#: characters a prefix needs before its "*": a shorter one would match half the vocabulary
MIN_PREFIX = 3
_WORD = re.compile(r"\w")


def term_problem(term: str) -> str | None:
    """Why `term` is not a term of the language (a word, a phrase, an ACRONYM, or a prefix
    ending in one "*"), in a few words; None when it is. The config refuses a profile term
    with this reason, so `compile_term` only ever sees terms it accepts."""
    text = term.strip()
    if not text:
        return "must be a non-empty string"
    start = text.removesuffix("*")
    if "*" in start:
        return f"{text!r}: '*' may only end a term, as in 'transformer*'"
    if not _WORD.search(start):
        return f"{text!r} has no letters or digits to look for"
    if start != text and len(start.strip()) < MIN_PREFIX:
        return f"{text!r}: a prefix needs at least {MIN_PREFIX} characters before '*'"
    return None


@lru_cache(maxsize=65536)
def compile_term(term: str) -> tuple[str, ...]:
    """The keys of a profile term that `term_problem` accepts (stems for the trie, text for
    the automaton); the first is the term's identity.

    Two terms with the same first key are the same term ("model" and "models")."""
    text = term.strip()
    if ACRONYM.fullmatch(text):
        return (f"{CASE}{text}{CASE}", f"{CASE}{text}s{CASE}")
    if text.endswith("*"):
        tokens = [t.lower() for t in TOKEN.findall(text[:-1])]
        return (LOWER + LOWER.join(tokens),)
    stems = [stem(t.lower()) for t in TOKEN.findall(text)]
    return (STEMS + STEMS.join(stems) + STEMS,)


def follow_key(field: Field, name: str) -> str:
    """The identity of a followed name: case and spacing do not matter."""
    return f"\x00{field}:{' '.join(name.casefold().split())}"
