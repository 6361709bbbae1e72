"""What digest keeps between runs, behind one Protocol: seen entries, feed health, the ledger.

Everything above the store (collect, the pipeline, the daemon, the CLI, the library) talks
to `Store` and opens one with `open_store`, which picks the implementation from what
`[digest] state` names: a path is an SQLite file (`digest.state.sqlite`, the only module
that imports sqlite3); a URL names its kind by scheme (`STORES`): `postgresql://` (or
`postgres://`) is a PostgreSQL database (`digest.state.postgres`, the only module that
imports psycopg). A new kind of store is one module and one entry in `STORES`.

Terms used by the contracts below:

- a **reader** is a ledger key: `subscriber:NAME`, `markdown:PATH`, `webhook:NAME`;
- an **entry** is a digest candidate: a feed's backlog (entries it held when it was first
  read into a state file in use) is stored, so it is never new, but is never returned;
- a **done** delivery has status sent, written or empty (`models.DONE`); **pending** and
  **failed** ones hold the message that is (re)sent; a **folded** one was given up and its
  entries go into the reader's next digest;
- instants are timezone-aware; a store returns them in UTC.

Errors, for every method: `StateError` (one sentence naming the state) when the storage
fails, whatever the cause: unreadable, damaged, full, locked, refused. A single row that
cannot be read back (edited by hand) costs only what it belongs to: list methods leave it
out and report it in `problems()`; a method that returns one reader's row raises
`StateRowError` for it, so the caller can report that reader and go on.

A store is used by one thread at a time (the pipeline hands it to its outbox thread while
sending, and does not use it meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from ..dedupe import Candidate
from ..errors import StateError, StateRowError
from ..models import Delivery, Entry, FeedStatus

#: How a command uses the state:
#: - write: the one store that changes the state; holds the writer lock while open (a
#:   second writer of any process gets StateLockedError) and brings the schema up to date;
#: - read: status, feeds, explain, archive: sees the state as it was when opened, takes no
#:   lock (works while a writer runs), changes nothing (a change raises StateError);
#: - scratch: a dry run or a preview: reads and changes like write, but no change ever
#:   reaches the real state, and it takes no lock.
#: read and scratch never create anything: with no state yet, they see an empty one.
Mode = Literal["write", "read", "scratch"]
MODES: tuple[Mode, ...] = ("write", "read", "scratch")


class Store(Protocol):
    """The state of one digest installation. See the module docstring for the terms and
    the errors every method may raise."""

    @property
    def location(self) -> str:
        """The state as configured (a path, a URL without secrets), for messages."""
        ...

    @property
    def mode(self) -> Mode: ...

    def close(self) -> None:
        """Release the store (and its lock); uncommitted changes of a batch are undone."""

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def batch(self) -> AbstractContextManager[None]:
        """Changes made inside are committed together when the block ends, or none of them
        when it raises. Each method inside is still all or nothing on its own: one that
        raises leaves nothing, and the block may go on. Not nested."""
        ...

    def problems(self) -> tuple[str, ...]:
        """One line for each row left out since the store was opened (each also logged
        once as a warning): a run that left something out exits 1."""
        ...

    # --- feeds ---------------------------------------------------------------------------

    def feed_statuses(self) -> dict[str, FeedStatus]:
        """What is known of every feed ever recorded, by its configured URL. A feed whose
        row cannot be read is left out (then fetched as if new)."""
        ...

    def record_feed(
        self,
        url: str,
        name: str,
        now: datetime,
        *,
        status: str,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        candidates: Sequence[Candidate] | None = None,
        fetched_url: str | None = None,
        moved_to: str | None = None,
        gone: bool = False,
        next_fetch: datetime | None = None,
        failures: int = 0,
    ) -> int:
        """Record one fetch of the feed keyed `url` and store its parsed `candidates`, in
        one transaction; return how many are new digest candidates.

        `status`: the HTTP status (or "file"); `error`: why the fetch failed (None: it
        worked). Validators (`etag`, `last_modified`, `fetched_url`: the URL they belong to)
        are replaced only when it worked, so a feed that failed is fetched in full next
        time. `moved_to` (a permanent redirect) and `gone` (410) are kept until the feed's
        URL changes. `next_fetch`: not to be fetched before then; `failures`: transient ones
        in a row. `candidates` None: nothing was parsed (not modified, or an error).

        A candidate sharing any identity key with a known entry (or a pruned one's kept
        key) is that entry: its new keys and feeds are added, a newer arXiv version kept,
        and it is not new. The first time a feed works in a state that is in use already
        (entries first seen before `now`, or any delivery), its candidates published
        before `now - NEW_FEED_WINDOW` (or undated) are its backlog."""
        ...

    def rekey_feed(
        self,
        old: str,
        new: str,
        *,
        fetched_url: str | None,
        moved_to: str | None,
        last_error: str | None,
    ) -> None:
        """Move a feed's row from key `old` to key `new` (no row under `new` yet), setting
        the three columns that may hold what the old key held (a URL's secrets) to the given
        values; everything else (validators, backoff, history) stays. One transaction; the
        old row's bytes are overwritten in the store, not only unlinked. No row under `old`:
        nothing."""

    def prune(self, now: datetime, keep_days: int) -> int:
        """Forget entries first seen before `now - keep_days` and whom they were sent to,
        keeping their identity keys so that none comes back as new; and the ledger's rows of
        dates before then, but each reader's latest digest and every Markdown page's row.
        Returns how many entries were forgotten."""
        ...

    def count_entries(self) -> int:
        """Entries stored, backlog included."""
        ...

    def entry_keys_count(self) -> int:
        """Identity keys stored, pruned entries' included."""
        ...

    # --- entries: a window read once for many readers ------------------------------------

    def window_entries(self, after: datetime, until: datetime) -> list[Entry]:
        """Every entry first seen in (after, until], oldest first, ties by id in code-point
        order; each entry's `feeds` in the order they first brought it."""
        ...

    def entries_by_id(self, ids: Collection[str]) -> dict[str, Entry]:
        """The entries stored under these ids; ids of pruned (or backlog) entries are
        absent."""
        ...

    def new_entries(self, reader: str | None, after: datetime, until: datetime) -> list[Entry]:
        """The reader's candidates: `window_entries(after, until)` and the entries of the
        reader's folded digests, less those already sent to the reader, in window order.
        With no reader: `window_entries(after, until)`."""
        ...

    # --- what readers had ----------------------------------------------------------------

    def sent_entry_ids(
        self, readers: Collection[str], entry_ids: Collection[str]
    ) -> dict[str, frozenset[str]]:
        """For each reader (every one given is a key), which of `entry_ids` went to them in
        a done delivery."""
        ...

    def folded_entry_ids(self, readers: Collection[str]) -> dict[str, frozenset[str]]:
        """For each reader (every one given is a key), the entry ids of their folded
        digests. A folded row that cannot be read is left out."""
        ...

    def last_deliveries(self, readers: Collection[str]) -> dict[str, Delivery | StateRowError]:
        """Each reader's latest done delivery (greatest cutoff, then local date), or the
        error for a reader whose latest row cannot be read; no key: never delivered."""
        ...

    def last_delivery(self, reader: str) -> Delivery | None:
        """`last_deliveries` for one reader; raises its StateRowError."""
        ...

    def delivery(self, reader: str, local_date: date) -> Delivery | None:
        """The reader's ledger row for that local date, whatever its status; raises
        StateRowError when it cannot be read."""
        ...

    def deliveries_on(self, wanted: Mapping[str, date]) -> dict[str, Delivery | StateRowError]:
        """`delivery` for many readers at once: each reader's row for its date in `wanted`,
        or the error of a row that cannot be read; no key: no row."""
        ...

    def deliveries(self, reader: str) -> list[Delivery]:
        """Every ledger row of the reader, newest local date first; unreadable ones are
        left out."""
        ...

    # --- the ledger: at most one digest per reader and local date -------------------------

    def record_delivery(self, delivery: Delivery) -> None:
        """`record_deliveries([delivery])`."""
        ...

    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store these rows in one transaction, all or none. A row replaces a folded one of
        the same reader and date; any other row there raises StateError. A done row marks
        its entries as sent to its reader in the same transaction."""
        ...

    def mark_done(
        self, reader: str, local_date: date, status: str, target: str, *, attempts: int
    ) -> None:
        """A pending or failed digest went out (`status` sent or written, to `target`): in
        one transaction its row becomes done, drops its message, and its entries are
        marked as sent to the reader. StateError when no such digest is waiting."""
        ...

    def mark_undelivered(
        self, reader: str, local_date: date, status: str, error: str, *, attempts: int
    ) -> None:
        """Why a pending or failed digest did not go out; it keeps its message. `status`:
        pending (try again) or failed (refused for good). No such digest: nothing."""
        ...

    def fold_undelivered(self, reader: str, before: date) -> int:
        """Give up the reader's pending and failed digests of dates before `before`: they
        become folded, their entries candidates again. Returns how many."""
        ...

    def fold_undelivered_before(self, wanted: Mapping[str, date]) -> frozenset[str]:
        """`fold_undelivered` for many readers in one transaction, each before its own date
        in `wanted`; returns the readers that had something folded."""
        ...


@dataclass(frozen=True, slots=True)
class StoreKind:
    """One implementation of the Store, for the locations it serves."""

    #: open a store at the location in a mode
    open: Callable[[Path | str, Mode], Store]
    #: hold the daemon lock (see `daemon_lock`)
    daemon_lock: Callable[[Path | str], AbstractContextManager[None]]
    #: see `serving_pid`
    serving_pid: Callable[[Path | str], int | None]


def _sqlite() -> StoreKind:
    from . import sqlite

    return StoreKind(sqlite.open_sqlite, sqlite.daemon_lock, sqlite.serving_pid)


def _postgres() -> StoreKind:
    try:
        from . import postgres
    except ImportError as e:
        raise StateError(
            f"a PostgreSQL state needs psycopg, which is not installed ({e.msg}): "
            "pip install 'digest[postgres]'"
        ) from e
    return StoreKind(postgres.open_postgres, postgres.daemon_lock, postgres.serving_pid)


#: URL scheme → the implementation, imported when first used (a driver may not be
#: installed); a path (no scheme) is an SQLite file
STORES: dict[str, Callable[[], StoreKind]] = {
    "": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def _kind(location: Path | str) -> StoreKind:
    text = str(location)
    scheme, separator, _ = text.partition("://")
    if isinstance(location, Path) or not separator:
        return STORES[""]()
    kind = STORES.get(scheme.lower())
    if kind is None:
        known = ", ".join(f"{s}://" for s in STORES if s) or "none yet"
        raise StateError(
            f"the state {scheme}://… is of a kind digest has no store for (a file path; URL "
            f"schemes: {known})"
        )
    return kind()


def open_store(location: Path | str, mode: Mode = "write") -> Store:
    """Open the state `[digest] state` names, in `mode` (see `Mode`). Raises StateError,
    StateLockedError when `write` finds another writer."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    return _kind(location).open(location, mode)


def daemon_lock(location: Path | str) -> AbstractContextManager[None]:
    """Held for a `digest serve`'s lifetime: a second daemon on the same state, by any name,
    is refused with StateLockedError. Writers are not blocked by it."""
    return _kind(location).daemon_lock(location)


def serving_pid(location: Path | str) -> int | None:
    """The pid of the daemon serving this state (-1: one does, its pid unknown), or None."""
    return _kind(location).serving_pid(location)


__all__ = [
    "MODES",
    "STORES",
    "Mode",
    "Store",
    "StoreKind",
    "daemon_lock",
    "open_store",
    "serving_pid",
]
