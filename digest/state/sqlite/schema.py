"""Is this file digest's, and at which version: the checks before a file is used, and the
migrations applied to it."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import suppress
from functools import cache
from pathlib import Path

from ...errors import StateError
from ..migrations import (
    APPLICATION_ID,
    IDENTITY_STEP,
    MIGRATIONS,
    SCHEMA_VERSION,
    backfill_keys,
    statements,
)

log = logging.getLogger("digest")


def checked_version(db: sqlite3.Connection, path: Path) -> int:
    """The schema version of a file that is digest's, refusing one that is not: another
    program's, one whose tables do not match its version, or a newer digest's."""
    application = pragma(db, "application_id")
    version = pragma(db, "user_version")
    found = _schema(db)

    def refuse(why: str) -> StateError:
        return StateError(f"{path} is not a usable digest state file: {why}")

    if application not in (0, APPLICATION_ID):
        raise refuse(f"it belongs to another program (application id {application:#010x})")
    if version > SCHEMA_VERSION and (application or "table deliveries" in found):
        raise StateError(
            f"the state file {path} has schema version {version}, newer than this digest "
            f"understands ({SCHEMA_VERSION}); upgrade digest"
        )
    if version == 0 or version > SCHEMA_VERSION:
        tables = sorted(item.split()[1] for item in found if item.startswith("table "))
        if not tables:
            raise refuse(
                "it is an SQLite database with nothing in it; if you meant to start afresh, "
                "delete it and digest makes a new one"
            )
        raise refuse(f"it holds another program's tables ({', '.join(tables[:5])})")
    missing = _missing(_expected_schema(version), found)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise refuse(
            f"it says schema version {version} but has no {', no '.join(missing[:3])}{more}"
        )
    return version


def _missing(expected: frozenset[str], found: frozenset[str]) -> list[str]:
    """What is expected and not found, tables first, without the columns of those."""
    absent = expected - found
    tables = {item.split()[1] for item in absent if item.startswith("table ")}
    kinds = {"table": 0, "column": 1, "index": 2}
    return sorted(
        (
            item
            for item in absent
            if not (item.startswith("column ") and item.split()[1].split(".")[0] in tables)
        ),
        key=lambda item: (kinds[item.split()[0]], item),
    )


def pragma(db: sqlite3.Connection, name: str) -> int:
    return int(db.execute(f"PRAGMA {name}").fetchone()[0])


def _schema(db: sqlite3.Connection) -> frozenset[str]:
    """What a database holds: "table t", "column t.c" and "index i" items."""
    found: set[str] = set()
    objects = db.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for kind, name in objects:
        if kind == "table":
            found.add(f"table {name}")
            columns = db.execute("SELECT name FROM pragma_table_info(?)", (name,))
            found.update(f"column {name}.{column}" for (column,) in columns)
        elif kind == "index":
            found.add(f"index {name}")
    return frozenset(found)


@cache
def _expected_schema(version: int) -> frozenset[str]:
    """What a state file at `version` holds, from the migrations themselves."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for step in MIGRATIONS[:version]:
            for statement in statements(step):
                db.execute(statement)
        return _schema(db)
    finally:
        db.close()


def migrate(db: sqlite3.Connection, version: int, location: Path) -> None:
    """Each missing step in a transaction of its own; a new or older file is marked as
    digest's (application_id). A step that fails leaves the file at the version before it."""
    for number in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(MIGRATIONS[number]):
                db.execute(statement)
            if number == IDENTITY_STEP:
                db.executemany(
                    "INSERT INTO entry_keys (key, entry_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    backfill_keys(_backfillable(db, location)),
                )
            db.execute(f"PRAGMA user_version = {number + 1}")
            if number == SCHEMA_VERSION - 1:
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")
        except BaseException as e:
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and e.sqlite_errorname == "SQLITE_ERROR":
                raise StateError(
                    f"the state file {location} cannot be upgraded from schema version "
                    f"{number} to {number + 1} ({e}); it is left at version {number}"
                ) from e
            raise
    if version == SCHEMA_VERSION and pragma(db, "application_id") == 0:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _backfillable(db: sqlite3.Connection, location: Path) -> list[tuple[str, str, str | None]]:
    """The entries (id, title, link) whose keys can be made; one edited into other types
    gets none (it may come back as new once), with a warning naming it."""
    found = []
    for entry_id, title, link in db.execute("SELECT id, title, link FROM entries"):
        if isinstance(entry_id, str) and isinstance(title, str) and isinstance(link, str | None):
            found.append((entry_id, title, link))
        else:
            log.warning("%s: entry %r cannot be read; it gets no identity keys", location, entry_id)
    return found
