"""Collecting: fetch every feed that is due, parse what changed, merge duplicates, store
what is new; and the feed-health rules (when a feed is held back, when readers are told
about a failing one), decided here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from .dedupe import merge
from .errors import FeedError
from .fetch import DATE_PLACEHOLDER, fetch_all, is_transient, retry_at
from .models import Config, FeedConfig, FeedStatus, FetchResult
from .state import Store, open_store
from .urls import state_key

#: a failing feed is listed in digests once it has not worked for this long
FEED_PROBLEM_AFTER = timedelta(hours=24)


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


async def collect(
    config: Config,
    store: Store,
    now: datetime,
    on_feed: Callable[[FetchResult], None] | None = None,
) -> list[FeedReport]:
    """Fetch every feed that is due and store what is new; one failing feed never stops
    the others. Gone feeds and feeds told to wait (Retry-After, backoff) are skipped."""
    statuses = _rekeyed(store, config, store.feed_statuses())
    held = {f.url: r for f in config.feeds if (r := held_report(f, statuses.get(f.key), now))}
    due = [f for f in config.feeds if f.url not in held]
    day = now.astimezone(ZoneInfo(config.settings.timezone)).date()
    results = await fetch_all(due, statuses, now, day=day, settings=config.fetch, on_done=on_feed)
    with store.batch():
        done = {r.feed.url: _store_result(store, r, statuses.get(r.feed.key), now) for r in results}
        store.prune(now, config.settings.keep_days)
    return [held.get(f.url) or done[f.url] for f in config.feeds]


def _rekeyed(
    store: Store, config: Config, statuses: dict[str, FeedStatus]
) -> dict[str, FeedStatus]:
    """Feeds recorded under a URL holding a credential or token (by an earlier digest) move
    to their secret-free key (FeedConfig.key), the secret overwritten in the state."""
    moved = False
    for feed in config.feeds:
        old = statuses.get(feed.url)
        if feed.key == feed.url or old is None or feed.key in statuses:
            continue
        fetched = state_key(old.fetched_url) if old.fetched_url else None
        store.rekey_feed(
            feed.url, feed.key, fetched_url=fetched, moved_to=old.moved_to,
            last_error=old.last_error,
        )  # fmt: skip
        moved = True
    return store.feed_statuses() if moved else statuses


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
            feed.key, feed.name, now, status=status, error=result.error, moved_to=moved,
            gone=gone, next_fetch=until, failures=failures,
        )  # fmt: skip
        return FeedReport(
            feed.name, "gone" if gone else "error", error=result.error, until=until,
            moved_to=moved,
        )  # fmt: skip
    record_ok = partial(
        store.record_feed,
        feed.key,
        feed.name,
        now,
        status=status,
        etag=result.etag,
        last_modified=result.last_modified,
        # only to tell whether the validators belong to the URL asked: its key is enough
        fetched_url=state_key(fetched) if (fetched := moved or result.url) else None,
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
            # where the body came from, after redirects, and its Content-Location: what
            # relative links are resolved against
            url=result.final_url or moved or result.url,
            content_type=result.content_type,
            content_location=result.content_location,
        )
    except FeedError as e:
        store.record_feed(feed.key, feed.name, now, status=status, error=e.reason, moved_to=moved)
        return FeedReport(feed.name, "error", error=e.reason, moved_to=moved)
    new = record_ok(candidates=merge([(feed.name, feed.url, parsed.entries)]))
    return FeedReport(feed.name, "ok", new=new, warning=parsed.problem, moved_to=moved)


def feed_problems(config: Config, statuses: dict[str, FeedStatus], now: datetime) -> list[str]:
    """Feeds the reader should know about: gone ones, ones backing off, and ones failing
    that have not worked for FEED_PROBLEM_AFTER (or ever)."""
    problems = []
    for feed in config.feeds:
        status = statuses.get(feed.key)
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
    return [(feed, statuses.get(feed.key)) for feed in config.feeds]
