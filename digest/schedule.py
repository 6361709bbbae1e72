"""`digest serve`: each subscriber's digest at their `send_at`, in their own time zone, once.

Who decides what:

- **The calendar is ours** (`delivery_time`, `next_delivery`, `last_due`, `calendar`).
  APScheduler 3.11's CronTrigger fires a `send_at` that falls in a spring-forward gap at the
  wall time read with the old offset (02:30 on the Berlin change day fires at 03:30 CEST, not at
  the first valid minute, 03:00), and one in a fall-back fold twice (02:30 CEST, then 02:30
  CET). So `digest schedule`, the daemon's triggers and the tests all use this calendar.
- **APScheduler is the timer**: a BackgroundScheduler whose triggers ask the calendar for their
  next fire time, one job per subscriber plus one that collects the feeds shortly before
  deliveries, all run one at a time by a single worker thread.
- **The deliveries ledger decides exactly-once**: every job looks up the reader's row for the
  due local date before doing anything, so neither a restart, a coalesced or late run, nor a
  system clock stepping backwards can send a date twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time as monotonic_time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from . import pipeline, state
from .config import load_config
from .errors import ConfigError, DigestError, StateLockedError, StateRowError
from .models import Config
from .planning import (
    Decision,
    Planned,
    Scheduled,
    SubscriberStatus,
    calendar,
    calendar_line,
    decide,
    delivery_time,
    last_due,
    next_delivery,
    reader_key,
    scheduled,
    statuses,
)
from .state import Store, open_store

log = logging.getLogger("digest")

#: feeds are collected this long before a delivery (unless collected within `collect_every`)
COLLECT_LEAD = timedelta(minutes=5)
#: a failed delivery is tried again after this long, while still within `catch_up`
RETRY_AFTER = timedelta(minutes=10)
#: how long a job waits for the state file while another process (`digest run`) holds it
STORE_WAIT = 300.0
#: seconds between wall-clock re-checks, so a suspend or a clock step never oversleeps a send
WAKE_EVERY = 30.0


__all__ = [
    "Daemon",
    "Decision",
    "Planned",
    "SubscriberStatus",
    "calendar",
    "calendar_line",
    "decide",
    "delivery_time",
    "last_due",
    "next_delivery",
    "scheduled",
    "serve",
    "status",
]


def status(config: Config, now: datetime) -> tuple[int | None, list[SubscriberStatus]]:
    """The pid of the running daemon (None: none; -1: its pid unknown) and each scheduled
    reader's status, read without a lock so that it never waits for, or blocks, the daemon."""
    return serving_pid(config.settings.state), statuses(config, now)


# --- the daemon's jobs, with the clock passed in -----------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduler job: an id, a trigger (asked for its next fire time), what it runs."""

    id: str
    #: an APScheduler trigger
    trigger: Any
    run: Callable[[], Sequence[pipeline.DeliveryReport]]


class SendAtTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at each of one subscriber's planned deliveries."""

    __slots__ = ("subscriber",)

    def __init__(self, subscriber: Scheduled) -> None:
        self.subscriber = subscriber

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return next_delivery(self.subscriber, previous_fire_time or now).at

    def __str__(self) -> str:
        return f"send_at {self.subscriber.send_at:%H:%M} {self.subscriber.timezone}"


class CollectTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires `lead` before every planned delivery of any subscriber."""

    __slots__ = ("lead", "subscribers")

    def __init__(self, subscribers: Sequence[Scheduled], lead: timedelta) -> None:
        self.subscribers = tuple(subscribers)
        self.lead = lead

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if not self.subscribers:
            return None
        after = (previous_fire_time or now) + self.lead
        return min(next_delivery(s, after).at for s in self.subscribers) - self.lead

    def __str__(self) -> str:
        return f"{self.lead} before each delivery"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Actions(Protocol):
    """The two things the daemon does to the world; `PipelineActions` does them for real."""

    def collect(
        self, config: Config, store: Store, now: datetime
    ) -> Sequence[pipeline.FeedReport]: ...

    def deliver(
        self, config: Config, store: Store, now: datetime, only: Mapping[str, date]
    ) -> Sequence[pipeline.DeliveryReport]: ...


class PipelineActions:
    """Collect and deliver with the pipeline, exactly as `digest run` does."""

    def collect(self, config: Config, store: Store, now: datetime) -> Sequence[pipeline.FeedReport]:
        return asyncio.run(pipeline.collect(config, store, now))

    def deliver(
        self, config: Config, store: Store, now: datetime, only: Mapping[str, date]
    ) -> Sequence[pipeline.DeliveryReport]:
        return asyncio.run(pipeline.deliver(config, store, now, only=only))


class Daemon:
    """What the scheduler's jobs do. Every decision reads the clock it is given and the ledger,
    so the tests drive it through a simulated year without sleeping."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime] = _utc_now,
        actions: Actions | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.actions = actions or PipelineActions()
        #: set on SIGTERM/SIGINT: jobs not yet started do nothing
        self.stopping = threading.Event()
        #: when this process last collected, to skip opening the state file when fresh
        self._collected: datetime | None = None

    def jobs(self) -> list[JobSpec]:
        specs = [
            JobSpec(
                f"deliver:{sub.name}",
                SendAtTrigger(sub),
                partial(self.deliver_due, [sub.name]),
            )
            for sub in scheduled(self.config)
        ]
        collect = CollectTrigger(scheduled(self.config), COLLECT_LEAD)
        specs.append(JobSpec("collect", collect, self.collect_due))
        return specs

    def catch_up(self) -> list[pipeline.DeliveryReport]:
        """On start and reload: send what is due within `catch_up`, log what is folded."""
        return self.deliver_due([s.name for s in scheduled(self.config)])

    def deliver_due(self, names: Sequence[str]) -> list[pipeline.DeliveryReport]:
        """Deliver each named subscriber's latest due digest, unless the ledger has it or it
        is later than `catch_up` (then its entries go into the next digest)."""
        if self.stopping.is_set():
            return []
        config = self.config
        now = self.clock()
        by_name = {s.name: s for s in scheduled(config)}
        with self._store() as store:
            due: dict[str, date] = {}
            for name in names:
                sub = by_name.get(name)
                planned = last_due(sub, now) if sub is not None else None
                if sub is None or planned is None:
                    continue
                key = reader_key(sub)
                try:
                    row = store.delivery(key, planned.local_date)
                    last = store.last_delivery(key)
                except StateRowError as e:  # costs this subscriber's delivery only
                    log.error("delivery %s %s: FAILED: %s", name, planned.local_date, e)
                    continue
                decision = decide(
                    planned,
                    row.status if row is not None else None,
                    last.local_date if last is not None else None,
                    now,
                    config.settings.catch_up,
                )
                if decision == "send":
                    due[name] = planned.local_date
                elif decision == "missed" and last is not None:
                    # (a reader never delivered to has nothing to fold: no warning at first start)
                    log.warning(
                        "%s %s: missed (due %s, %s ago, over catch_up %s); its entries go into "
                        "the next digest",
                        name,
                        planned.local_date,
                        planned.local.isoformat(timespec="minutes"),
                        _span(now - planned.at),
                        _span(config.settings.catch_up),
                    )
            if not due:
                return []
            self._collect_if_stale(store, now)
            reports = list(self.actions.deliver(config, store, now, due))
        for report in reports:
            _log_delivery(report)
        return reports

    def collect_due(self) -> list[pipeline.DeliveryReport]:
        """Collect the feeds unless that was done within `collect_every`."""
        if self.stopping.is_set():
            return []
        now = self.clock()
        if self._collected is not None and self._fresh(self._collected, now):
            return []
        with self._store() as store:
            self._collect_if_stale(store, now)
        return []

    def retry_at(self, name: str) -> datetime | None:
        """When to try a failed delivery again: RETRY_AFTER from now, if still within
        `catch_up` of its due time and the outbox holds it as pending (a digest the server
        refused for good is not retried)."""
        sub = next((s for s in scheduled(self.config) if s.name == name), None)
        now = self.clock()
        planned = last_due(sub, now) if sub is not None else None
        if sub is None or planned is None:
            return None
        if now + RETRY_AFTER - planned.at > self.config.settings.catch_up:
            return None
        with self._store() as store:
            try:
                row = store.delivery(reader_key(sub), planned.local_date)
            except StateRowError:
                return None  # reported when the delivery was tried
        return now + RETRY_AFTER if row is not None and row.status == "pending" else None

    def _collect_if_stale(self, store: Store, now: datetime) -> None:
        last = last_collection(self.config, store, now)
        if last is not None and self._fresh(last, now):
            return
        feeds = self.actions.collect(self.config, store, now)
        self._collected = now
        failed = [f for f in feeds if f.status == "error"]
        log.info(
            "collected %d feeds: %d new entries, %d failed",
            len(feeds),
            sum(f.new for f in feeds),
            len(failed),
        )
        for f in failed:
            log.warning("  feed %r failed: %s", f.name, f.error)

    def _fresh(self, collected: datetime, now: datetime) -> bool:
        return timedelta(0) <= now - collected < self.config.settings.collect_every

    @contextmanager
    def _store(self) -> Iterator[Store]:
        """The state file, waiting while another process (a manual `digest run`) has it."""
        deadline = monotonic_time.monotonic() + STORE_WAIT
        while True:
            try:
                store = open_store(self.config.settings.state, "write")
                break
            except StateLockedError:
                if monotonic_time.monotonic() > deadline or self.stopping.wait(0.5):
                    raise
        try:
            yield store
        finally:
            store.close()


def last_collection(config: Config, store: Store, now: datetime) -> datetime | None:
    """When every configured feed that is due was last fetched (None: some feed never was).
    Gone feeds and feeds told to wait are left out: they would make every check stale."""
    statuses = store.feed_statuses()
    times = [
        statuses[f.key].last_attempt if f.key in statuses else None
        for f in config.feeds
        if pipeline.held_report(f, statuses.get(f.key), now) is None
    ]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _log_delivery(report: pipeline.DeliveryReport) -> None:
    day = report.local_date.isoformat()
    match report.outcome:
        case "failed":
            log.error("delivery %s %s: FAILED: %s", report.reader, day, report.error)
        case "empty":
            log.info("delivery %s %s: nothing new, no email", report.reader, day)
        case "already":
            log.info("delivery %s %s: already delivered", report.reader, day)
        case _:
            target = f" → {report.target}" if report.target else ""
            log.info(
                "delivery %s %s: %s, %d picks%s",
                report.reader,
                day,
                report.outcome,
                report.picks,
                target,
            )


# --- the process: lock, signals, APScheduler ------------------------------------------------


@contextmanager
def daemon_lock(state_path: Path | str) -> Iterator[None]:
    """Held for the daemon's lifetime, on the state itself (so a second daemon on the same
    database is refused under any of its names), beside the writer lock that each job
    takes only while it runs, so `digest run` and `digest status` still work meanwhile."""
    with state.daemon_lock(state_path):
        yield


def serving_pid(state_path: Path | str) -> int | None:
    """The pid of the `digest serve` holding this state (-1: one does, pid unknown), or
    None when none runs."""
    return state.serving_pid(state_path)


def serve(config_path: Path, config: Config) -> None:
    """Run until SIGTERM or SIGINT (finishing the delivery in flight); reload on SIGHUP."""
    pipeline.check_secrets(config)
    with daemon_lock(config.settings.state):
        daemon = Daemon(config)
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            # Run late jobs once, whatever the delay (misfire_grace_time=None: APScheduler's
            # default of 1 s would drop a delivery queued behind another); the job itself
            # compares the delay with catch_up and asks the ledger.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        stop = threading.Event()
        reload = threading.Event()
        previous = {
            sig: signal.signal(sig, _setter(stop)) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _setter(reload))
        try:
            _install(scheduler, daemon)
            scheduler.start()
            log.info(
                "serving %d subscribers from %s (pid %d)",
                len(config.subscribers),
                config_path,
                os.getpid(),
            )
            waited = 0.0
            while not stop.wait(1.0):
                if reload.is_set():
                    reload.clear()
                    _reload(config_path, daemon, scheduler)
                waited += 1.0
                if waited >= WAKE_EVERY:
                    waited = 0.0
                    scheduler.wakeup()
            log.info("stopping: finishing the delivery in progress, if any")
        finally:
            daemon.stopping.set()
            if scheduler.running:
                scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopped")


def _setter(event: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    return handler


def _install(scheduler: BackgroundScheduler, daemon: Daemon) -> None:
    """Add every job, plus a catch-up run now; the ledger keeps that from sending twice."""
    for spec in daemon.jobs():
        run = spec.run
        if spec.id.startswith("deliver:"):
            run = _retrying(scheduler, daemon, spec.id.removeprefix("deliver:"), run)
        scheduler.add_job(_guarded(run), spec.trigger, id=spec.id, name=spec.id)
    scheduler.add_job(_guarded(daemon.catch_up), id="catch-up", name="catch-up")
    for sub in scheduled(daemon.config):
        planned = next_delivery(sub, daemon.clock())
        log.info(
            "%s: next delivery %s (%s)",
            sub.name,
            planned.local.isoformat(timespec="minutes"),
            f"{planned.at:%Y-%m-%dT%H:%MZ}",
        )


def _retrying(
    scheduler: BackgroundScheduler,
    daemon: Daemon,
    name: str,
    run: Callable[[], Sequence[pipeline.DeliveryReport]],
) -> Callable[[], Sequence[pipeline.DeliveryReport]]:
    def job() -> Sequence[pipeline.DeliveryReport]:
        reports = run()
        if any(r.outcome == "failed" for r in reports):
            when = daemon.retry_at(name)
            if when is not None:
                log.info("%s: trying again at %s", name, f"{when:%H:%M:%SZ}")
                retry = _guarded(lambda: daemon.deliver_due([name]))
                scheduler.add_job(
                    retry, DateTrigger(when), id=f"retry:{name}", replace_existing=True
                )
        return reports

    return job


def _guarded(
    run: Callable[[], Sequence[pipeline.DeliveryReport]],
) -> Callable[[], None]:
    """A job that logs our own errors as one line (a bug keeps its traceback, via APScheduler)."""

    def job() -> None:
        try:
            run()
        except DigestError as e:
            log.error("error: %s", e)

    return job


def _reload(config_path: Path, daemon: Daemon, scheduler: BackgroundScheduler) -> None:
    try:
        config = load_config(config_path)
        pipeline.check_secrets(config)
    except ConfigError as e:
        log.error("reload refused, keeping the running configuration: %s", e)
        return
    if config.settings.state != daemon.config.settings.state:
        log.error(
            "reload refused, keeping the running configuration: the state file cannot change "
            "while serving (restart instead)"
        )
        return
    daemon.config = config
    scheduler.remove_all_jobs()
    _install(scheduler, daemon)
    log.info("reloaded %s: %d subscribers", config_path, len(config.subscribers))
