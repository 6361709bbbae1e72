"""One run: collect every feed, then build and deliver each reader's digest for today.

The only module that wires the stages together (collect → rank → render → deliver); the
CLI, the scheduler and the library API (digest/__init__.py) call it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .delivery import CHANNELS, DeliveryReport, Outcome, Progress, deliver_all
from .delivery.email import subscriber_reader
from .delivery.markdown import archive, markdown_reader
from .delivery.outbox import Ledger, local_date
from .errors import ConfigError, StateRowError
from .feeds import (
    FEED_PROBLEM_AFTER,
    FeedReport,
    collect,
    feed_health,
    feed_problems,
    held_report,
)
from .models import (
    DONE,
    Config,
    Digest,
    Entry,
    FetchResult,
    Pick,
    Profile,
    Ranking,
    Reader,
    Subscriber,
)
from .state import Store, open_store

if TYPE_CHECKING:
    from .rank import Collection, Ranker

__all__ = [
    "CHANNELS",
    "COLLECTION_WINDOW",
    "FEED_PROBLEM_AFTER",
    "NEW_READER_WINDOW",
    "DeliveryReport",
    "BatchBuilder",
    "Explanation",
    "FeedReport",
    "Outcome",
    "RunReport",
    "archive",
    "build_digest",
    "check_secrets",
    "collect",
    "collect_only",
    "deliver",
    "deliver_only",
    "explain",
    "feed_health",
    "feed_problems",
    "find_subscriber",
    "held_report",
    "local_date",
    "make_ranker",
    "markdown_reader",
    "preview",
    "run",
    "subscriber_reader",
    "window_start",
]

log = logging.getLogger("digest")

# parse (feedparser), rank (numpy), render (Jinja) and send (aiosmtplib) are imported where
# they are used: `digest collect` needs only parse, and only when a feed changed.

#: what a reader with no delivery yet gets: entries first seen in this window
NEW_READER_WINDOW = timedelta(hours=24)
#: how far back the state file's entries make the statistics of how rare each term is
COLLECTION_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RunReport:
    feeds: tuple[FeedReport, ...]
    deliveries: tuple[DeliveryReport, ...]
    #: rows of the state file that could not be read and were left out, one line each
    state_problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(d.outcome == "failed" for d in self.deliveries)


def find_subscriber(config: Config, name: str) -> Subscriber:
    subscriber = next((s for s in config.subscribers if s.name == name), None)
    if subscriber is None:
        names = ", ".join(s.name for s in config.subscribers) or "none"
        raise ConfigError(
            str(config.path), "subscribers", f"no subscriber named {name!r} ({names})"
        )
    return subscriber


def window_start(store: Store, reader: Reader, now: datetime) -> datetime:
    """Where the reader's next digest starts: their last digest's cutoff, or for a new
    reader NEW_READER_WINDOW ago."""
    last = store.last_delivery(reader.key)
    return last.cutoff if last is not None else now - NEW_READER_WINDOW


def check_secrets(config: Config) -> None:
    """Fail before fetching anything when the SMTP password variable is missing."""
    smtp = config.smtp
    if smtp is not None and smtp.password_env and smtp.password_env not in os.environ:
        raise ConfigError(
            str(config.path),
            "smtp.password_env",
            f"the environment variable {smtp.password_env} is not set",
        )


def make_ranker(config: Config, store: Store, now: datetime) -> Ranker:
    """One ranker for every profile of a run (the config's `ranker`), with term statistics
    from the state file."""
    from .rank import make_ranker as named

    return named(
        config.settings.ranker,
        config.profiles.values(),
        feed_weights={feed.name: feed.weight for feed in config.feeds},
        collection=store.new_entries(None, now - COLLECTION_WINDOW, now),
        now=now,
    )


def build_digest(
    config: Config,
    store: Store,
    reader: Reader,
    now: datetime,
    problems: Sequence[str] = (),
    ranker: Ranker | None = None,
    day: date | None = None,
) -> Digest:
    """The reader's digest at `now` (for local date `day`, by default today's): entries
    new since their last delivery, ranked."""
    entries = store.new_entries(reader.key, window_start(store, reader, now), now)
    picks = (ranker or make_ranker(config, store, now)).rank(entries, reader.profile)
    return Digest(
        reader=reader,
        title=config.settings.title,
        local_date=day or local_date(reader, now),
        generated_at=now,
        picks=tuple(picks),
        considered=len(entries),
        feed_problems=tuple(problems),
    )


async def deliver(
    config: Config,
    store: Store,
    now: datetime,
    *,
    dry_run: bool = False,
    only: Mapping[str, date] | None = None,
    progress: Progress | None = None,
) -> list[DeliveryReport]:
    """Deliver today's digest to every reader of every channel (email, Markdown pages,
    webhooks) who has not had it, through the outbox (delivery/outbox.py), in batches.

    `only`: the scheduled readers that are due, by name, each with the local date it was
    due on (`digest serve`)."""
    problems = feed_problems(config, store.feed_statuses(), now)
    ranker = make_ranker(config, store, now)  # reads each entry once for every reader
    build = BatchBuilder(config, now, problems, ranker)
    return await deliver_all(
        config, store, now, build, dry_run=dry_run, only=only, progress=progress
    )


#: readers with the same window start, entries folded back and entries already had
_Group = tuple[datetime, frozenset[str], frozenset[str]]


class BatchBuilder:
    """The digests of a batch of readers, with the work they share done once.

    The entries are read and decoded once for the whole run, from the earliest window any
    reader needs (each reader's window is a slice of it); what each reader already had is
    subtracted as a set; readers left with the same candidates are ranked in one pass of
    the ranker, each distinct profile once. The same digests as `build_digest` makes one by
    one."""

    def __init__(
        self, config: Config, now: datetime, problems: Sequence[str], ranker: Ranker
    ) -> None:
        self._config = config
        self._now = now
        self._problems = tuple(problems)
        self._ranker = ranker
        #: the entries of the earliest window a batch needed so far (oldest first), their
        #: first-seen instants (for bisecting), and by id; every later window is a slice
        self._after: datetime | None = None
        self._all: list[Entry] = []
        self._seen_at: list[datetime] = []
        self._by_id: dict[str, Entry] = {}

    async def __call__(
        self, readers: Sequence[tuple[Reader, date]], ledger: Ledger
    ) -> list[Digest | StateRowError]:
        store, now = ledger.store, self._now
        keys = [reader.key for reader, _ in readers]
        last = await ledger.call(partial(store.last_deliveries, keys))
        starts: dict[str, datetime] = {}
        for key in keys:
            done = last.get(key)
            if not isinstance(done, StateRowError):
                starts[key] = done.cutoff if done is not None else now - NEW_READER_WINDOW
        if starts and (self._after is None or min(starts.values()) < self._after):
            self._after = min(starts.values())
            self._all = await ledger.call(partial(store.window_entries, self._after, now))
            self._seen_at = [e.first_seen for e in self._all]
            self._by_id = {e.id: e for e in self._all}
        # each distinct window once per batch: a slice of the earliest (first seen > start)
        windows: dict[datetime, tuple[list[Entry], frozenset[str]]] = {}
        for after in set(starts.values()):
            window = self._all[bisect_right(self._seen_at, after) :]
            windows[after] = window, frozenset(e.id for e in window)
        readable = list(starts)
        folded = await ledger.call(partial(store.folded_entry_ids, readable))
        back_ids = set().union(*folded.values()) if folded else set()
        outside = back_ids - self._by_id.keys()
        extra = await ledger.call(partial(store.entries_by_id, outside)) if outside else {}
        known = {i: e for i in back_ids if (e := self._by_id.get(i) or extra.get(i))}
        every = windows[min(windows)][1] if windows else frozenset()
        sent = await ledger.call(partial(store.sent_entry_ids, readable, every | known.keys()))
        # readers whose candidates are the same list share it, and one ranking of it
        groups: dict[_Group, list[Entry]] = {}
        group_of: dict[str, _Group] = {}
        for key in readable:
            window, ids = windows[starts[key]]
            back = frozenset(i for i in folded.get(key, ()) if i in known and i not in ids)
            had = sent.get(key, frozenset())
            group = (starts[key], back, had)
            group_of[key] = group
            if group not in groups:
                entries = window
                if back:
                    entries = sorted([*window, *(known[i] for i in back)], key=_window_order)
                groups[group] = [e for e in entries if e.id not in had] if had else entries
        picks: dict[tuple[_Group, int], list[Pick]] = {}
        profiles_of: dict[_Group, dict[int, Profile]] = {group: {} for group in groups}
        for reader, _ in readers:
            if reader.key in group_of:
                profiles_of[group_of[reader.key]][id(reader.profile)] = reader.profile
        for group, entries in groups.items():
            profiles = profiles_of[group]
            ranked = self._ranker.rank_many(entries, list(profiles.values()))
            for profile_id, result in zip(profiles, ranked, strict=True):
                picks[group, profile_id] = result
            await asyncio.sleep(0)  # the senders go on between rankings
        digests: list[Digest | StateRowError] = []
        for reader, day in readers:
            done = last.get(reader.key)
            if isinstance(done, StateRowError):
                digests.append(done)
                continue
            group = group_of[reader.key]
            digests.append(
                Digest(
                    reader=reader,
                    title=self._config.settings.title,
                    local_date=day,
                    generated_at=now,
                    picks=tuple(picks[group, id(reader.profile)]),
                    considered=len(groups[group]),
                    feed_problems=self._problems,
                )
            )
        return digests


def _window_order(entry: Entry) -> tuple[datetime, str]:
    return entry.first_seen, entry.id


def run(
    config: Config,
    now: datetime,
    *,
    dry_run: bool = False,
    on_feed: Callable[[FetchResult], None] | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Collect, then deliver today's digests. A dry run works on a scratch store: nothing it
    does reaches the state."""
    if not dry_run:
        check_secrets(config)
    with open_store(config.settings.state, "scratch" if dry_run else "write") as store:
        feeds = asyncio.run(collect(config, store, now, on_feed))
        deliveries = asyncio.run(deliver(config, store, now, dry_run=dry_run, progress=progress))
        problems = store.problems()
    return RunReport(tuple(feeds), tuple(deliveries), problems)


def collect_only(
    config: Config, now: datetime, on_feed: Callable[[FetchResult], None] | None = None
) -> list[FeedReport]:
    with open_store(config.settings.state, "write") as store:
        return asyncio.run(collect(config, store, now, on_feed))


def deliver_only(config: Config, now: datetime, *, dry_run: bool = False) -> list[DeliveryReport]:
    """Deliver today's digests from what is stored, fetching nothing."""
    if not dry_run:
        check_secrets(config)
    with open_store(config.settings.state, "scratch" if dry_run else "write") as store:
        return asyncio.run(deliver(config, store, now, dry_run=dry_run))


def preview(
    config: Config,
    subscriber_name: str,
    now: datetime,
    on_feed: Callable[[FetchResult], None] | None = None,
) -> Path:
    """Render what the subscriber would get now, on a scratch store; return the HTML path."""
    from .render import render
    from .send import file_stem, write_atomic

    subscriber = find_subscriber(config, subscriber_name)
    with open_store(config.settings.state, "scratch") as store:
        asyncio.run(collect(config, store, now, on_feed))
        problems = feed_problems(config, store.feed_statuses(), now)
        digest = build_digest(config, store, subscriber_reader(config, subscriber), now, problems)
    path = config.settings.output / "preview" / digest.local_date.isoformat()
    path = path / f"{file_stem(subscriber.name)}.html"
    rendered = render(digest, config.settings.templates, config.settings.unsubscribe_url)
    write_atomic(path, rendered.html.encode())
    return path


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a subscriber's digest holds what it holds, entry by entry."""

    reader: Reader
    #: which digest was explained and which entries it ranked, for the reader
    scope: str
    ranking: Ranking
    #: the statistics the scores were computed with
    collection: Collection
    #: entries asked for by id or URL that were not among those ranked, with why not
    elsewhere: tuple[tuple[Pick, str], ...] = ()


def explain(
    config: Config, subscriber_name: str, now: datetime, entries: Sequence[str] = ()
) -> Explanation:
    """The full ranking behind a subscriber's digest, picks and left-out entries alike.

    Today's digest when it has gone out (the entries it was built from), else the one that
    would go out now. Reads the state as it is, without a lock, and fetches nothing.
    `entries`: ids or URLs of entries to explain even when that digest did not consider them.
    """
    subscriber = find_subscriber(config, subscriber_name)
    reader = subscriber_reader(config, subscriber)
    day = local_date(reader, now)
    with open_store(config.settings.state, "read") as store:
        ranker = make_ranker(config, store, now)
        sent = store.delivery(reader.key, day)
        if sent is not None and sent.status in DONE:
            earlier = [
                d
                for d in store.deliveries(reader.key)
                if d.status in DONE and d.cutoff < sent.cutoff
            ]
            after = max((d.cutoff for d in earlier), default=sent.cutoff - NEW_READER_WINDOW)
            until = sent.cutoff
            ranked = store.new_entries(None, after, until)
            scope = f"the digest of {day.isoformat()} ({sent.status})"
        else:
            after = window_start(store, reader, now)
            until = now
            ranked = store.new_entries(reader.key, after, now)
            scope = f"the digest that would go out now ({day.isoformat()})"
        scope += f": entries first seen after {after:%Y-%m-%d %H:%M} UTC until {until:%H:%M}"
        elsewhere: list[tuple[Pick, str]] = []
        considered = {e.id for e in ranked}
        wanted = set(entries) - considered - {e.link for e in ranked if e.link}
        if wanted:
            known = store.new_entries(None, now - COLLECTION_WINDOW, now)
            for entry in known:
                if entry.id in wanted or entry.link in wanted:
                    pick = ranker.explain(entry, reader.profile)[1]
                    seen = entry.first_seen.strftime("%Y-%m-%d %H:%M")
                    elsewhere.append((pick, f"not in this digest's window (first seen {seen} UTC)"))
        return Explanation(
            reader=reader,
            scope=scope,
            ranking=ranker.ranking(ranked, reader.profile),
            collection=ranker.collection,
            elsewhere=tuple(elsewhere),
        )
