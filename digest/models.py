"""Plain records passed between the stages; no logic lives here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

Security = Literal["starttls", "tls", "none"]
#: the kinds of document a feed can be declared as with `type =`
FeedType = Literal["rss", "atom", "json", "daily-papers", "arxiv"]
FEED_TYPES: tuple[FeedType, ...] = ("rss", "atom", "json", "daily-papers", "arxiv")
DeliveryStatus = Literal["pending", "failed", "folded", "sent", "written", "empty"]
#: statuses after which a reader has had their digest for that date
DONE: frozenset[str] = frozenset({"sent", "written", "empty"})


@dataclass(frozen=True, slots=True)
class Settings:
    """The `[digest]` table: defaults shared by every subscriber and output."""

    title: str
    #: absolute path of the SQLite state file, or the URL of a database (postgresql://…)
    state: Path | str
    #: absolute directory where digests are written when there is no `[smtp]`
    output: Path
    #: IANA zone name, the default for subscribers and the zone of Markdown pages
    timezone: str
    max_entries: int
    min_score: float
    #: `digest serve` fetches the feeds at most this often
    collect_every: timedelta = timedelta(hours=1)
    #: `digest serve` still sends a delivery missed by less than this; older ones are
    #: folded into the next digest
    catch_up: timedelta = timedelta(hours=4)
    #: an https page where readers unsubscribe, offered in List-Unsubscribe
    unsubscribe_url: str | None = None
    #: a directory of the user's own templates, rendered in Jinja's sandbox
    templates: Path | None = None
    #: entries older than this many days lose their text; their identity keys are kept
    keep_days: int = 180
    #: the name of a ranker in digest.rank.RANKERS
    ranker: str = "keyword"


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
    #: seconds per SMTP command, except the reply to the end of DATA
    timeout: float = 30.0
    #: seconds to wait for the reply to the end of DATA (content filters scan first);
    #: RFC 5321 §4.5.3.2.6 asks for 10 minutes
    data_timeout: float = 600.0
    #: persistent connections used at once for many subscribers
    connections: int = 4
    #: tries per message on a temporary (4xx or connection) failure, within one run
    attempts: int = 3
    #: seconds before the second try; doubled for each further one
    backoff: float = 2.0


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """The `[fetch]` table: how hard and how long feeds are fetched."""

    #: feeds fetched at once, over all hosts
    concurrency: int = 16
    #: requests at once to any one host
    per_host: int = 4
    #: seconds one feed may take in all (connect, redirects, every byte of the body)
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One `[[feeds]]` entry."""

    name: str
    #: the URL or path as written in the config (its state key: `key`)
    url: str
    #: what is actually read: an http(s) URL, or an absolute file path; either may hold
    #: `{date}`, filled with the local date in [digest] timezone on each run
    source: str
    weight: float = 1.0
    #: the document kind when the config sets `type` (None: detected by content)
    type: FeedType | None = None

    @property
    def key(self) -> str:
        """The feed's key in the state file: `url`, with any credential or token masked
        (urls.state_key)."""
        from .urls import state_key

        return state_key(self.url)

    @property
    def is_http(self) -> bool:
        # the scheme is case-insensitive: "HTTP://…" is an http URL
        return self.source[:8].lower().startswith(("http://", "https://"))


Sections = Literal["", "feed", "tag"]
#: the heading of picks that no tag's terms gave points to
OTHER_SECTION = "Other"

#: the parts of an entry a profile can read, in the order explanations list them
Field = Literal["title", "summary", "authors", "organisation", "categories"]
FIELDS: tuple[Field, ...] = ("title", "summary", "authors", "organisation", "categories")
#: how much one mention counts in each field unless a profile says otherwise; names are
#: followed (Profile.authors, Profile.organisations) rather than searched for keywords
DEFAULT_FIELD_WEIGHTS: tuple[tuple[Field, float], ...] = (
    ("title", 2.0),
    ("summary", 1.0),
    ("authors", 0.0),
    ("organisation", 0.0),
    ("categories", 1.0),
)


@dataclass(frozen=True, slots=True)
class Profile:
    """A reader's interests: weighted terms and phrases, and terms that rule an entry out."""

    name: str
    #: (term, weight) in the order the config gives them; a term is a word, a phrase, a
    #: prefix ending in "*", or an all-caps acronym (see rank.compile_term)
    keywords: tuple[tuple[str, float], ...]
    exclude: tuple[str, ...]
    max_entries: int
    min_score: float
    #: when not empty, an entry must contain at least one of these terms
    require: tuple[str, ...] = ()
    #: (field, weight) for every field; a field weighted 0 is not read at all
    fields: tuple[tuple[Field, float], ...] = DEFAULT_FIELD_WEIGHTS
    #: followed people: (name, points an entry by them gets)
    authors: tuple[tuple[str, float], ...] = ()
    #: followed organisations: (name, points an entry from them gets)
    organisations: tuple[tuple[str, float], ...] = ()
    #: the most points Daily-Papers upvotes can add (0: upvotes are ignored)
    popularity: float = 0.0
    #: points a just-published entry gets, halving every day of age (0: age is ignored)
    freshness: float = 0.0
    #: at most this many picks from any one feed (None: no limit)
    max_per_feed: int | None = None
    #: how picks are grouped under headings: "" one list, "feed" by the entry's first feed,
    #: "tag" by the tag whose terms gave the pick the most points (see `tags`)
    sections: Sections = ""
    #: (tag, its terms) in the config's order; a term is one of `keywords`, or a followed
    #: author or organisation
    tags: tuple[tuple[str, tuple[str, ...]], ...] = ()


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


WebhookFormat = Literal["slack", "json"]
WEBHOOK_FORMATS: tuple[WebhookFormat, ...] = ("slack", "json")


@dataclass(frozen=True, slots=True)
class WebhookOutput:
    """One `[[webhooks]]` entry: a digest POSTed to a chat or an HTTP endpoint once a day."""

    #: unique among webhooks; the ledger's key is "webhook:NAME"
    name: str
    #: https (http only for a loopback host); its path and query are secret
    url: str
    profile: str
    format: WebhookFormat
    send_at: time
    timezone: str


@dataclass(frozen=True, slots=True)
class SubscriberList:
    """One `[[subscriber_lists]]` entry: a CSV file whose rows are read into
    `Config.subscribers`, after the `[[subscribers]]` tables, in file order."""

    #: the CSV file, resolved against the config file's directory
    path: Path
    #: how many subscribers it holds
    count: int = 0


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
    fetch: FetchSettings = FetchSettings()
    webhooks: tuple[WebhookOutput, ...] = ()
    #: where the subscribers after the `[[subscribers]]` tables came from, in their order
    subscriber_lists: tuple[SubscriberList, ...] = ()


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
    #: the URL (or path) requested, `{date}` filled in; the validators belong to it
    url: str | None = None
    #: where permanent redirects (301/308) led; the feed is read there from now on
    moved_to: str | None = None
    #: the instant a 429 or 503 asked us to wait until (Retry-After)
    retry_after: datetime | None = None
    #: the URL the body (or the 304) finally came from, after every redirect; what
    #: relative links in the document are resolved against
    final_url: str | None = None
    #: the response's Content-Location, made absolute against `final_url`; None when the
    #: server sent none or one that is not a usable http(s) URL
    content_location: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and self.error is None


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
    #: the feed's subject labels (RSS/Atom category terms); for arXiv the primary first
    categories: tuple[str, ...] = ()
    #: arXiv identifier without version ("2401.00001", "hep-th/9901001"), when known
    arxiv_id: str | None = None
    #: the arXiv version this item announces (2 for "…v2"), when known
    arxiv_version: int | None = None
    #: rss.arxiv.org's announce type: new, cross, replace or replace-cross
    announce_type: str | None = None


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
    #: the feed's own subject labels for the entry (RSS/Atom category, arXiv section)
    categories: tuple[str, ...] = ()
    #: arXiv identifier without version, when the entry is an arXiv paper
    arxiv_id: str | None = None
    #: the latest arXiv version seen
    arxiv_version: int | None = None
    #: the announce type of the latest arXiv announcement seen (new, cross, replace…)
    announce_type: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One profile term (or followed name) found in one field, and the points it gave.

    points = profile weight × field weight × saturation × feed weight; for a followed
    name, its weight × feed weight."""

    term: str
    field: Field
    points: float
    #: how many times the term occurs in the field
    count: int = 1
    #: what `count` mentions are worth after saturation and length normalisation
    saturation: float = 1.0
    #: a followed author or organisation rather than a keyword
    follow: bool = False


@dataclass(frozen=True, slots=True)
class Boost:
    """Points added for something other than the profile's terms, never above its cap."""

    kind: Literal["upvotes", "freshness"]
    points: float
    #: the upvotes, or the entry's age in hours
    value: float


@dataclass(frozen=True, slots=True)
class Pick:
    """A scored entry with every contribution behind its score; they sum to `score`."""

    entry: Entry
    #: rounded to 6 decimal places
    score: float
    matches: tuple[Match, ...]
    #: the feed weight the term points were multiplied by
    feed_weight: float = 1.0
    boosts: tuple[Boost, ...] = ()
    #: the heading the pick is grouped under in the digest ("" = one list, no headings)
    section: str = ""


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An entry a profile considered and did not pick, with its breakdown and the reason."""

    pick: Pick
    #: e.g. 'excluded by "survey"', "below min_score 1", "cut at max_entries 20"
    reason: str


@dataclass(frozen=True, slots=True)
class Ranking:
    """Everything a profile made of a set of entries: the picks in order, and the rest."""

    picks: tuple[Pick, ...]
    #: best score first; entries matching nothing come last
    left_out: tuple[LeftOut, ...]


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
    #: pending: stored, not yet accepted; failed: refused for good (5xx); folded: never sent,
    #: its entries went into a later digest; sent / written / empty: done
    status: DeliveryStatus
    message_id: str | None
    entry_ids: tuple[str, ...]
    #: the instant the digest covered entries up to (timezone-aware UTC)
    cutoff: datetime
    created_at: datetime
    target: str | None = None
    #: the message exactly as it is (re)sent, for pending and sent emails
    message: bytes | None = None
    attempts: int = 0
    last_error: str | None = None


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
    #: the URL the validators were given for (a `{date}` feed changes URL every day)
    fetched_url: str | None = None
    #: where the feed moved permanently (301/308); fetched there instead of its config URL
    moved_to: str | None = None
    #: when the feed answered 410 Gone; it is not fetched again under this config URL
    gone: datetime | None = None
    #: not fetched before this instant (Retry-After or backoff); None: on every run
    next_fetch: datetime | None = None
    #: transient failures (5xx, 429, network errors) in a row
    failures: int = 0
