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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial

from ..errors import DeliveryError, StateRowError
from ..models import DONE, Delivery, DeliveryStatus, Digest, Reader
from ..state import Store
from .channel import Channel, DeliveryReport, Parcel, Recipient, Sender

log = logging.getLogger("digest")

#: pending rows stored per transaction while the previous ones are being delivered
OUTBOX_CHUNK = 32

#: (reader, its local date) → that reader's digest, built from the state
Build = Callable[[Reader, date], Digest]


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
) -> list[DeliveryReport]:
    """Deliver today's digest to every recipient of the channel that has not had it.

    `only`: the scheduled readers that are due (by name), each with the local date it was
    due on (a catch-up just after midnight is still the previous day's digest); readers
    that are not scheduled (Markdown pages) are delivered whenever this runs."""
    reports: list[DeliveryReport] = []
    queue: list[Queued] = []
    for recipient in channel.recipients():
        reader = recipient.reader
        if only is not None and recipient.scheduled and reader.name not in only:
            continue
        due = only.get(reader.name) if only is not None and recipient.scheduled else None
        day = due or local_date(reader, now)
        try:
            existing = store.delivery(reader.key, day)
        except StateRowError as e:  # that reader's row costs that reader's digest
            reports.append(unreadable(reader, day, e))
            continue
        if existing is not None and existing.status in DONE:
            reports.append(DeliveryReport(reader.name, day, "already"))
            continue
        if existing is not None and existing.message is not None:
            parcel = channel.resume(recipient, existing.message, day, len(existing.entry_ids))
            queue.append(Queued(recipient, parcel, existing.attempts))
            continue
        if not dry_run and store.fold_undelivered(reader.key, before=day):
            log.info("%s: an earlier undelivered digest is folded into today's", reader.name)
        try:
            digest = build(reader, day)
        except StateRowError as e:
            reports.append(unreadable(reader, day, e))
            continue
        if not digest.picks and not channel.empty_too:
            if not dry_run:
                store.record_delivery(delivery_row(digest, "empty", None, None, now))
            reports.append(DeliveryReport(reader.name, day, "dry-run" if dry_run else "empty"))
            continue
        try:
            parcel = channel.prepare(digest, recipient, now)
        except DeliveryError as e:  # this reader's digest cannot be made: only theirs fails
            log.error("%s", e)
            reports.append(DeliveryReport(reader.name, day, "failed", error=e.reason))
            continue
        row = delivery_row(digest, "pending", parcel.message_id, None, now)
        queue.append(Queued(recipient, parcel, 0, replace(row, message=parcel.body)))
    if dry_run:
        reports.extend(
            DeliveryReport(q.parcel.name, q.parcel.local_date, "dry-run", q.parcel.picks,
                           q.parcel.target)
            for q in queue
        )  # fmt: skip
    elif queue:
        sent = await send_all(channel, store, queue)
        reports.extend(sent)
        names = {r.reader for r in sent if r.outcome == channel.delivered}
        channel.finish([q.recipient for q in queue if q.recipient.reader.name in names])
    return reports


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
    """Deliver over a few senders at once; each parcel is retried on its own.

    The outbox is written by one thread of its own while the senders keep sending: the
    pending rows, OUTBOX_CHUNK parcels per transaction, each chunk committed before any of
    its parcels is handed to a sender (a crash before a commit has sent none of them, and
    the next run builds them again); and one commit after each delivery, which the parcel's
    coroutine waits for while the other senders go on. While sending, that thread is the
    only user of the store's connection; leaving the executor waits for a commit under way,
    even when the run is interrupted."""
    senders = channel.senders(len(queue))
    work: asyncio.Queue[Queued | None] = asyncio.Queue()
    reports: list[DeliveryReport] = []
    ledger = Ledger(store)

    async def stock() -> None:
        try:
            for start in range(0, len(queue), OUTBOX_CHUNK):
                chunk = queue[start : start + OUTBOX_CHUNK]
                await ledger.record([q.row for q in chunk if q.row is not None])
                for item in chunk:
                    work.put_nowait(item)
        finally:
            for _ in senders:
                work.put_nowait(None)

    async def worker(sender: Sender) -> None:
        try:
            while (item := await work.get()) is not None:
                reports.append(await deliver_one(channel, ledger, sender, item))
        finally:
            await sender.close()

    with ledger:
        # Every task ends (the workers finish what they hold) before an error is raised.
        done = await asyncio.gather(
            stock(), *(worker(sender) for sender in senders), return_exceptions=True
        )
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    order = {q.parcel.reader_key: i for i, q in enumerate(queue)}
    by_name = {q.parcel.name: q.parcel.reader_key for q in queue}
    return sorted(reports, key=lambda r: order[by_name[r.reader]])


class Ledger:
    """The store's outbox methods, run on a thread of their own (see send_all)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-outbox")

    def __enter__(self) -> Ledger:
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
