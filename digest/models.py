"""Plain records passed between the stages; no logic lives here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True, slots=True)
class Settings:
    """The `[digest]` table: defaults shared by every subscriber and output."""

    title: str
    #: absolute path of the SQLite state file
    state: Path
    #: absolute directory where digests are written when there is no `[smtp]`
    output: Path
    #: IANA zone name, the default for subscribers and the zone of Markdown pages
    timezone: str
    max_entries: int
    min_score: float


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The `[smtp]` table. The password is never here, only the name of its variable."""

    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password_env: str | None = None
    #: a CA bundle to verify the server with, for private CAs; None: the system's
    ca_file: Path | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One `[[feeds]]` entry."""

    name: str
    #: the URL or path as written in the config; the feed's key in the state file
    url: str
    #: what is actually read: an http(s) URL, or an absolute file path
    source: str
    weight: float = 1.0

    @property
    def is_http(self) -> bool:
        return self.source.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class Profile:
    """A reader's interests: weighted terms and phrases, and terms that rule an entry out."""

    name: str
    #: (term or phrase, weight) in the order the config gives them
    keywords: tuple[tuple[str, float], ...]
    exclude: tuple[str, ...]
    max_entries: int
    min_score: float


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One `[[subscribers]]` entry: who gets an email, with which profile, when."""

    name: str
    email: str
    profile: str
    send_at: time
    timezone: str


@dataclass(frozen=True, slots=True)
class MarkdownOutput:
    """One `[[markdown]]` entry: a dated Markdown page per day for a wiki."""

    profile: str
    #: absolute path template containing `{date}`
    path: str
    index: Path | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration file."""

    path: Path
    settings: Settings
    smtp: SmtpSettings | None
    feeds: tuple[FeedConfig, ...]
    profiles: Mapping[str, Profile]
    subscribers: tuple[Subscriber, ...]
    markdown: tuple[MarkdownOutput, ...]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What fetching one feed gave: a body, "not modified", or an error; never parsed."""

    feed: FeedConfig
    #: HTTP status; None for local files and network errors
    status: int | None = None
    #: None when the server said 304 or the fetch failed
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One item of one feed as the feed gave it, with text already reduced to plain text."""

    title: str
    guid: str | None = None
    link: str | None = None
    #: plain text, tags and scripts removed
    summary: str = ""
    #: timezone-aware UTC, or None when the feed gave none
    published: datetime | None = None
    authors: tuple[str, ...] = ()
    organisation: str | None = None
    upvotes: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One item after de-duplication: the same id from several feeds is one Entry."""

    #: see dedupe.canonical_id
    id: str
    title: str
    link: str | None
    summary: str
    published: datetime | None
    #: names of every feed the entry came from, in first-seen order
    feeds: tuple[str, ...]
    #: when this state file first saw the entry (timezone-aware UTC)
    first_seen: datetime
    authors: tuple[str, ...] = ()
    organisation: str | None = None
    upvotes: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One profile term found in one field of an entry, and the points it gave."""

    term: str
    field: Literal["title", "summary"]
    points: float


@dataclass(frozen=True, slots=True)
class Pick:
    """An entry chosen for a digest, with its score and the matches behind it."""

    entry: Entry
    score: float
    matches: tuple[Match, ...]
    #: the feed weight the term points were multiplied by
    feed_weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Reader:
    """Anyone a digest is built for: a subscriber, or a `[[markdown]]` output."""

    #: stable key in the deliveries ledger, e.g. "subscriber:ada" or "markdown:wiki/{date}.md"
    key: str
    name: str
    profile: Profile
    timezone: str


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a template needs for one reader and one local date."""

    reader: Reader
    title: str
    local_date: date
    #: the instant the digest was built for (timezone-aware UTC)
    generated_at: datetime
    picks: tuple[Pick, ...]
    #: how many new entries were considered before ranking
    considered: int
    #: feeds that failed in this run, "name: reason"
    feed_problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest in each format it is delivered in."""

    subject: str
    html: str
    text: str
    markdown: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the deliveries ledger."""

    reader: str
    local_date: date
    status: Literal["sent", "written", "empty"]
    message_id: str | None
    entry_ids: tuple[str, ...]
    #: the instant the digest covered entries up to (timezone-aware UTC)
    cutoff: datetime
    created_at: datetime
    target: str | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What the state file remembers about a feed between runs."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    entries_seen: int = 0
