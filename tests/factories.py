"""Small builders for the records the pure stages take, with defaults a test can ignore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from digest.models import DEFAULT_FIELD_WEIGHTS, Digest, Entry, Pick, Profile, Reader

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def entry(
    title: str,
    summary: str = "",
    *,
    id: str | None = None,
    feeds: Sequence[str] = ("papers",),
    link: str | None = None,
    published: datetime | None = NOW,
    authors: Sequence[str] = (),
    organisation: str | None = None,
    upvotes: int | None = None,
    categories: Sequence[str] = (),
) -> Entry:
    """An entry; its id defaults to one derived from the title, so titles should differ."""
    return Entry(
        id=id or f"urn:test:{title}",
        title=title,
        link=link,
        summary=summary,
        published=published,
        feeds=tuple(feeds),
        first_seen=NOW,
        authors=tuple(authors),
        organisation=organisation,
        upvotes=upvotes,
        categories=tuple(categories),
    )


def profile(
    keywords: Mapping[str, float],
    *,
    exclude: Sequence[str] = (),
    max_entries: int = 20,
    min_score: float = 0.0,
    name: str = "test",
    **more: Any,
) -> Profile:
    """A profile; `more`: any other Profile field (require, fields as a dict, authors …)."""
    if isinstance(more.get("fields"), Mapping):
        more["fields"] = tuple({**dict(DEFAULT_FIELD_WEIGHTS), **more["fields"]}.items())
    if "require" in more:
        more["require"] = tuple(more["require"])
    for follows in ("authors", "organisations"):
        if isinstance(more.get(follows), Mapping):
            more[follows] = tuple(more[follows].items())
    return Profile(
        name=name,
        keywords=tuple(keywords.items()),
        exclude=tuple(exclude),
        max_entries=max_entries,
        min_score=min_score,
        **more,
    )


def digest(
    picks: Sequence[Pick] = (),
    *,
    title: str = "Morning papers",
    reader_name: str = "ada",
    feed_problems: Sequence[str] = (),
    considered: int | None = None,
) -> Digest:
    """A digest for 2026-11-23 in Europe/Berlin, built for `reader_name`."""
    reader = Reader(
        key=f"subscriber:{reader_name}",
        name=reader_name,
        profile=profile({"RL": 1}, name="rl"),
        timezone="Europe/Berlin",
    )
    return Digest(
        reader=reader,
        title=title,
        local_date=date(2026, 11, 23),
        generated_at=NOW,
        picks=tuple(picks),
        considered=len(picks) if considered is None else considered,
        feed_problems=tuple(feed_problems),
    )
