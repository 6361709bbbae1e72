"""What every part of the SQLite store shares: the connection, its transactions, and
turning driver errors into StateErrors."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from ...errors import StateError, StateRowError
from .. import Mode, files, rows
from .schema import pragma

log = logging.getLogger("digest")

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Base")


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Driver errors of the method become StateErrors naming the file; misuse of the
    driver (a closed store, wrong parameters) stays a bug with its traceback."""

    @wraps(method)
    def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.Error as e:
            raise failure(self.location, e) from e

    return guarded


def failure(location: str, e: sqlite3.Error) -> StateError:
    """A driver error as one sentence for the user."""
    name = str(getattr(e, "sqlite_errorname", "") or "")
    detail = str(e)
    if name == "SQLITE_FULL":
        why = (
            "cannot be written: its disk is full. Nothing is lost: free some space and run "
            "digest again, and what was not recorded is done then"
        )
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        why = (
            f"is damaged ({detail}): restore it from a backup, or move it away to start "
            "afresh (then every digest of the day goes out again)"
        )
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        why = f"cannot be written ({detail}): check the permissions of it and its directory"
    elif name.startswith("SQLITE_IOERR"):
        why = f"cannot be read or written ({detail}): check the disk it is on"
    elif name.startswith("SQLITE_CANTOPEN"):
        why = f"cannot be opened ({detail}): check that it and its directory are accessible"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        why = f"is busy ({detail}): another program holds a lock on it"
    elif isinstance(e, sqlite3.IntegrityError):
        why = f"refused a change that breaks its rules ({detail})"
    else:
        why = f"cannot be used ({detail})"
    return StateError(f"the state file {location} {why}")


class Base:
    """The connection to one state file (or to a copy of it in memory), shared by the
    parts of `SqliteStore`."""

    def __init__(
        self, db: sqlite3.Connection, path: Path, mode: Mode, handle: files.Handle | None = None
    ) -> None:
        self._db = db
        self._db.row_factory = sqlite3.Row
        self._path = path
        self._mode = mode
        self._handle = handle
        self._depth = 0  # transactions open: batch() and the step inside it
        self._problems: dict[str, None] = {}

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def schema_version(self) -> int:
        return pragma(self._db, "user_version")

    def problems(self) -> tuple[str, ...]:
        return tuple(self._problems)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        try:
            self._db.close()
        except sqlite3.Error as e:
            raise failure(self.location, e) from e
        finally:
            if handle is not None:  # only now: see files
                if self._mode == "write":
                    files.unlock_writing(handle)
                files.release(handle)

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if self._mode == "read":
            raise StateError(f"the state file {self.location} was opened for reading only")
        if self._depth and not db.in_transaction:
            # SQLite rolled the whole batch back (a full disk does that): nothing inside it
            # may now commit on its own
            raise self._rolled_back()
        begin, commit, undo = (
            ("SAVEPOINT step", "RELEASE step", ("ROLLBACK TO step", "RELEASE step"))
            if self._depth
            else ("BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
        )
        self._run(begin)
        self._depth += 1
        try:
            yield db
            if not db.in_transaction:
                raise self._rolled_back()
            self._run(commit)
        except BaseException:
            if db.in_transaction:  # unless SQLite has rolled back already
                with suppress(sqlite3.Error):
                    for statement in undo:
                        db.execute(statement)
            raise
        finally:
            self._depth -= 1

    def _rolled_back(self) -> StateError:
        return StateError(
            f"the state file {self.location}: the changes of this run were rolled back "
            "after an earlier error; nothing of them was recorded"
        )

    def _run(self, statement: str) -> None:
        try:
            self._db.execute(statement)
        except sqlite3.Error as e:
            raise failure(self.location, e) from e

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._transaction():
            yield

    def _skip(self, what: str, error: rows.BadValue) -> None:
        """A row that cannot be read back is left out, reported once per store."""
        line = f"{self.location}: {what} cannot be read ({error}); it is left out"
        if line not in self._problems:
            self._problems[line] = None
            log.warning("%s", line)

    def _damaged(self, what: str, error: rows.BadValue) -> StateRowError:
        return StateRowError(f"the state file {self.location}: {what} cannot be read ({error})")
