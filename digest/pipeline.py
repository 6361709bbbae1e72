"""One run: collect every feed, then build and deliver each reader's digest for today.

The only module that wires all the stages together; the CLI and the scheduler call it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from .dedupe import merge
from .errors import ConfigError, DeliveryError, FeedError, StateRowError
from .fetch import DATE_PLACEHOLDER, fetch_all, is_transient, retry_at
from .models import (
    DONE,
    Config,
    Delivery,
    DeliveryStatus,
    Digest,
    FeedConfig,
    FeedStatus,
    FetchResult,
    MarkdownOutput,
    Pick,
    Ranking,
    Reader,
    RenderedDigest,
    Subscriber,
)
from .state import Store, open_store

if TYPE_CHECKING:
    from .rank import Collection, KeywordRanker, Ranker
    from .send import Mailer, Outgoing

# parse (feedparser), rank (numpy), render (Jinja) and send (aiosmtplib) are imported where
# they are used: `digest collect` needs only parse, and only when a feed changed, and
# importing them all would double the start-up of a run where nothing is new.

log = logging.getLogger("digest")

#: what a reader with no delivery yet gets: entries first seen in this window
NEW_READER_WINDOW = timedelta(hours=24)
#: a failing feed is listed in digests once it has not worked for this long
FEED_PROBLEM_AFTER = timedelta(hours=24)
#: how far back the state file's entries make the statistics of how rare each term is
COLLECTION_WINDOW = timedelta(days=30)

Outcome = Literal["sent", "written", "empty", "already", "failed", "dry-run"]


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed went in this run."""

    name: str
    #: ok, not modified, error, skipped (backing off or asked to wait), or gone (410)
    status: str
    new: int = 0
    error: str | None = None
    #: a problem that did not stop the feed, such as malformed XML that was recovered
    warning: str | None = None
    #: a skipped feed is next fetched from this instant; a failed one that backs off, too
    until: datetime | None = None
    #: where the feed moved permanently: the config should say so
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How one reader's digest went in this run."""

    reader: str
    local_date: date
    outcome: Outcome
    picks: int = 0
    target: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    feeds: tuple[FeedReport, ...]
    deliveries: tuple[DeliveryReport, ...]
    #: rows of the state file that could not be read and were left out, one line each
    state_problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(d.outcome == "failed" for d in self.deliveries)


def subscriber_reader(config: Config, subscriber: Subscriber) -> Reader:
    return Reader(
        key=f"subscriber:{subscriber.name}",
        name=subscriber.name,
        profile=config.profiles[subscriber.profile],
        timezone=subscriber.timezone,
    )


def markdown_reader(config: Config, output: MarkdownOutput) -> Reader:
    shown = os.path.relpath(output.path, config.path.parent)
    return Reader(
        key=f"markdown:{shown}",
        name=shown,
        profile=config.profiles[output.profile],
        timezone=config.settings.timezone,
    )


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


def local_date(reader: Reader, now: datetime) -> date:
    return now.astimezone(ZoneInfo(reader.timezone)).date()


def check_secrets(config: Config) -> None:
    """Fail before fetching anything when the SMTP password variable is missing."""
    smtp = config.smtp
    if smtp is not None and smtp.password_env and smtp.password_env not in os.environ:
        raise ConfigError(
            str(config.path),
            "smtp.password_env",
            f"the environment variable {smtp.password_env} is not set",
        )


async def collect(
    config: Config,
    store: Store,
    now: datetime,
    on_feed: Callable[[FetchResult], None] | None = None,
) -> list[FeedReport]:
    """Fetch every feed that is due and store what is new; one failing feed never stops
    the others. Gone feeds and feeds told to wait (Retry-After, backoff) are skipped."""
    statuses = store.feed_statuses()
    held = {f.url: r for f in config.feeds if (r := held_report(f, statuses.get(f.url), now))}
    due = [f for f in config.feeds if f.url not in held]
    day = now.astimezone(ZoneInfo(config.settings.timezone)).date()
    results = await fetch_all(due, statuses, now, day=day, settings=config.fetch, on_done=on_feed)
    with store.batch():
        done = {r.feed.url: _store_result(store, r, statuses.get(r.feed.url), now) for r in results}
        store.prune(now, config.settings.keep_days)
    return [held.get(f.url) or done[f.url] for f in config.feeds]


def held_report(feed: FeedConfig, status: FeedStatus | None, now: datetime) -> FeedReport | None:
    """Why collect skips the feed this run (gone, or told to wait), or None: it is due."""
    if status is None:
        return None
    if status.gone is not None:
        return FeedReport(feed.name, "gone", error=status.last_error)
    if status.next_fetch is not None and status.next_fetch > now:
        return FeedReport(feed.name, "skipped", error=status.last_error, until=status.next_fetch)
    return None


def _store_result(
    store: Store, result: FetchResult, known: FeedStatus | None, now: datetime
) -> FeedReport:
    feed = result.feed
    status = str(result.status) if result.status is not None else "file"
    moved = result.moved_to
    if result.error is not None:
        failures = (known.failures if known else 0) + 1 if is_transient(result) else 0
        until = retry_at(result, failures, now)
        # a dated feed's 410 is about one day's page, not the feed
        gone = result.status == 410 and DATE_PLACEHOLDER not in feed.source
        store.record_feed(
            feed.url, feed.name, now, status=status, error=result.error, moved_to=moved,
            gone=gone, next_fetch=until, failures=failures,
        )  # fmt: skip
        return FeedReport(
            feed.name, "gone" if gone else "error", error=result.error, until=until,
            moved_to=moved,
        )  # fmt: skip
    record_ok = partial(
        store.record_feed,
        feed.url,
        feed.name,
        now,
        status=status,
        etag=result.etag,
        last_modified=result.last_modified,
        fetched_url=moved or result.url,
        moved_to=moved,
    )
    if result.body is None:
        record_ok()
        return FeedReport(feed.name, "not modified", moved_to=moved)
    from .parse import parse_feed

    try:
        parsed = parse_feed(
            feed.name,
            result.body,
            feed.type,
            # where the body came from, after redirects, and its Content-Location, once
            # FetchResult has them (wip-fetch); the URL asked for until then
            url=getattr(result, "final_url", None) or moved or result.url,
            content_type=result.content_type,
            content_location=getattr(result, "content_location", None),
        )
    except FeedError as e:
        store.record_feed(feed.url, feed.name, now, status=status, error=e.reason, moved_to=moved)
        return FeedReport(feed.name, "error", error=e.reason, moved_to=moved)
    new = record_ok(candidates=merge([(feed.name, feed.url, parsed.entries)]))
    return FeedReport(feed.name, "ok", new=new, warning=parsed.problem, moved_to=moved)


def feed_problems(config: Config, statuses: dict[str, FeedStatus], now: datetime) -> list[str]:
    """Feeds the reader should know about: gone ones, ones backing off, and ones failing
    that have not worked for FEED_PROBLEM_AFTER (or ever)."""
    problems = []
    for feed in config.feeds:
        status = statuses.get(feed.url)
        if status is None:
            continue
        if status.gone is not None:
            problems.append(
                f"{feed.name}: gone ({status.last_error}) since {status.gone:%Y-%m-%d}; "
                "no longer fetched"
            )
            continue
        if not status.last_error:
            continue
        backing_off = status.next_fetch is not None and status.next_fetch > now
        failing = status.last_success is None or now - status.last_success > FEED_PROBLEM_AFTER
        if backing_off or failing:
            since = (
                f"since {status.last_success:%Y-%m-%d}" if status.last_success else "never worked"
            )
            retry = f"; next try {status.next_fetch:%Y-%m-%d %H:%M} UTC" if backing_off else ""
            problems.append(f"{feed.name}: {status.last_error} ({since}{retry})")
    return problems


def feed_health(config: Config) -> list[tuple[FeedConfig, FeedStatus | None]]:
    """Each configured feed with what the state file knows about it (None: never fetched);
    read without a lock, so it works while another digest process holds the state file."""
    with open_store(config.settings.state, "read") as store:
        statuses = store.feed_statuses()
    return [(feed, statuses.get(feed.url)) for feed in config.feeds]


def make_ranker(config: Config, store: Store, now: datetime) -> KeywordRanker:
    """One ranker for every profile of a run, with term statistics from the state file."""
    from .rank import KeywordRanker

    collection = store.new_entries(None, now - COLLECTION_WINDOW, now)
    return KeywordRanker(
        config.profiles.values(),
        feed_weights={feed.name: feed.weight for feed in config.feeds},
        collection=collection,
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
) -> list[DeliveryReport]:
    """Send each subscriber's digest and write each Markdown page that is due today.

    Every email goes through the outbox: stored as pending (with the exact message) before
    it is sent, marked sent in the transaction that records the server's reply. A pending
    digest of today (the last run died, or the server deferred it) is re-sent as it was; one
    of an earlier date is folded, and its entries go into today's digest instead.
    """
    from .render import clear_caches

    try:
        return await _deliver(config, store, now, dry_run=dry_run, only=only)
    finally:
        clear_caches()  # what the run's digests shared is not kept until the next run


async def _deliver(
    config: Config,
    store: Store,
    now: datetime,
    *,
    dry_run: bool,
    only: Mapping[str, date] | None,
) -> list[DeliveryReport]:
    from .render import render
    from .send import Outgoing

    problems = feed_problems(config, store.feed_statuses(), now)
    ranker = make_ranker(config, store, now)  # reads each entry once for every reader
    reports: list[DeliveryReport] = []
    queue: list[_Queued] = []
    for subscriber in config.subscribers:
        # `only`: the daemon's subscribers that are due, each with the local date it was due
        # on (a catch-up just after midnight is still the previous day's digest)
        if only is not None and subscriber.name not in only:
            continue
        reader = subscriber_reader(config, subscriber)
        day = only[subscriber.name] if only is not None else local_date(reader, now)
        try:
            existing = store.delivery(reader.key, day)
        except StateRowError as e:  # that reader's row costs that reader's digest
            reports.append(_unreadable(reader, day, e))
            continue
        if existing is not None and existing.status in DONE:
            reports.append(DeliveryReport(reader.name, day, "already"))
            continue
        if existing is not None and existing.message is not None:
            outgoing = Outgoing.from_raw(existing.message, day, subscriber.name)
            queue.append(_Queued(reader.key, outgoing, len(existing.entry_ids), existing.attempts))
            continue
        if not dry_run and store.fold_undelivered(reader.key, before=day):
            log.info("%s: an earlier undelivered digest is folded into today's", reader.name)
        try:
            digest = build_digest(config, store, reader, now, problems, ranker, day=day)
        except StateRowError as e:
            reports.append(_unreadable(reader, day, e))
            continue
        if not digest.picks:
            if not dry_run:
                store.record_delivery(_delivery(digest, "empty", None, None, now))
            reports.append(DeliveryReport(reader.name, day, "dry-run" if dry_run else "empty"))
            continue
        rendered = render(digest, config.settings.templates, config.settings.unsubscribe_url)
        message = _compose(config, subscriber, digest, rendered, now)
        outgoing = Outgoing.of(message, day, subscriber.name)
        row = _delivery(digest, "pending", str(message["Message-ID"]), None, now)
        queue.append(
            _Queued(reader.key, outgoing, len(digest.picks), 0, replace(row, message=outgoing.raw))
        )
    if dry_run:
        reports.extend(
            DeliveryReport(q.outgoing.name, q.outgoing.local_date, "dry-run", q.picks)
            for q in queue
        )
    elif queue:
        reports.extend(await _send_all(config, store, queue))
    for output in config.markdown:
        reports.append(
            _write_markdown(config, store, output, now, problems, dry_run=dry_run, ranker=ranker)
        )
    return reports


def _unreadable(reader: Reader, day: date, error: StateRowError) -> DeliveryReport:
    log.error("%s", error)
    return DeliveryReport(reader.name, day, "failed", error=str(error))


@dataclass(frozen=True, slots=True)
class _Queued:
    reader_key: str
    outgoing: Outgoing
    picks: int
    #: tries already made in earlier runs
    attempts: int
    #: the outbox row to store (pending, with the message) before the first try; None when
    #: the message is already in the outbox
    row: Delivery | None = None


#: pending rows stored per transaction while the previous ones are being sent
OUTBOX_CHUNK = 32


def _compose(
    config: Config, subscriber: Subscriber, digest: Digest, rendered: RenderedDigest, now: datetime
) -> EmailMessage:
    from .send import compose, message_id

    sender = config.smtp.sender if config.smtp else f"{config.settings.title} <digest@localhost>"
    return compose(
        sender=sender,
        to_name=subscriber.name,
        to_address=subscriber.email,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        msg_id=message_id(digest.reader.key, digest.local_date.isoformat(), sender),
        now=now,
        list_name=config.settings.title,
        unsubscribe_url=config.settings.unsubscribe_url,
    )


async def _send_all(config: Config, store: Store, queue: Sequence[_Queued]) -> list[DeliveryReport]:
    """Send over a few persistent connections at once; each message is retried on its own.

    The outbox is written by one thread of its own while the connections keep sending: the
    pending rows, OUTBOX_CHUNK messages per transaction, each chunk committed before any of
    its messages is handed to a connection (a crash before a commit has sent none of them,
    and the next run builds them again); and one commit after each 250, which the message's
    coroutine waits for while the other connections go on. While sending, that thread is
    the only user of the store's connection; leaving the executor waits for a commit under
    way, even when the run is interrupted."""
    from .send import FileMailer, SmtpMailer

    smtp = config.smtp
    count = min(smtp.connections, len(queue)) if smtp else 1
    work: asyncio.Queue[_Queued | None] = asyncio.Queue()
    reports: list[DeliveryReport] = []
    ledger = _Ledger(store)

    async def stock() -> None:
        try:
            for start in range(0, len(queue), OUTBOX_CHUNK):
                chunk = queue[start : start + OUTBOX_CHUNK]
                await ledger.record([q.row for q in chunk if q.row is not None])
                for item in chunk:
                    work.put_nowait(item)
        finally:
            for _ in range(count):
                work.put_nowait(None)

    async def worker(mailer: Mailer) -> None:
        try:
            while (item := await work.get()) is not None:
                reports.append(await _deliver_one(config, ledger, mailer, item))
        finally:
            await mailer.close()

    with ledger:
        mailers: list[Mailer] = (
            [SmtpMailer(smtp) for _ in range(count)]
            if smtp
            else [FileMailer(config.settings.output)]
        )
        # Every task ends (the workers finish what they hold) before an error is raised.
        done = await asyncio.gather(
            stock(), *(worker(mailer) for mailer in mailers), return_exceptions=True
        )
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    order = {q.outgoing.name: i for i, q in enumerate(queue)}
    return sorted(reports, key=lambda r: order[r.reader])


class _Ledger:
    """The store's outbox methods, run on a thread of their own (see _send_all)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-outbox")

    def __enter__(self) -> _Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.shutdown(wait=True)

    async def record(self, rows: Sequence[Delivery]) -> None:
        if rows:
            call = partial(self._store.record_deliveries, rows)
            await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def mark_done(
        self, reader: str, day: date, status: str, target: str, *, attempts: int
    ) -> None:
        call = partial(self._store.mark_done, reader, day, status, target, attempts=attempts)
        await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def mark_undelivered(
        self, reader: str, day: date, status: str, error: str, *, attempts: int
    ) -> None:
        call = partial(self._store.mark_undelivered, reader, day, status, error, attempts=attempts)
        await asyncio.get_running_loop().run_in_executor(self._thread, call)


async def _deliver_one(
    config: Config, ledger: _Ledger, mailer: Mailer, item: _Queued
) -> DeliveryReport:
    out = item.outgoing
    attempts = config.smtp.attempts if config.smtp else 1
    backoff = config.smtp.backoff if config.smtp else 0.0
    done = item.attempts
    for attempt in range(attempts):
        fault_point("before-send")
        done += 1
        try:
            target = await mailer.send(out)
        except DeliveryError as e:
            final = not e.transient or attempt == attempts - 1
            if not final:
                log.info("%s: %s; trying again", out.name, e.reason)
                await asyncio.sleep(backoff * 2**attempt)
                continue
            log.error("%s", e)
            kept = "pending" if e.transient else "failed"
            await ledger.mark_undelivered(
                item.reader_key, out.local_date, kept, e.reason, attempts=done
            )
            return DeliveryReport(out.name, out.local_date, "failed", error=e.reason)
        fault_point("after-250")
        outcome: Literal["sent", "written"] = "sent" if config.smtp else "written"
        await ledger.mark_done(item.reader_key, out.local_date, outcome, target, attempts=done)
        fault_point("after-commit")
        return DeliveryReport(out.name, out.local_date, outcome, item.picks, target)
    raise AssertionError("unreachable: the last attempt always returns")


def fault_point(step: str) -> None:
    """Crash-test hook: DIGEST_FAULT=STEP[:N] kills this process with SIGKILL the Nth time it
    reaches STEP (before-send, after-250, after-commit). Unset, as in normal use, it does
    nothing. tests/test_outbox.py uses it to prove the outbox survives a crash anywhere."""
    wanted = os.environ.get("DIGEST_FAULT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != step:
        return
    _fault_counts[step] = _fault_counts.get(step, 0) + 1
    if _fault_counts[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_fault_counts: dict[str, int] = {}


def _write_markdown(
    config: Config,
    store: Store,
    output: MarkdownOutput,
    now: datetime,
    problems: Sequence[str],
    *,
    dry_run: bool,
    ranker: Ranker | None = None,
) -> DeliveryReport:
    from .render import render, render_index
    from .send import write_atomic

    reader = markdown_reader(config, output)
    day = local_date(reader, now)
    try:
        if store.delivery(reader.key, day) is not None:
            return DeliveryReport(reader.name, day, "already")
        digest = build_digest(config, store, reader, now, problems, ranker)
    except StateRowError as e:
        return _unreadable(reader, day, e)
    path = Path(output.path.replace("{date}", day.isoformat()))
    if dry_run:
        return DeliveryReport(reader.name, day, "dry-run", len(digest.picks), str(path))
    try:
        write_atomic(path, render(digest, config.settings.templates).markdown.encode())
    except OSError as e:
        log.error("cannot write %s: %s", path, e.strerror)
        return DeliveryReport(reader.name, day, "failed", error=f"cannot write {path}")
    store.record_delivery(_delivery(digest, "written", None, str(path), now))
    if output.index is not None:
        pages = [
            (d.local_date, os.path.relpath(d.target, output.index.parent), len(d.entry_ids))
            for d in store.deliveries(reader.key)
            if d.status == "written" and d.target
        ]
        try:
            write_atomic(output.index, render_index(config.settings.title, pages).encode())
        except OSError as e:
            log.error("cannot write the index %s: %s", output.index, e.strerror)
    return DeliveryReport(reader.name, day, "written", len(digest.picks), str(path))


def archive(config: Config, out: Path) -> list[Path]:
    """Render every Markdown page in the ledger into `out` as HTML, with an index page.

    Pages go to `out/<profile>/<date>.html`, so several [[markdown]] outputs can share one
    archive. Returns the paths written."""
    from .render import archive_page
    from .send import file_stem, write_atomic

    written: list[Path] = []
    sections: list[str] = []
    with open_store(config.settings.state, "read") as store:
        for output in config.markdown:
            reader = markdown_reader(config, output)
            folder = out / file_stem(output.profile)
            lines = [f"## {output.profile}", ""]
            for d in store.deliveries(reader.key):
                source = Path(d.target) if d.target else None
                if d.status != "written" or source is None or not source.is_file():
                    continue
                page = folder / f"{d.local_date.isoformat()}.html"
                html = archive_page(
                    f"{config.settings.title} — {d.local_date}",
                    source.read_text(encoding="utf-8"),
                    up="../index.html",
                )
                write_atomic(page, html.encode())
                written.append(page)
                count = len(d.entry_ids)
                lines.append(f"- [{d.local_date}]({folder.name}/{page.name}) — {count} new")
            sections.append("\n".join(lines))
    index = "\n\n".join([f"# {config.settings.title}", *sections]) + "\n"
    write_atomic(out / "index.html", archive_page(config.settings.title, index).encode())
    return written


def _delivery(
    digest: Digest,
    status: DeliveryStatus,
    msg_id: str | None,
    target: str | None,
    now: datetime,
) -> Delivery:
    return Delivery(
        reader=digest.reader.key,
        local_date=digest.local_date,
        status=status,
        message_id=msg_id,
        entry_ids=tuple(pick.entry.id for pick in digest.picks),
        cutoff=digest.generated_at,
        created_at=now,
        target=target,
    )


def run(
    config: Config,
    now: datetime,
    *,
    dry_run: bool = False,
    on_feed: Callable[[FetchResult], None] | None = None,
) -> RunReport:
    """Collect, then deliver today's digests. A dry run works on a scratch store: nothing it
    does reaches the state."""
    if not dry_run:
        check_secrets(config)
    with open_store(config.settings.state, "scratch" if dry_run else "write") as store:
        feeds = asyncio.run(collect(config, store, now, on_feed))
        deliveries = asyncio.run(deliver(config, store, now, dry_run=dry_run))
        problems = store.problems()
    return RunReport(tuple(feeds), tuple(deliveries), problems)


def collect_only(
    config: Config, now: datetime, on_feed: Callable[[FetchResult], None] | None = None
) -> list[FeedReport]:
    with open_store(config.settings.state, "write") as store:
        return asyncio.run(collect(config, store, now, on_feed))


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
