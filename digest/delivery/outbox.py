"""The outbox, one for every channel: exactly one delivery per reader and local date.

Every parcel is stored as pending (with its exact bytes) before it is first tried, and
marked delivered in the transaction that records the channel's answer. A pending parcel of
today (the last run died, or the far end deferred it) is delivered again as it was; one of
an earlier date is folded, and its entries go into today's digest instead. A duplicate can
only happen in the window between the far end's answer and that commit (tests/test_outbox.py
kills the process at every step to prove it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from typing import Protocol, TypeVar

from ..errors import DeliveryError, StateRowError
from ..models import DONE, Delivery, DeliveryStatus, Digest, Reader
from ..state import Store
from .channel import Channel, DeliveryReport, Parcel, Progress, Recipient, Sender

log = logging.getLogger("digest")

T = TypeVar("T")

#: pending rows stored per transaction while the previous ones are being delivered
OUTBOX_CHUNK = 32

#: parcels made and waiting for a sender, at most (about a second of sending)
SENDING_BACKLOG = 256
#: readers processed together: their ledger rows read at once, their digests built and
#: ranked together, their pending rows stored before the next batch is built
BATCH = 1000


class Build(Protocol):
    """Builds the digests of a batch of readers (each with its local date) from the state,
    reading the store only through `ledger.call` (the thread that owns its connection).
    A reader whose rows cannot be read gets its StateRowError instead of a digest."""

    async def __call__(
        self, readers: Sequence[tuple[Reader, date]], ledger: Ledger
    ) -> list[Digest | StateRowError]: ...


@dataclass(frozen=True, slots=True)
class Queued:
    recipient: Recipient
    parcel: Parcel
    #: tries already made in earlier runs
    attempts: int
    #: the outbox row to store (pending, with the parcel) before the first try; None when
    #: the parcel is already in the outbox
    row: Delivery | None = None


def local_date(reader: Reader, now: datetime) -> date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(reader.timezone)).date()


async def deliver_channel(
    channel: Channel,
    store: Store,
    now: datetime,
    build: Build,
    *,
    dry_run: bool = False,
    only: Mapping[str, date] | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> list[DeliveryReport]:
    """Deliver today's digest to every recipient of the channel that has not had it.

    Readers go in batches of `batch`: their ledger rows read at once, earlier undelivered
    digests folded at once, their digests built together (`build`); each digest is made
    into a parcel when the senders have room for it (SENDING_BACKLOG), stored as pending
    and handed to them, so the senders deliver while the rest is built. Memory holds a
    batch's digests and a few hundred parcels, whatever the number of readers.

    `only`: the scheduled readers that are due (by name), each with the local date it was
    due on (a catch-up just after midnight is still the previous day's digest); readers
    that are not scheduled (Markdown pages) are delivered whenever this runs."""
    due: list[tuple[Recipient, date]] = []
    for recipient in channel.recipients():
        name = recipient.reader.name
        if only is not None and recipient.scheduled:
            if name not in only:
                continue
            due.append((recipient, only[name]))
        else:
            due.append((recipient, local_date(recipient.reader, now)))
    reports: list[DeliveryReport] = []
    if not due:
        return reports
    if progress is not None:
        progress.due(len(due))
    # readers of one profile in one zone get the same rendering of the same picks: taken
    # one after another, they share it from render's small cache (in config order, 500
    # shared profiles would evict each other before any was used twice); the reports go
    # back to config order below
    order = {r.reader.name: i for i, (r, _) in enumerate(due)}
    due.sort(key=lambda item: (item[0].reader.profile.name, item[0].reader.timezone))
    async with Dispatch(
        channel, store, backlog=min(batch, SENDING_BACKLOG), dry_run=dry_run, progress=progress
    ) as dispatch:
        for start in range(0, len(due), batch):
            part = due[start : start + batch]
            before = len(reports)
            # each parcel is made as the senders make room for it: memory holds a batch's
            # digests and SENDING_BACKLOG parcels, not a batch of parcels
            async for item in _plan(channel, dispatch.ledger, part, now, build, reports, dry_run):
                await dispatch.put(item)
                await asyncio.sleep(0)  # let the senders take what is ready
            if progress is not None:
                progress.built(len(part))
                for report in reports[before:]:
                    progress.done(report)
    reports += dispatch.reports
    reports.sort(key=lambda r: order.get(r.reader, -1))
    if not dry_run:
        names = {r.reader for r in dispatch.reports if r.outcome == channel.delivered}
        channel.finish([r for r, _ in due if r.reader.name in names])
    return reports


async def _plan(
    channel: Channel,
    ledger: Ledger,
    part: Sequence[tuple[Recipient, date]],
    now: datetime,
    build: Build,
    reports: list[DeliveryReport],
    dry_run: bool,
) -> AsyncIterator[Queued]:
    """One batch's outbox decisions: what is done already, what is waiting in the outbox
    (delivered again as it was), and the digests to build, each made into a parcel when
    the caller asks for the next; reports go into `reports`."""
    wanted = {r.reader.key: day for r, day in part}
    existing = await ledger.call(partial(ledger.store.deliveries_on, wanted))
    resumed: list[Queued] = []
    fresh: list[tuple[Recipient, date]] = []
    for recipient, day in part:
        reader = recipient.reader
        row = existing.get(reader.key)
        if isinstance(row, StateRowError):  # that reader's row costs that reader's digest
            reports.append(unreadable(reader, day, row))
        elif row is not None and row.status in DONE:
            reports.append(DeliveryReport(reader.name, day, "already"))
        elif row is not None and row.message is not None:
            parcel = channel.resume(recipient, row.message, day, len(row.entry_ids))
            resumed.append(Queued(recipient, parcel, row.attempts))
        else:
            fresh.append((recipient, day))
    for item in resumed:
        yield item
    if not fresh:
        return
    if not dry_run:
        folded = await ledger.call(
            partial(ledger.store.fold_undelivered_before, {r.reader.key: d for r, d in fresh})
        )
        for recipient, _ in fresh:
            if recipient.reader.key in folded:
                log.info(
                    "%s: an earlier undelivered digest is folded into today's",
                    recipient.reader.name,
                )
    digests = await build([(r.reader, d) for r, d in fresh], ledger)
    empty: list[Delivery] = []
    for (recipient, day), digest in zip(fresh, digests, strict=True):
        reader = recipient.reader
        if isinstance(digest, StateRowError):
            reports.append(unreadable(reader, day, digest))
            continue
        if not digest.picks and not channel.empty_too:
            empty.append(delivery_row(digest, "empty", None, None, now))
            reports.append(DeliveryReport(reader.name, day, "dry-run" if dry_run else "empty"))
            continue
        try:
            parcel = channel.prepare(digest, recipient, now)
        except DeliveryError as e:  # this reader's digest cannot be made: only theirs fails
            log.error("%s", e)
            reports.append(DeliveryReport(reader.name, day, "failed", error=e.reason))
            continue
        row = delivery_row(digest, "pending", parcel.message_id, None, now)
        yield Queued(recipient, parcel, 0, replace(row, message=parcel.body))
    if empty and not dry_run:
        await ledger.record(empty)


def unreadable(reader: Reader, day: date, error: StateRowError) -> DeliveryReport:
    log.error("%s", error)
    return DeliveryReport(reader.name, day, "failed", error=str(error))


def delivery_row(
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


async def send_all(channel: Channel, store: Store, queue: Sequence[Queued]) -> list[DeliveryReport]:
    """Deliver these parcels (their pending rows stored first), as a run does."""
    async with Dispatch(channel, store, backlog=BATCH) as dispatch:
        for item in queue:
            await dispatch.put(item)
    order = {q.parcel.name: i for i, q in enumerate(queue)}
    return sorted(dispatch.reports, key=lambda r: order[r.reader])


class Dispatch:
    """The channel's senders at work on a queue of parcels, for one run of the channel.

    The outbox is written by one thread of its own (the Ledger) while the senders keep
    sending: the pending rows, OUTBOX_CHUNK parcels per transaction, each chunk committed
    before any of its parcels is handed to a sender (a crash before a commit has sent none
    of them, and the next run builds them again); and one commit after each delivery, which
    the parcel's coroutine waits for while the other senders go on. That thread is the only
    user of the store's connection while the dispatch is open (every read of the run goes
    through `ledger.call`); leaving waits for a commit under way, even when the run is
    interrupted. A dry run sends nothing: each parcel is reported as it would go."""

    def __init__(
        self,
        channel: Channel,
        store: Store,
        *,
        backlog: int,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self._channel = channel
        self._dry_run = dry_run
        self._progress = progress
        self.ledger = Ledger(store)
        self.reports: list[DeliveryReport] = []
        self._chunk: list[Queued] = []
        #: parcels stored and waiting for a sender: at most about one batch
        self._work: asyncio.Queue[Queued | None] = asyncio.Queue(maxsize=max(1, backlog))
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Dispatch:
        self.ledger.__enter__()
        return self

    async def put(self, item: Queued) -> None:
        if self._dry_run:
            p = item.parcel
            self.reports.append(DeliveryReport(p.name, p.local_date, "dry-run", p.picks, p.target))
            return
        self._chunk.append(item)
        if len(self._chunk) >= OUTBOX_CHUNK:
            await self._flush()

    def _report(self, report: DeliveryReport) -> None:
        self.reports.append(report)
        if self._progress is not None:
            self._progress.done(report)

    async def _flush(self) -> None:
        chunk, self._chunk = self._chunk, []
        if not chunk:
            return
        await self.ledger.record([q.row for q in chunk if q.row is not None])
        if not self._workers:
            senders = self._channel.senders(max(len(chunk), self._work.maxsize))
            self._workers = [asyncio.ensure_future(self._worker(s)) for s in senders]
        for item in chunk:
            await self._work.put(item)

    async def _worker(self, sender: Sender) -> None:
        try:
            while (item := await self._work.get()) is not None:
                self._report(await deliver_one(self._channel, self.ledger, sender, item))
        finally:
            await sender.close()

    async def __aexit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if kind is None:
                await self._flush()
        finally:
            for _ in self._workers:
                await self._work.put(None)
            # Every worker ends (finishing what it holds) before an error is raised.
            done = await asyncio.gather(*self._workers, return_exceptions=True)
            self.ledger.__exit__(None, None, None)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome


class Ledger:
    """The store's connection, used from one thread of its own (see Dispatch)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-outbox")

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.shutdown(wait=True)

    async def call(self, work: Callable[[], T]) -> T:
        """`work()` (which uses the store) on the ledger's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def record(self, rows: Sequence[Delivery]) -> None:
        if rows:
            await self.call(partial(self.store.record_deliveries, rows))

    async def mark_done(
        self, reader: str, day: date, status: str, target: str, *, attempts: int
    ) -> None:
        await self.call(
            partial(self.store.mark_done, reader, day, status, target, attempts=attempts)
        )

    async def mark_undelivered(
        self, reader: str, day: date, status: str, error: str, *, attempts: int
    ) -> None:
        await self.call(
            partial(self.store.mark_undelivered, reader, day, status, error, attempts=attempts)
        )


async def deliver_one(
    channel: Channel, ledger: Ledger, sender: Sender, item: Queued
) -> DeliveryReport:
    parcel = item.parcel
    attempts = max(1, channel.attempts)
    done = item.attempts
    for attempt in range(attempts):
        fault_point("before-send")
        done += 1
        try:
            target = await sender.send(parcel)
        except DeliveryError as e:
            wait = max(channel.backoff * 2**attempt, e.retry_after or 0.0)
            final = not e.transient or attempt == attempts - 1 or math.isinf(wait)
            if not final:
                log.info("%s: %s; trying again", parcel.name, e.reason)
                await asyncio.sleep(wait)
                continue
            log.error("%s", e)
            kept = "pending" if e.transient else "failed"
            await ledger.mark_undelivered(
                parcel.reader_key, parcel.local_date, kept, e.reason, attempts=done
            )
            return DeliveryReport(parcel.name, parcel.local_date, "failed", error=e.reason)
        fault_point("after-250")
        outcome = channel.delivered
        await ledger.mark_done(parcel.reader_key, parcel.local_date, outcome, target, attempts=done)
        fault_point("after-commit")
        return DeliveryReport(parcel.name, parcel.local_date, outcome, parcel.picks, target)
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
