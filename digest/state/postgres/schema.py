"""The schema on PostgreSQL: the SQLite migrations (`digest.state.migrations`, the one list
of steps) translated to PostgreSQL's dialect, the version kept in a table of its own, and
the checks before a database is used.

The translation: `TEXT` is `TEXT COLLATE "C"` (instants are ISO 8601 text, compared and
ordered byte-wise as in SQLite, whatever the database's collation), `BLOB` is `BYTEA`,
`INTEGER` is `BIGINT`, `WITHOUT ROWID` goes. What SQLite gives implicitly and PostgreSQL
does not (a row's insertion order, its rowid) is added by `_EXTRA` after a step.
"""

from __future__ import annotations

import re

import psycopg

from ...errors import StateError
from ..migrations import APPLICATION_ID, IDENTITY_STEP, MIGRATIONS, SCHEMA_VERSION, backfill_keys
from ..migrations import statements as sqlite_statements
from .base import Connection, first_line

#: the table that says a database (or schema) is digest's, and at which version
VERSION_TABLE = "digest_schema"
#: the tables the migrations make
TABLES = ("entries", "entry_feeds", "feeds", "deliveries", "delivered_entries", "entry_keys")

#: statements added to a step on PostgreSQL, by step number
_EXTRA: dict[int, tuple[str, ...]] = {
    # the order an entry's feeds first brought it (SQLite orders by rowid)
    0: ("ALTER TABLE entry_feeds ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY",),
}

_TYPES = {"TEXT": 'TEXT COLLATE "C"', "BLOB": "BYTEA", "INTEGER": "BIGINT"}


def translate(statement: str, *, temporary: bool = False) -> str:
    """One SQLite DDL statement of the migrations in PostgreSQL's dialect; `temporary`:
    its tables are temporary ones (a reader's or a dry run's empty state)."""
    sql = re.sub(r"\b(TEXT|BLOB|INTEGER)\b", lambda m: _TYPES[m.group(1)], statement)
    sql = re.sub(r"\)\s*WITHOUT ROWID\s*$", ")", sql.rstrip())
    if temporary:
        sql = re.sub(r"^\s*CREATE TABLE\b", "CREATE TEMPORARY TABLE", sql)
    return sql


def step_statements(number: int, *, temporary: bool = False) -> list[str]:
    """The statements of migration `number` (0-based) on PostgreSQL, in order."""
    found = [translate(s, temporary=temporary) for s in sqlite_statements(MIGRATIONS[number])]
    return [*found, *_EXTRA.get(number, ())]


def checked_version(db: Connection, location: str) -> int:
    """The schema version of a database that holds digest's state (0: none yet), refusing
    one that holds another program's tables of the same names, or a newer digest's."""

    def refuse(why: str) -> StateError:
        return StateError(f"the state {location} is not a usable digest state: {why}")

    present = {
        row["tablename"]
        for row in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    }
    if VERSION_TABLE not in present:
        clash = sorted(present & set(TABLES))
        if clash:
            raise refuse(f"it holds another program's tables ({', '.join(clash[:5])})")
        return 0
    found = db.execute(f"SELECT application, version FROM {VERSION_TABLE}").fetchall()
    if len(found) != 1 or found[0]["application"] != APPLICATION_ID:
        raise refuse(f"its table {VERSION_TABLE} is not digest's")
    version = int(found[0]["version"])
    if version > SCHEMA_VERSION:
        raise StateError(
            f"the state {location} has schema version {version}, newer than this digest "
            f"understands ({SCHEMA_VERSION}); upgrade digest"
        )
    missing = sorted(set(TABLES) - present)
    if missing:
        raise refuse(f"it says schema version {version} but has no table {', '.join(missing)}")
    return version


def migrate(db: Connection, version: int, location: str, *, temporary: bool = False) -> None:
    """Each missing step in a transaction of its own (a savepoint inside an open one); a step
    that fails leaves the database at the version before it."""
    for number in range(version, SCHEMA_VERSION):
        try:
            with db.transaction():
                if number == 0:
                    table = "TEMPORARY TABLE" if temporary else "TABLE"
                    db.execute(
                        f"CREATE {table} {VERSION_TABLE} (application BIGINT NOT NULL, "
                        "version INTEGER NOT NULL)"
                    )
                    db.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s, 0)", (APPLICATION_ID,))
                for statement in step_statements(number, temporary=temporary):
                    db.execute(statement)
                if number == IDENTITY_STEP:
                    old = db.execute("SELECT id, title, link FROM entries").fetchall()
                    with db.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO entry_keys (key, entry_id) VALUES (%s, %s) "
                            "ON CONFLICT DO NOTHING",
                            backfill_keys((r["id"], r["title"], r["link"]) for r in old),
                        )
                db.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (number + 1,))
        except psycopg.InterfaceError:
            raise
        except psycopg.Error as e:
            if isinstance(e, psycopg.OperationalError):
                raise
            raise StateError(
                f"the state {location} cannot be upgraded from schema version {number} to "
                f"{number + 1} ({first_line(e)}); it is left at version {number}"
            ) from e
