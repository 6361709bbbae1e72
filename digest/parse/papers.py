"""Hugging Face Daily Papers: the JSON list of https://huggingface.co/api/daily_papers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FeedError
from ..models import ParsedEntry
from .arxiv import BARE_ARXIV_ID
from .dates import iso_date
from .document import Document, ParsedFeed
from .jsonfeed import load_json, not_this_kind
from .text import as_str, author_names, entry_title, plain_text

DAILY_PAPERS_LINK = "https://huggingface.co/papers/{id}"


def read(doc: Document) -> ParsedFeed:
    """PARSERS' entry for a Daily-Papers list; JSON of another shape is a FeedError."""
    data = load_json(doc)
    if not isinstance(data, list) or not all(isinstance(x, dict) and "paper" in x for x in data):
        raise not_this_kind(doc)
    return ParsedFeed([_from_daily_papers(doc.name, item) for item in data])


def _from_daily_papers(name: str, item: Mapping[str, Any]) -> ParsedEntry:
    paper = item.get("paper")
    if not isinstance(paper, dict) or not as_str(paper.get("id")):
        raise FeedError(name, "Daily-Papers item without paper.id")
    paper_id = as_str(paper["id"]).strip()
    organisation = item.get("organization") or paper.get("organization") or {}
    upvotes = paper.get("upvotes")
    bare = BARE_ARXIV_ID.match(paper_id)
    return ParsedEntry(
        title=entry_title(as_str(item.get("title") or paper.get("title")), ""),
        guid=DAILY_PAPERS_LINK.format(id=paper_id),
        link=DAILY_PAPERS_LINK.format(id=paper_id),
        summary=plain_text(as_str(paper.get("summary") or item.get("summary"))),
        published=iso_date(item.get("publishedAt") or paper.get("publishedAt")),
        authors=author_names(paper.get("authors")),
        organisation=(
            plain_text(as_str(organisation.get("fullname")))
            if isinstance(organisation, dict)
            else ""
        )
        or None,
        upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
        arxiv_id=bare.group(1) if bare else None,
        arxiv_version=int(bare.group(2)) if bare and bare.group(2) else None,
    )
