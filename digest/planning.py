"""The calendar of deliveries: when each scheduled reader (a subscriber, a webhook) is due,
in their own time zone, and what `digest status` says about them.

APScheduler 3.11's CronTrigger fires a `send_at` that falls in a spring-forward gap at the
wall time read with the old offset, and one in a fall-back fold twice; so `digest schedule`,
the daemon's triggers (schedule.py) and the tests all use this calendar instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from .errors import StateRowError
from .models import DONE, Config, Delivery, Subscriber, WebhookOutput
from .state import open_store

Decision = Literal["send", "done", "missed", "refused"]
#: what `digest serve` delivers at its own send_at: subscribers' emails and webhooks
Scheduled = Subscriber | WebhookOutput


def scheduled(config: Config) -> tuple[Scheduled, ...]:
    """Every reader the daemon delivers at its own send_at, in config order."""
    return (*config.subscribers, *config.webhooks)


def reader_key(item: Scheduled) -> str:
    """The reader's key in the deliveries ledger."""
    kind = "subscriber" if isinstance(item, Subscriber) else "webhook"
    return f"{kind}:{item.name}"


@dataclass(frozen=True, slots=True)
class Planned:
    """One planned delivery: a subscriber's digest for one of their local dates."""

    subscriber: str
    local_date: date
    #: when it is due (timezone-aware UTC)
    at: datetime
    #: the subscriber's IANA zone
    timezone: str

    @property
    def local(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.timezone))


def delivery_time(send_at: time, zone: str, day: date) -> datetime | None:
    """The UTC instant of `send_at` on local date `day` in `zone`.

    In a fall-back fold that is the first occurrence; in a spring-forward gap, the first
    valid minute after it (the instant the clocks jumped). None when the gap swallows the rest
    of the day (Samoa skipped 2011-12-30 entirely).
    """
    tz = ZoneInfo(zone)
    wall = datetime.combine(day, send_at)
    first = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the earlier of two readings
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=1 reads the wall time with the offset after the jump (an instant before
    # it) and fold=0 with the offset before (an instant after it): bisect the minutes between.
    jumped = first.astimezone(tz).utcoffset()
    lo = int(wall.replace(tzinfo=tz, fold=1).timestamp()) // 60
    hi = -(-int(first.timestamp()) // 60)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid * 60, tz).utcoffset() == jumped:
            hi = mid
        else:
            lo = mid
    at = datetime.fromtimestamp(hi * 60, UTC)
    return at if at.astimezone(tz).date() == day else None


def next_delivery(subscriber: Scheduled, after: datetime) -> Planned:
    """The subscriber's first planned delivery strictly after `after`."""
    day = after.astimezone(ZoneInfo(subscriber.timezone)).date() - timedelta(days=1)
    while True:
        at = delivery_time(subscriber.send_at, subscriber.timezone, day)
        if at is not None and at > after:
            return Planned(subscriber.name, day, at, subscriber.timezone)
        day += timedelta(days=1)


def last_due(subscriber: Scheduled, now: datetime) -> Planned | None:
    """The subscriber's latest planned delivery at or before `now`."""
    day = now.astimezone(ZoneInfo(subscriber.timezone)).date() + timedelta(days=1)
    for _ in range(4):
        at = delivery_time(subscriber.send_at, subscriber.timezone, day)
        if at is not None and at <= now:
            return Planned(subscriber.name, day, at, subscriber.timezone)
        day -= timedelta(days=1)
    return None


def calendar(subscribers: Sequence[Scheduled], start: date, days: int) -> list[Planned]:
    """Every planned delivery for each subscriber's local dates start … start + days - 1."""
    plans = []
    for sub in subscribers:
        for n in range(days):
            day = start + timedelta(days=n)
            at = delivery_time(sub.send_at, sub.timezone, day)
            if at is not None:
                plans.append(Planned(sub.name, day, at, sub.timezone))
    return sorted(plans, key=lambda p: (p.at, p.subscriber))


def calendar_line(planned: Planned) -> str:
    """`subscriber<TAB>UTC<TAB>local with offset`, as `digest schedule` prints it."""
    return f"{planned.subscriber}\t{planned.at:%Y-%m-%dT%H:%M:%SZ}\t{planned.local.isoformat()}"


def decide(
    due: Planned,
    status: str | None,
    last_done: date | None,
    now: datetime,
    catch_up: timedelta,
) -> Decision:
    """What to do about a subscriber's latest due delivery, given the ledger.

    `status` is the ledger's row for the due date (None: no row), `last_done` the latest local
    date the reader has had a digest for. The ledger comes first; lateness only decides
    between sending now and folding the date into the next digest. A digest the server
    refused for good (a 5xx, status "failed") is not tried again by the daemon.
    """
    if status in DONE or (last_done is not None and last_done >= due.local_date):
        return "done"
    if status == "failed":
        return "refused"
    if now - due.at > catch_up:
        return "missed"
    return "send"


@dataclass(frozen=True, slots=True)
class SubscriberStatus:
    """What `digest status` shows for one subscriber."""

    name: str
    next: Planned
    #: one line: the latest due delivery and what became of it
    last_result: str


def statuses(config: Config, now: datetime) -> list[SubscriberStatus]:
    """Each scheduled reader's status, read without a lock so that it never waits for, or
    blocks, the daemon."""
    result = []
    with open_store(config.settings.state, "read") as store:
        for sub in scheduled(config):
            key = reader_key(sub)
            due = last_due(sub, now)
            try:
                row = store.delivery(key, due.local_date) if due is not None else None
                last = store.last_delivery(key)
                shown = _last_result(config, due, row, last, now)
            except StateRowError as e:
                shown = str(e)
            result.append(SubscriberStatus(sub.name, next_delivery(sub, now), shown))
    return result


def _last_result(
    config: Config,
    due: Planned | None,
    row: Delivery | None,
    last: Delivery | None,
    now: datetime,
) -> str:
    if last is not None and (due is None or row is None or row.status in DONE):
        shown = row if row is not None and row.status in DONE else last
        when = shown.created_at.astimezone(ZoneInfo(due.timezone if due else "UTC"))
        picks = f", {len(shown.entry_ids)} picks" if shown.status != "empty" else ""
        return f"{shown.local_date} {shown.status}{picks} at {when.isoformat(timespec='seconds')}"
    if due is None or (last is None and row is None):
        return "nothing delivered yet"
    if row is not None:  # in the outbox: pending, failed or folded
        error = f" ({row.last_error})" if row.last_error else ""
        return f"{due.local_date} {row.status}, not delivered{error}"
    decision = decide(due, None, None, now, config.settings.catch_up)
    if decision == "missed":
        return f"{due.local_date} missed; its entries go into the next digest"
    return f"{due.local_date} due since {due.local.isoformat(timespec='minutes')}, not sent yet"
