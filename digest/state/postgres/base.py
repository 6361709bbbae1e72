"""What every part of the PostgreSQL store shares: its connection, its transactions, and
turning driver errors into StateErrors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.rows import DictRow

from ...errors import StateError, StateRowError
from .. import Mode, rows

log = logging.getLogger("digest")

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Base")

Connection = psycopg.Connection[DictRow]


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Driver errors of the method become StateErrors naming the state; misuse of the
    driver (a closed connection) stays a bug with its traceback."""

    @wraps(method)
    def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except psycopg.InterfaceError:
            raise
        except psycopg.Error as e:
            raise failure(self.location, e, self._where) from e

    return guarded


def first_line(e: BaseException) -> str:
    """The driver's message without its hints and context lines."""
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else type(e).__name__


def failure(location: str, e: psycopg.Error, where: str) -> StateError:
    """A driver error as one sentence for the user; `where` names the server."""
    code = e.sqlstate or ""
    detail = first_line(e)
    if isinstance(e, pgerrors.DiskFull) or code == "53100":
        why = (
            "cannot be written: the database server's disk is full. Nothing is lost: free "
            "some space and run digest again, and what was not recorded is done then"
        )
    elif code.startswith("53"):
        why = f"is refused by the database server for want of resources ({detail})"
    elif isinstance(e, pgerrors.InsufficientPrivilege):
        why = f"cannot be used ({detail}): grant the database user the rights digest needs"
    elif isinstance(e, pgerrors.ReadOnlySqlTransaction):
        why = f"cannot be written ({detail}): the server is read-only (a standby?)"
    elif isinstance(e, psycopg.IntegrityError):
        why = f"refused a change that breaks its rules ({detail})"
    elif code in ("40001", "40P01") or code.startswith("55"):
        why = f"is busy ({detail}): try again when the other work on it has finished"
    elif code.startswith(("08", "57")) or (isinstance(e, psycopg.OperationalError) and not code):
        why = f"lost its connection to the server at {where} ({detail})"
    elif code.startswith("42"):
        why = (
            f"does not hold the tables digest expects ({detail}): was the database changed by hand?"
        )
    else:
        why = f"cannot be used ({detail})"
    return StateError(f"the state {location} {why}")


class Base:
    """One connection to the database, shared by the parts of `PostgresStore`.

    `write` mode works in autocommit, each change in a transaction of its own (a batch: one
    transaction, each step a savepoint); `read` and `scratch` hold one transaction for the
    store's lifetime (a snapshot; changes that are rolled back at close)."""

    def __init__(
        self,
        db: Connection,
        location: str,
        where: str,
        mode: Mode,
        release: Callable[[Connection], None],
    ) -> None:
        self._db = db
        self._location = location
        self._where = where
        self._mode = mode
        self._release: Callable[[Connection], None] | None = release
        self._problems: dict[str, None] = {}

    @property
    def location(self) -> str:
        return self._location

    @property
    def mode(self) -> Mode:
        return self._mode

    def problems(self) -> tuple[str, ...]:
        return tuple(self._problems)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(self._db)

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, parameters: Any = None) -> psycopg.Cursor[DictRow]:
        return self._db.execute(sql, parameters)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction, or a savepoint inside the batch's or the store's."""
        if self._mode == "read":
            raise StateError(f"the state {self.location} was opened for reading only")
        with self._db.transaction():
            yield self._db

    @contextmanager
    def batch(self) -> Iterator[None]:
        try:
            with self._transaction():
                yield
        except psycopg.InterfaceError:
            raise
        except psycopg.Error as e:  # the commit itself
            raise failure(self.location, e, self._where) from e

    def _skip(self, what: str, error: rows.BadValue) -> None:
        """A row that cannot be read back is left out, reported once per store."""
        line = f"{self.location}: {what} cannot be read ({error}); it is left out"
        if line not in self._problems:
            self._problems[line] = None
            log.warning("%s", line)

    def _damaged(self, what: str, error: rows.BadValue) -> StateRowError:
        return StateRowError(f"the state {self.location}: {what} cannot be read ({error})")
