"""The state in one SQLite file: this package is the only place that imports sqlite3.

Every driver error becomes a `StateError` with a sentence naming the file, wherever it
happens: opening, checking, migrating, reading, committing, copying. A file is refused,
never re-initialised over, when it is empty, is not SQLite, belongs to another program,
has a schema other than digest's for its version, or comes from a newer digest. A missing
file is created whole (`files.create`).

The modes (see `digest.state.Mode`): *write* takes the writer lock and migrates the file;
*read* reads the file itself, read-only and unlocked, when its schema is current (an older
one is migrated in a copy in memory); *scratch* works on a copy in memory.

The store's parts: `base` (connection, transactions, errors), `schema` (checks and
migrations), `feeds`, `reading` (entries and what readers had), `ledger`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from ...errors import StateError, StateLockedError
from .. import Mode, files
from ..migrations import SCHEMA_VERSION
from .base import failure
from .feeds import NEW_FEED_WINDOW, Feeds
from .ledger import Ledger
from .reading import Reading
from .schema import checked_version, migrate

log = logging.getLogger("digest")


class SqliteStore(Feeds, Reading, Ledger):
    """One open state file (or a copy of it in memory); `digest.state.Store` says what each
    method promises. Open one with `open_sqlite` (or `digest.state.open_store`)."""


def open_sqlite(location: Path | str, mode: Mode) -> SqliteStore:
    """Open the state file at `location` in `mode` (see `digest.state.Mode`)."""
    path = Path(location)
    try:
        if mode == "write":
            return _open_for_writing(path)
        return _open_for_reading(path, scratch=mode == "scratch")
    except sqlite3.Error as e:
        raise failure(str(path), e) from e
    except OSError as e:  # finding or reading the file itself (a directory it is in, say)
        raise StateError(f"the state file {path} cannot be opened: {e.strerror}") from e


@contextmanager
def daemon_lock(location: Path | str) -> Iterator[None]:
    """The daemon lock on the state file (see `files`), made first if need be; a file that
    is not a usable state file is refused before the daemon starts."""
    path = Path(location)
    ensure_exists(path)
    open_sqlite(path, "read").close()
    with files.daemon_lock(path):
        yield


def serving_pid(location: Path | str) -> int | None:
    return files.serving_pid(Path(location))


def ensure_exists(path: Path) -> None:
    """Create the state file, whole, unless it exists. Raises StateError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            files.create(path, _build)
    except OSError as e:
        raise StateError(f"cannot create the state file {path}: {e.strerror}") from e
    except sqlite3.Error as e:
        raise failure(str(path), e) from e


def _build(path: Path) -> None:
    """A new state file at the current schema, committed and synced."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(db, 0, path)
    finally:
        db.close()


def _open_for_writing(path: Path) -> SqliteStore:
    ensure_exists(path)
    handle = _acquire(path, writable=True)
    db: sqlite3.Connection | None = None
    try:
        if not files.lock_for_writing(handle):
            raise StateLockedError(
                f"{path} is in use by another digest process; try again when it has finished"
            )
        _refuse_by_header(path, handle)
        if files.names(handle) > 1:
            log.warning(
                "%s: the state file has %d names (hard links). SQLite keeps its write-ahead "
                "log beside the name it was opened by: use one name only",
                path,
                files.names(handle),
            )
        # check_same_thread off: while digests are sent, the outbox is written from a
        # thread of its own (pipeline._send_all), never at the same time as from this one.
        db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        version = checked_version(db, path)  # before anything is written to it
        db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL survives any crash of the process (the kill tests prove it);
        # only an OS crash or power loss can undo the last commits, which at worst
        # re-sends a digest. FULL would fsync twice per delivery and halve throughput.
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db, version, path)
        return SqliteStore(db, path, "write", handle)
    except BaseException:
        if db is not None:
            db.close()  # before the descriptor: see files
        files.unlock_writing(handle)
        files.release(handle)
        raise


def _open_for_reading(path: Path, *, scratch: bool) -> SqliteStore:
    mode: Mode = "scratch" if scratch else "read"
    if not path.exists():  # nothing recorded yet; never created by a reader
        if path.is_symlink():
            raise StateError(f"the state file {path} is a symbolic link to nothing")
        memory = _memory()
        migrate(memory, 0, path)
        return SqliteStore(memory, path, mode)
    handle = _acquire(path, writable=False)
    source: sqlite3.Connection | None = None
    try:
        _refuse_by_header(path, handle)
        # quoted: a `#` or `?` in the path would otherwise end it and open another file
        uri = f"file:{quote(str(path), safe='/')}?mode=ro"
        source = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        version = checked_version(source, path)
        if not scratch and version == SCHEMA_VERSION:
            source.execute("PRAGMA query_only = ON")
            # one snapshot for the store's lifetime, as a copy gave: a read starts it
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return SqliteStore(source, path, mode, handle)
        memory = _memory()
        try:
            source.backup(memory)
        except BaseException:
            memory.close()
            raise
    except BaseException:
        if source is not None:
            source.close()  # before the descriptor: see files
        files.release(handle)
        raise
    source.close()
    files.release(handle)
    try:
        migrate(memory, version, path)
    except BaseException:
        memory.close()
        raise
    return SqliteStore(memory, path, mode)


def _memory() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)


def _acquire(path: Path, *, writable: bool) -> files.Handle:
    try:
        return files.acquire(path, writable=writable)
    except IsADirectoryError as e:
        raise StateError(f"the state file {path} is a directory, not a file") from e
    except OSError as e:
        raise StateError(f"the state file {path} cannot be opened: {e.strerror}") from e


def _refuse_by_header(path: Path, handle: files.Handle) -> None:
    why = files.refusal(handle)
    if why is not None:
        raise StateError(f"{path} is not a usable digest state file: {why}")


__all__ = ["NEW_FEED_WINDOW", "SqliteStore", "daemon_lock", "failure", "open_sqlite", "serving_pid"]
