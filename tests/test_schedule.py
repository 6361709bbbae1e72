"""`digest serve` and its calendar: a simulated year with an injected clock (no sleeping), then
the real daemon in a subprocess against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import bisect
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time as wall
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import DIGEST, RunDigest
from servers import SMTPServer

from digest import pipeline
from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Config, Delivery, Subscriber
from digest.schedule import (
    COLLECT_LEAD,
    RETRY_AFTER,
    CollectTrigger,
    Daemon,
    SendAtTrigger,
    calendar,
    decide,
    delivery_time,
    last_due,
    next_delivery,
)
from digest.state import Store

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata")
#: 02:30 is in the spring-forward gap (Berlin, New York, Sydney) and in the fall-back fold
#: (Berlin, Sydney); 01:30 is in New York's fold; 07:00 is an ordinary morning
SEND_AT = ("07:00", "02:30", "01:30")
YEAR = 2026


def _name(zone: str, send_at: str) -> str:
    return f"{zone.split('/')[-1].lower()}-{send_at.replace(':', '')}"


def write_config(
    directory: Path,
    subscribers: list[tuple[str, str, str]],
    *,
    extra: str = "",
    smtp: SMTPServer | None = None,
    feed: Path | None = None,
) -> Path:
    """A config with one local feed, a profile matching every item, and these subscribers
    (name, zone, send_at)."""
    smtp_table = (
        f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n'
        f'from = "Digest <digest@example.org>"\ntimeout = 10\nattempts = 1\n'
        if smtp
        else ""
    )
    subs = "".join(
        f'\n[[subscribers]]\nname = "{name}"\nemail = "{name}@example.org"\nprofile = "all"\n'
        f'send_at = "{send_at}"\ntimezone = "{zone}"\n'
        for name, zone, send_at in subscribers
    )
    config = directory / "digest.toml"
    config.write_text(
        f"""
[digest]
title = "Digest"
state = "state/digest.sqlite"
output = "out"
max_entries = 50
min_score = 0
{extra}

{smtp_table}

[[feeds]]
name = "news"
url = "{feed or directory / "feed.rss"}"

[profiles.all]
keywords = {{ "item" = 1 }}
{subs}"""
    )
    return config


def write_feed(path: Path, items: list[str]) -> None:
    """An RSS feed whose items have these ids (newest first); titles all say "item"."""
    body = "".join(
        f"<item><title>item {i}</title><link>https://example.org/{i}</link>"
        f"<guid>https://example.org/{i}</guid><description>item {i}</description></item>"
        for i in items
    )
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>news</title>'
        f"<link>https://example.org/</link><description>d</description>{body}</channel></rss>"
    )


# --- the calendar -------------------------------------------------------------------------------


def _at(zone: str, hhmm: str, day: str) -> str:
    at = delivery_time(time.fromisoformat(hhmm), zone, date.fromisoformat(day))
    assert at is not None
    return at.astimezone(ZoneInfo(zone)).isoformat()


def test_a_send_at_in_the_spring_forward_gap_is_sent_at_the_first_valid_minute() -> None:
    assert _at("Europe/Berlin", "02:30", "2026-03-29") == "2026-03-29T03:00:00+02:00"
    assert _at("America/New_York", "02:30", "2026-03-08") == "2026-03-08T03:00:00-04:00"
    assert _at("Australia/Sydney", "02:30", "2026-10-04") == "2026-10-04T03:00:00+11:00"
    # the day before and after: the stated minute
    assert _at("Europe/Berlin", "02:30", "2026-03-28") == "2026-03-28T02:30:00+01:00"
    assert _at("Europe/Berlin", "02:30", "2026-03-30") == "2026-03-30T02:30:00+02:00"


def test_a_send_at_in_the_fall_back_fold_is_sent_at_its_first_occurrence() -> None:
    assert _at("Europe/Berlin", "02:30", "2026-10-25") == "2026-10-25T02:30:00+02:00"
    assert _at("America/New_York", "01:30", "2026-11-01") == "2026-11-01T01:30:00-04:00"
    assert _at("Australia/Sydney", "02:30", "2026-04-05") == "2026-04-05T02:30:00+11:00"


def test_a_local_date_that_never_existed_has_no_delivery() -> None:
    # Samoa moved across the date line: 2011-12-29 was followed by 2011-12-31
    assert delivery_time(time(7), "Pacific/Apia", date(2011, 12, 30)) is None
    assert delivery_time(time(7), "Pacific/Apia", date(2011, 12, 31)) is not None


def _config(tmp_path: Path, subscribers: list[tuple[str, str, str]], extra: str = "") -> Config:
    return load_config(write_config(tmp_path, subscribers, extra=extra))


def test_next_and_last_delivery_agree_with_the_calendar(tmp_path: Path) -> None:
    config = _config(
        tmp_path, [(_name(z, s), z, s) for z in ZONES for s in SEND_AT], 'timezone = "UTC"'
    )
    plans = calendar(config.subscribers, date(YEAR, 1, 1), 365)
    for sub in config.subscribers:
        mine = [p for p in plans if p.subscriber == sub.name]
        assert len(mine) == 365
        for before, after in zip(mine, mine[1:], strict=False):
            assert next_delivery(sub, before.at) == after
            assert next_delivery(sub, after.at - timedelta(microseconds=1)) == after
            assert last_due(sub, after.at) == after
            assert last_due(sub, after.at - timedelta(microseconds=1)) == before


def test_the_ledger_decides_and_lateness_only_chooses_send_or_fold() -> None:
    ada = Subscriber("ada", "ada@example.org", "p", time(7), "Europe/Berlin")
    due = last_due(ada, datetime(2026, 11, 20, 7, tzinfo=UTC))
    assert due is not None
    now = due.at + timedelta(hours=1)
    four = timedelta(hours=4)
    assert decide(due, None, None, now, four) == "send"
    assert decide(due, "pending", due.local_date - timedelta(days=1), now, four) == "send"
    assert decide(due, "sent", None, now, four) == "done"
    assert decide(due, "empty", None, now + timedelta(days=3), four) == "done"
    # a clock stepped back (or a later date already delivered): never again
    assert decide(due, None, due.local_date, now, four) == "done"
    assert decide(due, None, due.local_date + timedelta(days=1), now, four) == "done"
    assert decide(due, None, None, due.at + timedelta(hours=5), four) == "missed"
    # refused for good by the server (5xx): the daemon does not keep trying
    assert decide(due, "failed", None, now, four) == "refused"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('catch_up = "soon"', 'must be a duration such as "4h"'),
        ('catch_up = "24h"', "must be under 24h"),
        ('collect_every = "0m"', "must be more than 0"),
        ("collect_every = 60", "must be a string"),
    ],
)
def test_bad_durations_are_config_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _config(tmp_path, [], line)
    assert message in str(e.value) and "digest." in str(e.value)


def test_durations_and_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path, [], 'collect_every = "1h30m"\ncatch_up = "45m"')
    assert config.settings.collect_every == timedelta(minutes=90)
    assert config.settings.catch_up == timedelta(minutes=45)
    default = _config(tmp_path, [])
    assert (default.settings.collect_every, default.settings.catch_up) == (
        timedelta(hours=1),
        timedelta(hours=4),
    )


# --- the simulation ----------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    """The daemon's jobs run the way APScheduler runs them, on a simulated clock."""

    daemon: Daemon
    clock: Clock
    feed: Path | None = None
    #: (subscriber, local date, the instant it was delivered, outcome)
    sent: list[tuple[str, date, datetime, str]] = field(default_factory=list)
    #: scheduled fire times of every delivery job
    fired: list[tuple[str, datetime]] = field(default_factory=list)
    next_run: dict[str, datetime | None] = field(default_factory=dict)
    #: the feed gets a new item every simulated day
    days_fed: set[date] = field(default_factory=set)

    def start(self) -> None:
        """What a (re)start does: jobs from the triggers, then the catch-up run."""
        self.next_run = {
            spec.id: spec.trigger.get_next_fire_time(None, self.clock.now)
            for spec in self.daemon.jobs()
        }
        self._feed()
        self._record(self.daemon.catch_up())

    def run_until(self, end: datetime, latency: timedelta = timedelta(seconds=3)) -> None:
        specs = {spec.id: spec for spec in self.daemon.jobs()}
        while True:
            due = [(t, i) for i, t in self.next_run.items() if t is not None]
            if not due:
                return
            when, job_id = min(due)
            if when > end:
                return
            # like BaseScheduler._process_jobs: every fire time up to now, coalesced into one
            self.clock.now = max(self.clock.now, when) + latency
            spec = specs[job_id]
            run_times = [when]
            while True:
                following = spec.trigger.get_next_fire_time(run_times[-1], self.clock.now)
                if following is None or following > self.clock.now:
                    break
                run_times.append(following)
            self._feed()
            if job_id.startswith("deliver:"):
                self.fired.append((job_id.removeprefix("deliver:"), run_times[-1]))
            self._record(spec.run())
            self.next_run[job_id] = spec.trigger.get_next_fire_time(run_times[-1], self.clock.now)

    def _feed(self) -> None:
        if self.feed is None:
            return
        today = self.clock.now.date()
        if today not in self.days_fed:
            self.days_fed.add(today)
            days = sorted(self.days_fed)[-3:]
            write_feed(self.feed, [d.isoformat() for d in reversed(days)])

    def _record(self, reports: Any) -> None:
        for r in reports:
            self.sent.append((r.reader, r.local_date, self.clock.now, r.outcome))


def expected_instant(send_at: time, zone: str, day: date) -> datetime:
    """An oracle independent of digest.schedule: the first UTC minute whose local wall time on
    `day` is at or after `send_at` (so a gap gives its end, a fold its first pass)."""
    tz = ZoneInfo(zone)
    target = datetime.combine(day, send_at)
    # start three hours early: no zone here moves its clocks by more than one hour a day
    noon = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
    assert noon is not None
    minute = datetime.combine(day, send_at, tzinfo=UTC) - noon - timedelta(hours=3)
    while True:
        local = minute.astimezone(tz).replace(tzinfo=None)
        if local >= target:
            assert local.date() == day
            return minute
        minute += timedelta(minutes=1)


class LedgerOnly:
    """Collects and delivers only in the real ledger: no feeds read, nothing rendered or
    written (a year of real digests takes minutes; the shorter simulations below and the
    subprocess tests use the real pipeline). A second delivery of a date would break the
    ledger's primary key, so a double cannot go unnoticed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.collections: list[datetime] = []

    def collect(self, config: Config, store: Store, now: datetime) -> list[pipeline.FeedReport]:
        self.collections.append(now)
        for feed in config.feeds:
            store.record_feed(feed.url, feed.name, now, status="file")
        return [pipeline.FeedReport(feed.name, "ok") for feed in config.feeds]

    def deliver(
        self, config: Config, store: Store, now: datetime, only: Mapping[str, date]
    ) -> list[pipeline.DeliveryReport]:
        for name, day in only.items():
            store.record_delivery(
                Delivery(f"subscriber:{name}", day, "written", None, (), now, now)
            )
        return [pipeline.DeliveryReport(name, day, "written", 1) for name, day in only.items()]


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory (tmpfs) when there is one: a year is 10,000 fsynced commits."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="digest-test-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_a_simulated_year_delivers_every_local_date_once_at_its_minute(
    fast_dir: Path, run_digest: RunDigest
) -> None:
    subscribers = [(_name(z, s), z, s) for z in ZONES for s in SEND_AT]
    config = load_config(write_config(fast_dir, subscribers))
    clock = Clock(datetime(YEAR - 1, 12, 30, 12, tzinfo=UTC))
    actions = LedgerOnly(clock)
    world = World(Daemon(config, clock, actions), clock)
    world.start()
    world.run_until(datetime(YEAR + 1, 1, 2, tzinfo=UTC))
    collections = actions.collections

    in_year = [s for s in world.sent if s[1].year == YEAR]
    counts = Counter((name, day) for name, day, _, outcome in in_year if outcome != "already")
    days = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(365)]
    missing = [(s.name, d) for s in config.subscribers for d in days if (s.name, d) not in counts]
    doubled = [key for key, n in counts.items() if n > 1]
    assert (missing, doubled) == ([], [])
    assert len(counts) == 365 * len(config.subscribers)
    outcomes = Counter(outcome for *_, outcome in in_year)
    assert outcomes == {"written": 365 * len(config.subscribers)}, outcomes
    assert len([k for k in _ledger(config) if k[1].startswith(f"{YEAR}-")]) == len(counts)

    by_name = {s.name: s for s in config.subscribers}
    wrong = []
    for name, day, at, _ in in_year:
        sub = by_name[name]
        expected = expected_instant(sub.send_at, sub.timezone, day)
        if at.replace(second=0, microsecond=0) != expected:
            wrong.append((name, day, at, expected))
    assert wrong == []

    # transition days really were in the set: the gap moved to 03:00, the fold sent once
    sent_at = {(n, d): at for n, d, at, _ in in_year}
    berlin_gap = sent_at["berlin-0230", date(YEAR, 3, 29)].astimezone(ZoneInfo("Europe/Berlin"))
    assert berlin_gap.strftime("%H:%M%z") == "03:00+0200"
    ny_fold = sent_at["new_york-0130", date(YEAR, 11, 1)].astimezone(ZoneInfo("America/New_York"))
    assert ny_fold.strftime("%H:%M%z") == "01:30-0400"

    # collections: never closer than collect_every, and never older than that at a delivery
    gaps = [b - a for a, b in zip(collections, collections[1:], strict=False)]
    assert min(gaps) >= config.settings.collect_every
    for _, _, at, _ in in_year:
        latest = collections[bisect.bisect_right(collections, at) - 1]
        assert at - latest < config.settings.collect_every + COLLECT_LEAD

    # `digest schedule` prints the same calendar the daemon fired on
    result = run_digest(
        "schedule", "--config", str(config.path), "--from", f"{YEAR}-01-01", "--days", "365"
    )
    assert result.returncode == 0, result.stderr
    printed = [line.split("\t") for line in result.stdout.splitlines()]
    fired = {
        (name, f"{at:%Y-%m-%dT%H:%M:%SZ}")
        for name, at in world.fired
        if at.astimezone(ZoneInfo(by_name[name].timezone)).year == YEAR
    }
    assert {(name, utc) for name, utc, _ in printed} == fired
    assert len(printed) == len(fired) == 365 * len(config.subscribers)
    for name, utc, local in printed:
        instant = datetime.fromisoformat(local)
        assert instant == datetime.fromisoformat(utc)
        assert (
            instant.utcoffset() == instant.astimezone(ZoneInfo(by_name[name].timezone)).utcoffset()
        )


def _ledger(config: Config) -> dict[tuple[str, str], tuple[str, str]]:
    with closing(sqlite3.connect(config.settings.state)) as db:
        rows = db.execute("SELECT reader, local_date, status, created_at FROM deliveries")
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def _statuses(config: Config, day: str) -> dict[str, str]:
    return {reader: v[0] for (reader, d), v in _ledger(config).items() if d == day}


def _small_world(tmp_path: Path, extra: str = "") -> World:
    feed = tmp_path / "feed.rss"
    write_feed(feed, [])
    config = load_config(write_config(tmp_path, [("ada", "Europe/Berlin", "07:00")], extra=extra))
    clock = Clock(datetime(2026, 3, 20, 12, tzinfo=UTC))
    world = World(Daemon(config, clock), clock, feed)
    world.start()
    return world


def test_restart_within_catch_up_sends_late_once(tmp_path: Path) -> None:
    world = _small_world(tmp_path)
    world.run_until(datetime(2026, 3, 22, 12, tzinfo=UTC))
    # down from 05:00 to 08:30 UTC on the 23rd: 07:00 Berlin (06:00 UTC) was missed by 2h30
    world.run_until(datetime(2026, 3, 23, 5, tzinfo=UTC))
    world.clock.now = datetime(2026, 3, 23, 8, 30, tzinfo=UTC)
    world.daemon = Daemon(world.daemon.config, world.clock)
    world.start()
    # and restarted again a minute later: the ledger has it
    world.clock.now += timedelta(minutes=1)
    world.start()
    world.run_until(datetime(2026, 3, 25, 12, tzinfo=UTC))
    done = [(d, at) for _, d, at, outcome in world.sent if outcome == "written"]
    assert [d.day for d, _ in done] == [21, 22, 23, 24, 25]
    assert done[2][1] == datetime(2026, 3, 23, 8, 30, tzinfo=UTC)


def test_a_miss_beyond_catch_up_is_folded_into_the_next_digest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = _small_world(tmp_path, 'catch_up = "2h"')
    world.run_until(datetime(2026, 3, 22, 12, tzinfo=UTC))
    # down from 05:00 to 09:00 UTC on the 23rd: 3 hours late, over catch_up
    world.run_until(datetime(2026, 3, 23, 5, tzinfo=UTC))
    world.clock.now = datetime(2026, 3, 23, 9, tzinfo=UTC)
    world._feed()  # the 23rd's item appears while the daemon is down
    world.daemon = Daemon(world.daemon.config, world.clock)
    with caplog.at_level("INFO", logger="digest"):
        world.start()
        world.run_until(datetime(2026, 3, 24, 12, tzinfo=UTC))
    assert "ada 2026-03-23: missed" in caplog.text and "next digest" in caplog.text
    days = [d.day for _, d, _, outcome in world.sent if outcome == "written"]
    assert days == [21, 22, 24]
    # the 24th's digest has the 23rd's item as well as its own
    text = (tmp_path / "out" / "2026-03-24" / "ada.txt").read_text()
    assert "item 2026-03-23" in text and "item 2026-03-24" in text
    assert "item 2026-03-22" not in text


def test_a_clock_stepping_backwards_does_not_send_twice(tmp_path: Path) -> None:
    world = _small_world(tmp_path)
    world.run_until(datetime(2026, 3, 22, 12, tzinfo=UTC))
    # NTP steps the clock back two hours after the 22nd's digest; then the daemon restarts
    world.clock.now = datetime(2026, 3, 22, 5, 30, tzinfo=UTC)
    world.run_until(datetime(2026, 3, 22, 6, 30, tzinfo=UTC))
    world.daemon = Daemon(world.daemon.config, world.clock)
    world.start()
    world.run_until(datetime(2026, 3, 23, 12, tzinfo=UTC))
    # stepped back a whole day, over a date already delivered
    world.clock.now = datetime(2026, 3, 22, 5, 0, tzinfo=UTC)
    world.daemon = Daemon(world.daemon.config, world.clock)
    world.start()
    world.run_until(datetime(2026, 3, 23, 12, tzinfo=UTC))
    written = Counter(d.day for _, d, _, outcome in world.sent if outcome == "written")
    assert written == {21: 1, 22: 1, 23: 1}


def test_a_catch_up_after_midnight_is_the_previous_days_digest(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    write_feed(feed, ["a"])
    config = load_config(write_config(tmp_path, [("ada", "Europe/Berlin", "23:30")]))
    # 23:30 Berlin on the 20th is 22:30 UTC; the daemon starts at 00:40 Berlin on the 21st
    clock = Clock(datetime(2026, 11, 20, 23, 40, tzinfo=UTC))
    world = World(Daemon(config, clock), clock)
    world.start()
    write_feed(feed, ["a", "b"])
    world.run_until(datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert [(d.day, outcome) for _, d, _, outcome in world.sent] == [
        (20, "written"),
        (21, "written"),
    ]
    assert set(_ledger(config)) == {
        ("subscriber:ada", "2026-11-20"),
        ("subscriber:ada", "2026-11-21"),
    }


def test_a_failed_delivery_is_retried_within_catch_up_and_sent_once(
    tmp_path: Path, smtp_plain_server: SMTPServer
) -> None:
    write_feed(tmp_path / "feed.rss", ["one"])
    path = write_config(
        tmp_path, [("ada", "UTC", "07:00")], smtp=smtp_plain_server, extra='catch_up = "30m"'
    )
    clock = Clock(datetime(2026, 11, 20, 7, 0, 5, tzinfo=UTC))
    daemon = Daemon(load_config(path), clock)
    smtp_plain_server.stop()
    assert [r.outcome for r in daemon.deliver_due(["ada"])] == ["failed"]
    assert _statuses(daemon.config, "2026-11-20") == {"subscriber:ada": "pending"}
    assert daemon.retry_at("ada") == clock.now + RETRY_AFTER
    smtp_plain_server.start()
    clock.now += RETRY_AFTER
    assert [r.outcome for r in daemon.deliver_due(["ada"])] == ["sent"]
    clock.now += RETRY_AFTER
    assert daemon.deliver_due(["ada"]) == []
    assert len(smtp_plain_server.messages) == 1
    # no retry once it is sent, nor one that would land beyond catch_up, nor of a refusal
    assert daemon.retry_at("ada") is None
    clock.now = datetime(2026, 11, 21, 7, 0, 5, tzinfo=UTC)
    write_feed(tmp_path / "feed.rss", ["two", "one"])
    smtp_plain_server.refuse("ada@example.org")
    assert [r.outcome for r in daemon.deliver_due(["ada"])] == ["failed"]
    assert _statuses(daemon.config, "2026-11-21") == {"subscriber:ada": "failed"}
    assert daemon.retry_at("ada") is None
    clock.now += RETRY_AFTER
    assert daemon.deliver_due(["ada"]) == []
    assert len(smtp_plain_server.messages) == 1


def test_triggers_fire_on_the_calendar(tmp_path: Path) -> None:
    config = _config(tmp_path, [("ada", "Europe/Berlin", "02:30"), ("bo", "UTC", "06:00")])
    ada, bo = config.subscribers
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    trigger = SendAtTrigger(ada)
    first = trigger.get_next_fire_time(None, start)
    assert first == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert trigger.get_next_fire_time(first, first) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    collect = CollectTrigger(config.subscribers, COLLECT_LEAD)
    assert collect.get_next_fire_time(None, start) == first - COLLECT_LEAD
    after = collect.get_next_fire_time(first - COLLECT_LEAD, first)
    assert after == datetime(2026, 3, 29, 6, tzinfo=UTC) - COLLECT_LEAD
    assert CollectTrigger((), COLLECT_LEAD).get_next_fire_time(None, start) is None
    assert bo.name == "bo"


# --- the real daemon -------------------------------------------------------------------------


class SlowSMTPServer(SMTPServer):
    """Answers DATA only after `delay` seconds, and says when DATA began."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.data_started = threading.Event()
        handler = self._handler
        original = handler.handle_DATA

        async def slow(*args: Any) -> str:
            import asyncio

            self.data_started.set()
            await asyncio.sleep(delay)
            return await original(*args)

        handler.handle_DATA = slow  # type: ignore[method-assign]


@dataclass
class Serve:
    """A `digest serve` subprocess; its stderr is collected when it ends."""

    process: subprocess.Popen[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        _, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, err


def start_serve(config: Path, *extra: str) -> Serve:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    process = subprocess.Popen(
        [str(DIGEST), *extra, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return Serve(process)


def wait_for(condition: Any, timeout: float = 20.0) -> bool:
    deadline = wall.monotonic() + timeout
    while wall.monotonic() < deadline:
        if condition():
            return True
        wall.sleep(0.1)
    return bool(condition())


def _hms(when: datetime, zone: str = "Europe/Berlin") -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Serve]]:
    """Every daemon a test starts is stopped (SIGKILL if need be) when it ends."""
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.process.poll() is None:
            serve.process.kill()
        serve.process.communicate(timeout=10)


def test_serve_delivers_at_send_at_and_a_second_daemon_refuses(
    tmp_path: Path, smtp_plain_server: SMTPServer, run_digest: RunDigest, served: list[Serve]
) -> None:
    write_feed(tmp_path / "feed.rss", ["one", "two"])
    send_at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    config = write_config(
        tmp_path, [("ada", "Europe/Berlin", _hms(send_at))], smtp=smtp_plain_server
    )
    first = start_serve(config)
    served.append(first)
    assert wait_for(lambda: (tmp_path / "state" / "digest.sqlite.serve.lock").exists(), 10)
    wall.sleep(0.5)
    second = run_digest("serve", "--config", str(config), timeout=30)
    assert second.returncode == 1
    assert "another `digest serve`" in second.stderr and "already running" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1

    assert wait_for(lambda: len(smtp_plain_server.messages) == 1, 20), "no digest arrived"
    received = datetime.now(UTC)
    assert received >= send_at
    message = smtp_plain_server.messages[0]
    assert message.rcpt_tos == ["ada@example.org"]
    assert "item one" in str(message.message)

    status = run_digest("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    assert f"digest serve: running (pid {first.process.pid})" in status.stdout
    today = send_at.astimezone(ZoneInfo("Europe/Berlin")).date()
    assert f"last: {today} sent, 2 picks" in status.stdout
    assert f"ada: next {today + timedelta(days=1)}T" in status.stdout

    code, err = first.stop()
    assert code == 0, err
    assert "collected 1 feeds" in err and f"delivery ada {today}: sent, 2 picks" in err
    assert "stopped" in err.splitlines()[-1]
    assert len(smtp_plain_server.messages) == 1


def test_restart_within_catch_up_sends_once_and_after_it_folds(
    tmp_path: Path, smtp_plain_server: SMTPServer, run_digest: RunDigest, served: list[Serve]
) -> None:
    feed = tmp_path / "feed.rss"
    write_feed(feed, ["y1", "y2"])
    now = datetime.now(UTC)
    due = now - timedelta(minutes=3)
    config = write_config(
        tmp_path,
        [("ada", "UTC", f"{due:%H:%M:%S}"), ("bo", "UTC", f"{due:%H:%M:%S}")],
        smtp=smtp_plain_server,
        extra='catch_up = "1h"',
    )
    # yesterday's digests went out (run by hand), so the ledger has a starting point
    yesterday = f"{now - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    assert run_digest("run", "--config", str(config), "--now", yesterday).returncode == 0
    assert len(smtp_plain_server.messages) == 2
    write_feed(feed, ["t1", "y1"])

    # the daemon was down at today's send_at (3 minutes ago): it catches up, once
    first = start_serve(config)
    served.append(first)
    assert wait_for(lambda: len(smtp_plain_server.messages) == 4)
    # once both are recorded as sent (a SIGKILL between the server's 250 and that commit
    # re-sends the same message on restart: the outbox's documented at-least-once window)
    settings = load_config(config)
    both_sent = {"subscriber:ada": "sent", "subscriber:bo": "sent"}
    assert wait_for(lambda: _statuses(settings, f"{now:%Y-%m-%d}") == both_sent)
    first.process.kill()  # no goodbye: SIGKILL
    first.process.communicate(timeout=10)
    again = start_serve(config)
    served.append(again)
    wall.sleep(3)
    code, err = again.stop()
    assert code == 0, err
    assert len(smtp_plain_server.messages) == 4, "a restart sent again"
    assert all("item t1" in str(m.message) for m in smtp_plain_server.messages[2:])

    # a new subscriber whose daemon was down longer than catch_up: nothing is sent, the miss
    # is logged, and the next day's digest carries the entries of the missed day
    config.write_text(
        config.read_text()
        .replace('catch_up = "1h"', 'catch_up = "1m"')
        .replace('name = "bo"', 'name = "cy"')
        .replace("bo@", "cy@")
    )
    write_feed(feed, ["y1", "y2"])
    assert run_digest("run", "--config", str(config), "--now", yesterday).returncode == 0
    smtp_plain_server.messages.clear()
    write_feed(feed, ["t2", "y1"])
    late = start_serve(config)
    served.append(late)
    wall.sleep(3)
    code, err = late.stop()
    assert code == 0, err
    assert smtp_plain_server.messages == []
    assert f"cy {now:%Y-%m-%d}: missed" in err and "next digest" in err, err
    assert "collected" not in err, "nothing was due, so nothing was fetched"
    # (collect as the daemon would have, then) the next morning
    collected = run_digest("collect", "--config", str(config))
    assert collected.returncode == 0, collected.stderr
    tomorrow = f"{now + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    result = run_digest("run", "--config", str(config), "--now", tomorrow)
    assert result.returncode == 0, result.stderr
    [cy] = [m for m in smtp_plain_server.messages if m.rcpt_tos == ["cy@example.org"]]
    assert "item t2" in str(cy.message) and "item y1" not in str(cy.message)


def test_sigterm_during_a_send_lets_it_finish_and_it_is_never_doubled(
    tmp_path: Path, run_digest: RunDigest, served: list[Serve]
) -> None:
    server = SlowSMTPServer(delay=3.0)
    server.start()
    try:
        write_feed(tmp_path / "feed.rss", ["one"])
        due = datetime.now(UTC) - timedelta(minutes=1)
        config = write_config(tmp_path, [("ada", "UTC", f"{due:%H:%M:%S}")], smtp=server)
        serve = start_serve(config)
        served.append(serve)
        assert server.data_started.wait(20), "the delivery never started"
        began = wall.monotonic()
        code, err = serve.stop(signal.SIGTERM)
        assert code == 0, err
        assert wall.monotonic() - began > 1.5, "it did not wait for the send in flight"
        assert len(server.messages) == 1
        assert "stopping" in err and "delivery ada" in err
        ledger = _ledger(load_config(config))
        assert [status for status, _ in ledger.values()] == ["sent"]
        # started again: the ledger has it
        again = start_serve(config)
        served.append(again)
        wall.sleep(3)
        code, err = again.stop(signal.SIGINT)
        assert code == 0, err
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(
    tmp_path: Path, smtp_plain_server: SMTPServer, served: list[Serve]
) -> None:
    write_feed(tmp_path / "feed.rss", ["one"])
    later = datetime.now(UTC) + timedelta(hours=2)
    config = write_config(tmp_path, [("ada", "UTC", f"{later:%H:%M:%S}")], smtp=smtp_plain_server)
    serve = start_serve(config)
    served.append(serve)
    wall.sleep(1.5)
    good = config.read_text()
    config.write_text(good + "\n[digest.oops]\n")
    serve.process.send_signal(signal.SIGHUP)
    wall.sleep(2)
    assert serve.process.poll() is None
    # a good one, now due: the reload catches it up
    due = datetime.now(UTC) - timedelta(minutes=1)
    config.write_text(good.replace(f"{later:%H:%M:%S}", f"{due:%H:%M:%S}"))
    serve.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: len(smtp_plain_server.messages) == 1)
    code, err = serve.stop()
    assert code == 0, err
    assert "reload refused, keeping the running configuration" in err
    assert "reloaded" in err
