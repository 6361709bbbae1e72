"""Records as row values and back: timestamps, JSON lists, identity-key hashes.

Reading back is strict. A value edited by hand into something the record cannot hold (a
date that is not one, a list that is not JSON, a NULL where a value belongs, a number where
text belongs) raises `BadValue` naming the column, and the store decides what the row
costs: one entry left out, one feed fetched as if new, one reader's delivery reported.
Nothing here imports a database driver.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, cast, get_args

from ..models import Delivery, DeliveryStatus, Entry, FeedStatus

#: the statuses a deliveries row may hold
STATUSES: frozenset[str] = frozenset(get_args(DeliveryStatus))
#: statuses whose row must keep the message it (re)sends
_WITH_MESSAGE = frozenset({"pending", "failed"})

Row = Mapping[str, Any]
#: how every instant is stored (see `ts`)
_UTC = "+00:00"


class BadValue(ValueError):
    """A column holds a value its record cannot take."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column


def key_hash(key: str) -> bytes:
    """An identity key as stored: 16 bytes, whatever its length."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def ts(when: datetime) -> str:
    """A timezone-aware instant as stored: ISO 8601 in UTC, to the microsecond, so that
    text order is time order."""
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the state file")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def instant(row: Row, column: str) -> datetime:
    value = optional_instant(row, column)
    if value is None:
        raise BadValue(column, "missing")
    return value


def optional_instant(row: Row, column: str) -> datetime | None:
    value = row[column]
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadValue(column, f"{value!r} is not a date and time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadValue(column, f"{value[:40]!r} is not a date and time") from None
    # the years at the ends would overflow the first day added to or taken from them
    if when.tzinfo is None or not 1 < when.year < 9999:
        raise BadValue(column, f"{value[:40]!r} is not a date and time with a UTC offset")
    return when.astimezone(UTC)


def text(row: Row, column: str) -> str:
    value = row[column]
    if not isinstance(value, str):
        raise BadValue(column, "missing" if value is None else f"{value!r} is not text")
    return value


def optional_text(row: Row, column: str) -> str | None:
    return None if row[column] is None else text(row, column)


def optional_int(row: Row, column: str) -> int | None:
    value = row[column]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadValue(column, f"{value!r} is not a whole number")
    return value


def count(row: Row, column: str) -> int:
    value = optional_int(row, column)
    if value is None or value < 0:
        raise BadValue(column, f"{value!r} is not a count")
    return value


def strings(row: Row, column: str) -> tuple[str, ...]:
    """A JSON list of strings, as lists of authors, feeds and entry ids are stored."""
    value = row[column]
    if not isinstance(value, str):
        raise BadValue(column, "missing" if value is None else "not a JSON list")
    return parse_strings(column, value)


def parse_strings(column: str, value: str) -> tuple[str, ...]:
    if value == "[]":
        return ()
    try:
        items = json.loads(value)
    except (ValueError, RecursionError):
        raise BadValue(column, "not a JSON list") from None
    if type(items) is not list or any(type(i) is not str for i in items):
        raise BadValue(column, "not a JSON list of strings")
    return tuple(items)


def dump_strings(items: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(items))


def entry(row: Row) -> Entry:
    """An entries row, with `feeds` (the JSON list of its feeds' names) beside it."""
    # Every entry of a window is read for every run: the well-formed row, the usual case,
    # in a few checks; anything else goes through the column-by-column ones.
    id_, title, link, summary = row["id"], row["title"], row["link"], row["summary"]
    published, first_seen = row["published"], row["first_seen"]
    organisation, upvotes = row["organisation"], row["upvotes"]
    arxiv_id, arxiv_version, announce = row["arxiv_id"], row["arxiv_version"], row["announce_type"]
    if (
        type(id_) is str
        and type(title) is str
        and type(summary) is str
        and type(first_seen) is str
        and first_seen.endswith(_UTC)
        and (published is None or (type(published) is str and published.endswith(_UTC)))
        and (link is None or type(link) is str)
        and (organisation is None or type(organisation) is str)
        and (upvotes is None or type(upvotes) is int)
        and (arxiv_id is None or type(arxiv_id) is str)
        and (arxiv_version is None or type(arxiv_version) is int)
        and (announce is None or type(announce) is str)
    ):
        try:
            seen = datetime.fromisoformat(first_seen)
            when = datetime.fromisoformat(published) if published else None
        except ValueError:
            pass
        else:
            if 1 < seen.year < 9999 and (when is None or 1 < when.year < 9999):
                return Entry(
                    id=id_, title=title, link=link, summary=summary, published=when,
                    feeds=strings(row, "feeds"), first_seen=seen,
                    authors=strings(row, "authors"), organisation=organisation,
                    upvotes=upvotes, categories=strings(row, "categories"), arxiv_id=arxiv_id,
                    arxiv_version=arxiv_version, announce_type=announce,
                )  # fmt: skip
    return Entry(
        id=text(row, "id"),
        title=text(row, "title"),
        link=optional_text(row, "link"),
        summary=text(row, "summary"),
        published=optional_instant(row, "published"),
        feeds=strings(row, "feeds"),
        first_seen=instant(row, "first_seen"),
        authors=strings(row, "authors"),
        organisation=optional_text(row, "organisation"),
        upvotes=optional_int(row, "upvotes"),
        categories=strings(row, "categories"),
        arxiv_id=optional_text(row, "arxiv_id"),
        arxiv_version=optional_int(row, "arxiv_version"),
        announce_type=optional_text(row, "announce_type"),
    )


def delivery(row: Row) -> Delivery:
    status = text(row, "status")
    if status not in STATUSES:
        raise BadValue("status", f"{status[:20]!r} is not one of {', '.join(sorted(STATUSES))}")
    message = row["message"]
    if message is not None and not isinstance(message, bytes):
        raise BadValue("message", "not the bytes of a message")
    if message is None and status in _WITH_MESSAGE:
        raise BadValue("message", f"missing from a {status} digest")
    stored_day = text(row, "local_date")
    try:
        day = date.fromisoformat(stored_day)
    except ValueError:
        raise BadValue("local_date", f"{stored_day[:20]!r} is not a date") from None
    return Delivery(
        reader=text(row, "reader"),
        local_date=day,
        status=cast(DeliveryStatus, status),
        message_id=optional_text(row, "message_id"),
        entry_ids=strings(row, "entry_ids"),
        cutoff=instant(row, "cutoff"),
        created_at=instant(row, "created_at"),
        target=optional_text(row, "target"),
        message=message,
        attempts=count(row, "attempts"),
        last_error=optional_text(row, "last_error"),
    )


def feed_status(row: Row) -> FeedStatus:
    return FeedStatus(
        url=text(row, "url"),
        etag=optional_text(row, "etag"),
        last_modified=optional_text(row, "last_modified"),
        last_status=optional_text(row, "last_status"),
        last_error=optional_text(row, "last_error"),
        last_attempt=optional_instant(row, "last_attempt"),
        last_success=optional_instant(row, "last_success"),
        entries_seen=count(row, "entries_seen"),
        fetched_url=optional_text(row, "fetched_url"),
        moved_to=optional_text(row, "moved_to"),
        gone=optional_instant(row, "gone"),
        next_fetch=optional_instant(row, "next_fetch"),
        failures=count(row, "failures"),
    )
