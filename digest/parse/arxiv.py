"""arXiv: ids and versions in URLs and guids, and what an arXiv listing's entries need."""

from __future__ import annotations

import re
from dataclasses import replace

from ..models import ParsedEntry

ARXIV_NS = "http://arxiv.org/schemas/atom"
# New-style (2401.00001, 0704.0001) and old-style (hep-th/9901001, math.AG/0601001) ids, as
# they appear after arxiv.org/abs|pdf|html/, huggingface.co/papers/, oai:arXiv.org: or arXiv:
_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Za-z]{2})?/\d{7})(?:v(\d+))?"
_ARXIV_REF = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|oai:arxiv\.org:|^arxiv:)"
    + _ARXIV_ID
    + r"(?![\w-]|\.\d)",
    re.IGNORECASE,
)
BARE_ARXIV_ID = re.compile(_ARXIV_ID + r"$")
# rss.arxiv.org puts "arXiv:2401.00001v1 Announce Type: new \nAbstract: " before the abstract
_ARXIV_PREAMBLE = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*([\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)


def arxiv_ref(text: str | None) -> tuple[str, int | None] | None:
    """The arXiv id (without version) and version a URL, guid or "arXiv:…" string names."""
    if not text:
        return None
    m = _ARXIV_REF.search(text.strip())
    if m is None:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def finish(entry: ParsedEntry, arxiv: bool) -> ParsedEntry:
    """Fill the arXiv fields: any entry whose guid or link names an arXiv paper gets its id
    and version; an arXiv listing's entry also loses the listing's preamble, and its one
    comma-separated author string becomes a list."""
    ref = arxiv_ref(entry.guid) or arxiv_ref(entry.link)
    if ref is None and not arxiv:
        return entry
    announce = entry.announce_type
    summary = entry.summary
    authors = entry.authors
    if arxiv:
        m = _ARXIV_PREAMBLE.match(summary)
        if m is not None:
            announce = announce or m.group(1)
            ref = arxiv_ref(summary[: m.end()].split()[0]) or ref
            summary = summary[m.end() :]
        if len(authors) == 1 and ("," in authors[0] or " and " in authors[0]):
            parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", authors[0])
            authors = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if ref is None:
        return replace(entry, summary=summary, authors=authors, announce_type=announce)
    version = ref[1]
    if version is None and entry.link:
        version = (arxiv_ref(entry.link) or ("", None))[1]
    return replace(
        entry,
        summary=summary,
        authors=authors,
        arxiv_id=ref[0],
        arxiv_version=version or entry.arxiv_version,
        announce_type=announce.lower() if announce else None,
    )
