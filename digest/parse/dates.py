"""Entry dates, for both XML paths and JSON: what the fast path reads itself (exactly as
the feedparser path would), how feedparser's reading is checked, and which dates are no date."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

from .text import as_str

# The years an entry's date may have: no feed entry was published before 1900 (feedparser's
# readings of such years are guesses: "0001" becomes 100), and the state file holds no date
# within a day of the ends of what Python can hold. Any other date is no date.
YEARS = (1900, 9998)
# a time followed by a zone that is not a clock's offset (+25:00, +99:99, +0a:00, -5:00)
_MALFORMED_OFFSET = re.compile(
    r"\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:(?:etc/)?(?:gmt|utc|ut))?\s*"
    r"(?![+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?\s*$)[+-]\S*\s*$",
    re.IGNORECASE,
)
# The dates fast_date reads itself; anything else (zone names feedparser alone knows, such
# as MET, ET or PT, two-digit years, odd offsets, other formats) goes to feedparser.
_ISO_DATE = re.compile(
    r"(?P<year>\d{4})-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?P<offset>Z|[+-]\d\d:?\d\d)?)?$"
)
_RFC822_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?\d{1,2}\s+[A-Za-z]{3}\s+(?P<year>\d{4})\s+"
    r"\d\d:\d\d(?::\d\d)?\s+(?P<offset>[+-]\d{4}|UTC?|GMT|Z|[ACEMP][SD]T)$",
    re.IGNORECASE,
)
_OFFSET = re.compile(r"[+-](\d\d):?(\d\d)?")


class Unsure(ValueError):
    """A date the fast path does not read exactly as the feedparser path would."""


def fast_date(text: str) -> datetime | None:
    """A date exactly as the feedparser path reads it, or Unsure: only the forms both read
    alike (RFC 822 with a zone email.utils and feedparser share, or ISO 8601 with Z or a
    numeric offset; years within YEARS); feedparser decides every other one."""
    if not text:
        return None
    if text[:4].isdigit():
        m = _ISO_DATE.match(text)
    else:
        m = _RFC822_DATE.match(text)
    if m is None or not YEARS[0] <= int(m["year"]) <= YEARS[1] or not _offset_ok(m["offset"]):
        raise Unsure
    try:
        when = datetime.fromisoformat(text) if m.re is _ISO_DATE else parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # "-0000" and zone-less ISO dates: feedparser: UTC
        return when.astimezone(UTC).replace(microsecond=0)
    except (ValueError, TypeError, IndexError, OverflowError) as e:
        raise Unsure from e


def _offset_ok(offset: str | None) -> bool:
    """A numeric offset a clock can show (±hh:mm, hh < 24, mm < 60), or none at all."""
    if not offset or offset[0] not in "+-":
        return True
    m = _OFFSET.fullmatch(offset)
    return m is not None and int(m[1]) < 24 and int(m[2] or 0) < 60


def feedparser_date(item: Mapping[str, Any]) -> datetime | None:
    """The entry's published date, else its updated one, as feedparser read it; a date Python
    cannot hold or that cannot be (a year 0 or 10000 once in UTC, MySQL's zero date, a year
    outside YEARS, an offset such as +25:00 or +0a:00) is no date, never an error."""
    # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed, with a
    # DeprecationWarning, when published_parsed is there but None (an unreadable date)
    fields = cast(dict[str, Any], item)
    for key in ("published", "updated"):
        when = dict.get(fields, f"{key}_parsed")
        if not when or _MALFORMED_OFFSET.search(as_str(dict.get(fields, key))):
            continue
        try:
            result = datetime.fromtimestamp(calendar.timegm(when), UTC)
        except (ValueError, OverflowError, OSError):
            continue
        if YEARS[0] <= result.year <= YEARS[1]:
            return result
    return None


def iso_date(value: object) -> datetime | None:
    """A JSON document's ISO 8601 date in UTC; None for anything else, or outside YEARS."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
    except (ValueError, OverflowError):  # "0000-00-00", or a year 0 or 10000 once in UTC
        return None
    return when if YEARS[0] <= when.year <= YEARS[1] else None
