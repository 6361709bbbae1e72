"""The Channel Protocol: how a digest leaves digest (an email, a Markdown page, a webhook).

A channel turns a reader's digest into a Parcel (the exact bytes it will deliver) and gives
the Senders that deliver parcels. Everything else (the outbox rows, exactly once per reader
and local date, retries, folding an earlier undelivered digest) is the outbox's, written
once for every channel (outbox.py). A new channel is one module here and one entry in
CHANNELS (delivery/__init__.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from ..models import Digest, Reader

Outcome = Literal["sent", "written", "empty", "already", "failed", "dry-run"]


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
class Recipient:
    """One reader of a channel: the Reader (whose key is the ledger's) and, by name, the
    config entry it comes from (a subscriber, a [[markdown]] output, a webhook)."""

    reader: Reader
    #: `digest serve` delivers this reader at its own send_at (the scheduler's `only`);
    #: False: at every delivery run (Markdown pages)
    scheduled: bool = True


@dataclass(frozen=True, slots=True)
class Parcel:
    """One reader's digest as its channel delivers it, byte for byte.

    Stored in the outbox (`Delivery.message`) before the first try, so that every retry,
    in this run or a later one, delivers exactly the same bytes."""

    reader_key: str
    #: the reader's name, for reports and file names
    name: str
    local_date: date
    body: bytes
    picks: int
    #: the channel's id of this delivery (email: the Message-ID), kept in the ledger
    message_id: str | None = None
    #: email only: the SMTP envelope (MAIL FROM, then RCPT TO), read once from the body
    envelope: tuple[str, ...] = ()
    #: where it will go, for a dry run's report (a path, a redacted URL)
    target: str | None = None


class Sender(Protocol):
    """One connection (or folder, or HTTP client) that delivers parcels one at a time."""

    async def send(self, parcel: Parcel) -> str:
        """Deliver the parcel; return where it went (a server's reply, a path).

        Raises DeliveryError: `transient` ones are retried (then kept pending for the next
        run), others mark the delivery failed."""
        ...

    async def close(self) -> None: ...


class Channel(Protocol):
    """A way digests leave digest: email, Markdown pages, webhooks."""

    #: "email", "markdown", "webhook"
    kind: str
    #: what the ledger records once a parcel is delivered
    delivered: Literal["sent", "written"]
    #: tries per parcel within one run, and the first wait between them (doubling)
    attempts: int
    backoff: float
    #: deliver a digest without picks too (a wiki's page of the day saying nothing is new);
    #: False: record it as "empty" and deliver nothing
    empty_too: bool

    def recipients(self) -> Sequence[Recipient]:
        """Every reader this channel delivers to, in config order."""
        ...

    def prepare(self, digest: Digest, recipient: Recipient, now: datetime) -> Parcel:
        """The digest as this channel delivers it. Raises DeliveryError (permanent) when
        this one reader's digest cannot be made (an address the mail layer refuses)."""
        ...

    def resume(self, recipient: Recipient, body: bytes, day: date, picks: int) -> Parcel:
        """A parcel stored in the outbox by an earlier run, to be delivered as it is."""
        ...

    def senders(self, parcels: int) -> list[Sender]:
        """The senders to deliver `parcels` parcels with (each used by one task)."""
        ...

    def finish(self, delivered: Sequence[Recipient]) -> None:
        """After a run's deliveries: anything that sums them up (a wiki's index page)."""
        ...


class Progress(Protocol):
    """Told how a run's deliveries go, for a progress bar (the CLI's, on a terminal)."""

    def due(self, readers: int) -> None:
        """`readers` more readers are due in this run (one call per channel)."""
        ...

    def built(self, readers: int) -> None:
        """`readers` more readers' digests were ranked and rendered (or found done)."""
        ...

    def done(self, report: DeliveryReport) -> None:
        """One reader's delivery ended (sent, written, empty, already, failed …)."""
        ...
