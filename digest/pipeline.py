"""One run: collect every feed, then build and deliver each reader's digest for today.

The only module that wires all the stages together; the CLI and the scheduler call it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from .dedupe import merge
from .errors import ConfigError, DeliveryError, FeedError
from .fetch import fetch_all
from .models import (
    Config,
    Delivery,
    Digest,
    FeedStatus,
    FetchResult,
    MarkdownOutput,
    Reader,
    RenderedDigest,
    Subscriber,
)
from .parse import parse_feed
from .rank import KeywordRanker, Ranker
from .render import render, render_index
from .send import (
    FileMailer,
    Mailer,
    Outgoing,
    compose,
    file_stem,
    message_id,
    smtp_session,
    write_atomic,
)
from .state import Store

log = logging.getLogger("digest")

#: what a reader with no delivery yet gets: entries first seen in this window
NEW_READER_WINDOW = timedelta(hours=24)
#: a failing feed is listed in digests once it has not worked for this long
FEED_PROBLEM_AFTER = timedelta(hours=24)

Outcome = Literal["sent", "written", "empty", "already", "failed", "dry-run"]


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed went in this run."""

    name: str
    status: str
    new: int = 0
    error: str | None = None
    #: a problem that did not stop the feed, such as malformed XML that was recovered
    warning: str | None = None


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
    """Fetch every feed and store what is new; one failing feed never stops the others."""
    results = await fetch_all(config.feeds, store.feed_statuses(), on_done=on_feed)
    return [_store_result(store, result, now) for result in results]


def _store_result(store: Store, result: FetchResult, now: datetime) -> FeedReport:
    feed = result.feed
    status = str(result.status) if result.status is not None else "file"
    if result.error is not None:
        store.record_feed(feed.url, feed.name, now, status=status, error=result.error)
        return FeedReport(feed.name, "error", error=result.error)
    if result.body is None:
        store.record_feed(
            feed.url,
            feed.name,
            now,
            status=status,
            etag=result.etag,
            last_modified=result.last_modified,
        )
        return FeedReport(feed.name, "not modified")
    try:
        parsed = parse_feed(feed.name, result.body)
    except FeedError as e:
        store.record_feed(feed.url, feed.name, now, status=status, error=e.reason)
        return FeedReport(feed.name, "error", error=e.reason)
    new = store.record_feed(
        feed.url,
        feed.name,
        now,
        status=status,
        etag=result.etag,
        last_modified=result.last_modified,
        candidates=merge([(feed.name, feed.url, parsed.entries)]),
    )
    return FeedReport(feed.name, "ok", new=new, warning=parsed.problem)


def feed_problems(config: Config, statuses: dict[str, FeedStatus], now: datetime) -> list[str]:
    """Feeds failing now that have not worked for FEED_PROBLEM_AFTER (or ever)."""
    problems = []
    for feed in config.feeds:
        status = statuses.get(feed.url)
        if status is None or not status.last_error:
            continue
        if status.last_success is None or now - status.last_success > FEED_PROBLEM_AFTER:
            since = (
                f"since {status.last_success:%Y-%m-%d}" if status.last_success else "never worked"
            )
            problems.append(f"{feed.name}: {status.last_error} ({since})")
    return problems


def build_digest(
    config: Config,
    store: Store,
    reader: Reader,
    now: datetime,
    problems: Sequence[str] = (),
    ranker: Ranker | None = None,
) -> Digest:
    """The reader's digest at `now`: entries new since their last delivery, ranked."""
    last = store.last_delivery(reader.key)
    after = last.cutoff if last is not None else now - NEW_READER_WINDOW
    entries = store.new_entries(reader.key, after, now)
    weights = {feed.name: feed.weight for feed in config.feeds}
    picks = (ranker or KeywordRanker()).rank(entries, reader.profile, weights)
    return Digest(
        reader=reader,
        title=config.settings.title,
        local_date=local_date(reader, now),
        generated_at=now,
        picks=tuple(picks),
        considered=len(entries),
        feed_problems=tuple(problems),
    )


async def deliver(
    config: Config, store: Store, now: datetime, *, dry_run: bool = False
) -> list[DeliveryReport]:
    """Send each subscriber's digest and write each Markdown page that is due today."""
    problems = feed_problems(config, store.feed_statuses(), now)
    reports: list[DeliveryReport] = []
    pending: list[tuple[Subscriber, Digest, RenderedDigest]] = []
    for subscriber in config.subscribers:
        reader = subscriber_reader(config, subscriber)
        day = local_date(reader, now)
        if store.delivery(reader.key, day) is not None:
            reports.append(DeliveryReport(reader.name, day, "already"))
            continue
        digest = build_digest(config, store, reader, now, problems)
        if not digest.picks:
            if not dry_run:
                store.record_delivery(_delivery(digest, "empty", None, None, now))
            reports.append(DeliveryReport(reader.name, day, "dry-run" if dry_run else "empty"))
            continue
        pending.append((subscriber, digest, render(digest)))
    if pending:
        reports.extend(await _send_all(config, store, pending, now, dry_run=dry_run))
    for output in config.markdown:
        reports.append(_write_markdown(config, store, output, now, problems, dry_run=dry_run))
    return reports


async def _send_all(
    config: Config,
    store: Store,
    pending: Sequence[tuple[Subscriber, Digest, RenderedDigest]],
    now: datetime,
    *,
    dry_run: bool,
) -> list[DeliveryReport]:
    reports: list[DeliveryReport] = []
    sender = config.smtp.sender if config.smtp else f"{config.settings.title} <digest@localhost>"
    try:
        async with _mailer(config, dry_run) as mailer:
            for subscriber, digest, rendered in pending:
                day = digest.local_date
                msg_id = message_id(digest.reader.key, day.isoformat(), sender)
                message = compose(
                    sender=sender,
                    to_name=subscriber.name,
                    to_address=subscriber.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    msg_id=msg_id,
                    now=now,
                )
                outgoing = Outgoing(message, rendered.html, rendered.text, day, subscriber.name)
                try:
                    target = await mailer.send(outgoing)
                except DeliveryError as e:
                    log.error("%s", e)
                    reports.append(DeliveryReport(subscriber.name, day, "failed", error=e.reason))
                    continue
                status: Literal["sent", "written"] = "sent" if config.smtp else "written"
                if not dry_run:
                    store.record_delivery(_delivery(digest, status, msg_id, target, now))
                outcome: Outcome = "dry-run" if dry_run else status
                reports.append(
                    DeliveryReport(subscriber.name, day, outcome, len(digest.picks), target)
                )
    except DeliveryError as e:
        log.error("%s", e)
        done = {r.reader for r in reports}
        reports.extend(
            DeliveryReport(sub.name, digest.local_date, "failed", error=str(e))
            for sub, digest, _ in pending
            if sub.name not in done
        )
    return reports


def _mailer(config: Config, dry_run: bool) -> AbstractAsyncContextManager[Mailer]:
    if dry_run:
        return _nothing(_DryRunMailer())
    if config.smtp is not None:
        return smtp_session(config.smtp)
    return _nothing(FileMailer(config.settings.output))


@asynccontextmanager
async def _nothing(mailer: Mailer) -> AsyncIterator[Mailer]:
    yield mailer


class _DryRunMailer:
    async def send(self, outgoing: Outgoing) -> str:
        return f"(dry run) {outgoing.message['To']}"


def _write_markdown(
    config: Config,
    store: Store,
    output: MarkdownOutput,
    now: datetime,
    problems: Sequence[str],
    *,
    dry_run: bool,
) -> DeliveryReport:
    reader = markdown_reader(config, output)
    day = local_date(reader, now)
    if store.delivery(reader.key, day) is not None:
        return DeliveryReport(reader.name, day, "already")
    digest = build_digest(config, store, reader, now, problems)
    path = Path(output.path.replace("{date}", day.isoformat()))
    if dry_run:
        return DeliveryReport(reader.name, day, "dry-run", len(digest.picks), str(path))
    try:
        write_atomic(path, render(digest).markdown.encode())
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


def _delivery(
    digest: Digest,
    status: Literal["sent", "written", "empty"],
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
    """Collect, then deliver today's digests. A dry run works on an in-memory copy."""
    if not dry_run:
        check_secrets(config)
    path = config.settings.state
    with Store.copy(path) if dry_run else Store.open(path) as store:
        feeds = asyncio.run(collect(config, store, now, on_feed))
        deliveries = asyncio.run(deliver(config, store, now, dry_run=dry_run))
    return RunReport(tuple(feeds), tuple(deliveries))


def collect_only(
    config: Config, now: datetime, on_feed: Callable[[FetchResult], None] | None = None
) -> list[FeedReport]:
    with Store.open(config.settings.state) as store:
        return asyncio.run(collect(config, store, now, on_feed))


def preview(
    config: Config,
    subscriber_name: str,
    now: datetime,
    on_feed: Callable[[FetchResult], None] | None = None,
) -> Path:
    """Render what the subscriber would get now, on a copy of the state; return the HTML path."""
    subscriber = next((s for s in config.subscribers if s.name == subscriber_name), None)
    if subscriber is None:
        names = ", ".join(s.name for s in config.subscribers) or "none"
        raise ConfigError(
            str(config.path), "subscribers", f"no subscriber named {subscriber_name!r} ({names})"
        )
    with Store.copy(config.settings.state) as store:
        asyncio.run(collect(config, store, now, on_feed))
        problems = feed_problems(config, store.feed_statuses(), now)
        digest = build_digest(config, store, subscriber_reader(config, subscriber), now, problems)
    path = config.settings.output / "preview" / digest.local_date.isoformat()
    path = path / f"{file_stem(subscriber.name)}.html"
    write_atomic(path, render(digest).html.encode())
    return path
