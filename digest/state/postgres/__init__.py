"""The state in a PostgreSQL database, on psycopg 3: the only package that imports psycopg.

`[digest] state = "postgresql://digest@db.example.org/digest"` (or `postgres://`): any libpq
URL without a password in it (libpq's own PGPASSWORD or ~/.pgpass supply one); a URL with
one is refused before anything connects, and never echoed. Connections come from one pool
per URL in the process (psycopg_pool); a store holds one connection while it is open.

The modes (see `digest.state.Mode`), with PostgreSQL's tools:

- *write* takes the writer lock, a session advisory lock (`pg_try_advisory_lock`) on a
  fixed key in the database, so a second writer of any process on any machine is refused;
  then it brings the schema up to date (`schema`). Each change commits on its own; a batch
  is one transaction, each step inside it a savepoint.
- *read* holds one REPEATABLE READ READ ONLY transaction for the store's lifetime: the state
  as it was when opened, whatever writers do meanwhile; no lock.
- *scratch* holds one transaction that is rolled back at close: a dry run reads and changes
  as a writer does and leaves no trace; no lock. (Its uncommitted rows do hold row locks
  while it is open: a writer changing the same rows waits for the dry run to end.)

Read and scratch stores of a database that holds no state yet work on an empty schema of
temporary tables, gone at close: they create nothing. A schema older than this digest is
not upgraded by them (that would lock the tables for writers): run digest once in write
mode, as every run does.

Every driver error becomes a `StateError` with one sentence naming the state; a server
that cannot be reached, one naming its host and port.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo as pgconninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import StateError, StateLockedError
from ...urls import redacted
from .. import Mode
from ..migrations import APPLICATION_ID, SCHEMA_VERSION
from .base import Connection, failure, first_line
from .feeds import Feeds
from .ledger import Ledger
from .reading import Reading
from .schema import checked_version, migrate

log = logging.getLogger("digest")

#: the advisory lock keys (two int4s): (digest, what is locked)
WRITER_LOCK = (APPLICATION_ID, 1)
DAEMON_LOCK = (APPLICATION_ID, 2)
#: seconds to wait for the server to answer a connection, and for a pooled connection
CONNECT_TIMEOUT = 10
POOL_TIMEOUT = 30.0
#: connections a process keeps per URL at most (a writer, readers, a daemon's store)
POOL_SIZE = 8


class PostgresStore(Feeds, Reading, Ledger):
    """One open connection to the state's database; `digest.state.Store` says what each
    method promises. Open one with `open_postgres` (or `digest.state.open_store`)."""


def open_postgres(location: Path | str, mode: Mode) -> PostgresStore:
    """Open the state at the libpq URL `location` in `mode` (see `digest.state.Mode`)."""
    url = str(location)
    where = server(url)
    pool = _pool(url, where)
    try:
        db: Connection = pool.getconn(timeout=POOL_TIMEOUT)
    except PoolTimeout as e:
        raise _unreachable(url, where) from e
    store: PostgresStore | None = None
    try:
        _prepare(db, url, mode)
        store = PostgresStore(db, url, where, mode, lambda conn: _give_back(pool, conn))
        return store
    except psycopg.InterfaceError:
        raise
    except psycopg.Error as e:
        raise failure(url, e, where) from e
    finally:
        if store is None:
            _give_back(pool, db)


def _prepare(db: Connection, url: str, mode: Mode) -> None:
    """Lock, check and migrate, or open the store's transaction, as the mode wants."""
    if mode == "write":
        locked = db.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", WRITER_LOCK).fetchall()
        if not locked[0]["ok"]:
            raise StateLockedError(
                f"{url} is in use by another digest process; try again when it has finished"
            )
        migrate(db, checked_version(db, url), url)
        return
    begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if mode == "read" else "BEGIN"
    db.execute(f"{begin} READ ONLY" if mode == "read" else begin)
    version = checked_version(db, url)
    if version == 0:  # nothing recorded yet: an empty state of temporary tables
        db.execute("ROLLBACK")
        db.execute(begin)
        version = checked_version(db, url)
        if version == 0:
            migrate(db, 0, url, temporary=True)
            return
    if version != SCHEMA_VERSION:
        raise StateError(
            f"the state {url} has schema version {version}, older than this digest's "
            f"({SCHEMA_VERSION}): run digest once (digest run) to upgrade it"
        )


def _give_back(pool: ConnectionPool[Connection], db: Connection) -> None:
    """Return a connection to its pool as it was taken: no transaction (a scratch store's
    is rolled back here), no lock, no temporary table; a broken one is dropped."""
    try:
        if db.info.transaction_status != TransactionStatus.IDLE:
            db.rollback()
        db.execute("DISCARD ALL")  # advisory locks, temporary tables, settings
    except psycopg.Error:
        db.close()
    pool.putconn(db)


def server(url: str) -> str:
    """Where a URL's server is, for messages: "host port N" (or the socket directory).
    Refuses a URL that is not a libpq one, or holds a password (neither echoed)."""
    try:
        params = pgconninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise StateError(
            f"the state {redacted(url)} is not a PostgreSQL URL libpq understands "
            "(postgresql://USER@HOST:PORT/DATABASE)"
        ) from None
    if params.get("password") is not None:
        raise StateError(
            f"the state {redacted(url)} has a password in its URL, which digest refuses (it "
            "would show in logs and process lists): put it in PGPASSWORD or ~/.pgpass"
        )
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    return f"{host} port {port}"


_pools: dict[str, ConnectionPool[Connection]] = {}
_pools_lock = threading.Lock()


def _pool(url: str, where: str) -> ConnectionPool[Connection]:
    """The process's pool for `url`, made (after one connection that shows the server can be
    reached) when first wanted."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is not None:
            return pool
        _probe(url, where)
        pool = ConnectionPool(
            url,
            kwargs={"autocommit": True, "row_factory": dict_row,
                    "connect_timeout": CONNECT_TIMEOUT},
            min_size=0,
            max_size=POOL_SIZE,
            open=False,
            check=ConnectionPool.check_connection,
            name="digest-state",
        )  # fmt: skip
        pool.open()
        _pools[url] = pool
        return pool


def _probe(url: str, where: str) -> None:
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.Error as e:
        raise _unreachable(url, where, e) from None


def _unreachable(url: str, where: str, e: psycopg.Error | None = None) -> StateError:
    if e is None:
        try:
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as again:
            e = again
    why = _reason(e) if e is not None else f"no connection free within {POOL_TIMEOUT:.0f} s"
    return StateError(
        f"the state {url}: cannot connect to the PostgreSQL server at {where} ({why})"
    )


def _reason(e: psycopg.Error) -> str:
    """What libpq said, without its hint lines and the address repeated."""
    text = first_line(e)
    text = re.sub(r"^connection failed:\s*", "", text)
    text = re.sub(r"^connection to server (at|on) .*?failed:\s*", "", text)
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    return text.rstrip(".") or type(e).__name__


def close_pools() -> None:
    """Close every pool this process opened (at exit, or before its server goes away)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)


@contextmanager
def daemon_lock(location: Path | str) -> Iterator[None]:
    """The daemon lock: an advisory lock on its own key, held by a connection of its own for
    the daemon's lifetime; the connection's application_name carries the pid for
    `serving_pid`. A database that is not a usable state is refused first."""
    url = str(location)
    where = server(url)
    open_postgres(url, "read").close()
    try:
        db = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"digest serve pid {os.getpid()}",
            row_factory=dict_row,
        )
    except psycopg.Error as e:
        raise _unreachable(url, where, e) from None
    try:
        got = db.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", DAEMON_LOCK).fetchall()
        if not got[0]["ok"]:
            pid = _serving_pid(db)
            who = f"pid {pid}" if pid and pid > 0 else "pid unknown"
            raise StateLockedError(
                f"another `digest serve` ({who}) is already running with the state {url}; "
                "stop it first"
            )
        yield
    except psycopg.Error as e:
        raise failure(url, e, where) from e
    finally:
        db.close()


def serving_pid(location: Path | str) -> int | None:
    url = str(location)
    where = server(url)
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, row_factory=dict_row) as db:
            return _serving_pid(db)
    except psycopg.Error:
        log.debug("%s: cannot ask the server at %s for a daemon", url, where)
        return None


def _serving_pid(db: psycopg.Connection[dict[str, object]]) -> int | None:
    found = db.execute(
        """SELECT a.application_name AS name FROM pg_locks l
           LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s
           AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database
                                                WHERE datname = current_database())""",
        DAEMON_LOCK,
    ).fetchall()
    if not found:
        return None
    match = re.fullmatch(r"digest serve pid (\d+)", str(found[0]["name"] or ""))
    return int(match.group(1)) if match else -1


__all__ = ["PostgresStore", "close_pools", "daemon_lock", "open_postgres", "serving_pid"]
