"""The SQLite state file: seen entries, feed validators, and the deliveries ledger."""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

from .dedupe import Candidate, identity_keys
from .errors import StateError, StateLockedError
from .models import DONE, Delivery, Entry, FeedStatus, ParsedEntry

# Each step moves the schema up one version, inside one transaction. Never edit a step
# that has shipped: add a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        link TEXT,
        summary TEXT NOT NULL,
        published TEXT,
        authors TEXT NOT NULL,
        organisation TEXT,
        upvotes INTEGER,
        first_seen TEXT NOT NULL
    );
    CREATE INDEX entries_first_seen ON entries (first_seen);
    CREATE TABLE entry_feeds (
        entry_id TEXT NOT NULL REFERENCES entries (id),
        feed TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (entry_id, feed)
    );
    CREATE TABLE feeds (
        url TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        last_status TEXT,
        last_error TEXT,
        last_attempt TEXT,
        last_success TEXT,
        entries_seen INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE deliveries (
        reader TEXT NOT NULL,
        local_date TEXT NOT NULL,
        status TEXT NOT NULL,
        message_id TEXT,
        entry_ids TEXT NOT NULL,
        cutoff TEXT NOT NULL,
        created_at TEXT NOT NULL,
        target TEXT,
        PRIMARY KEY (reader, local_date)
    );
    CREATE TABLE delivered_entries (
        reader TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        local_date TEXT NOT NULL,
        PRIMARY KEY (reader, entry_id)
    );
    """,
    # 2: the outbox. A digest is stored as 'pending' with its message before it is sent.
    """
    ALTER TABLE deliveries ADD COLUMN message BLOB;
    ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE deliveries ADD COLUMN last_error TEXT;
    """,
    # 3: canonical identity. Every key an entry was seen under (arXiv id, DOI, URL, guid,
    # title), as a 16-byte hash; entry_id is NULL once the entry itself has been pruned.
    # A backlog entry came with a feed's first fetch and is never a digest candidate.
    """
    ALTER TABLE entries ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE entries ADD COLUMN arxiv_id TEXT;
    ALTER TABLE entries ADD COLUMN arxiv_version INTEGER;
    ALTER TABLE entries ADD COLUMN announce_type TEXT;
    ALTER TABLE entries ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE entry_keys (key BLOB PRIMARY KEY, entry_id TEXT) WITHOUT ROWID;
    CREATE INDEX entry_keys_entry ON entry_keys (entry_id);
    """,
    # 4: feed health: where a feed moved, whether it is gone, and when it may be fetched again
    """
    ALTER TABLE feeds ADD COLUMN fetched_url TEXT;
    ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    ALTER TABLE feeds ADD COLUMN gone TEXT;
    ALTER TABLE feeds ADD COLUMN next_fetch TEXT;
    ALTER TABLE feeds ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: pruning finds whom an entry went to by the entry; a digest that went out keeps no
    # message (earlier releases kept every sent message's bytes)
    """
    CREATE INDEX delivered_entries_entry ON delivered_entries (entry_id);
    UPDATE deliveries SET message = NULL WHERE status IN ('sent', 'written', 'empty');
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: the migration that created entry_keys; entries stored before it get their keys in it
IDENTITY_STEP = next(i for i, step in enumerate(MIGRATIONS) if "CREATE TABLE entry_keys" in step)
#: on a feed's first fetch into an existing state file, only entries published this
#: recently are digest candidates; the rest are its backlog
NEW_FEED_WINDOW = timedelta(days=2)
# SQLite's smallest limit on parameters in one statement
_CHUNK = 900


class Store:
    """One open state file. Use `Store.open` for the real file, `Store.copy` for a dry run."""

    def __init__(self, db: sqlite3.Connection, lock: IO[bytes] | None = None) -> None:
        self._db = db
        self._lock = lock
        self._db.row_factory = sqlite3.Row
        self._migrate()

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) and lock the state file; a second process is refused."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(f"{path}.lock", "ab")
        except OSError as e:
            raise StateError(f"cannot create the state file {path}: {e.strerror}") from e
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            lock.close()
            raise StateLockedError(
                f"{path} is in use by another digest process; try again when it has finished"
            ) from e
        # check_same_thread off: while digests are sent, the outbox is written from a
        # thread of its own (pipeline._send_all), never at the same time as from this one.
        db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL survives any crash of the process (the kill tests prove it);
            # only an OS crash or power loss can undo the last commits, which at worst
            # re-sends a digest. FULL would fsync twice per delivery and halve throughput.
            db.execute("PRAGMA synchronous=NORMAL")
            return cls(db, lock)
        except BaseException as e:
            db.close()
            lock.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise StateError(f"{path} is not a usable digest state file ({e})") from e
            raise

    @classmethod
    def copy(cls, path: Path) -> Store:
        """An in-memory copy of the state file (or an empty one): changes never reach disk."""
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path.exists():
            try:
                source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    source.backup(memory)
                finally:
                    source.close()
            except sqlite3.DatabaseError as e:
                memory.close()
                raise StateError(f"{path} is not a usable digest state file ({e})") from e
        try:
            return cls(memory)
        except BaseException:
            memory.close()
            raise

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:  # inside batch(): a savepoint, all or nothing as well
            self._db.execute("SAVEPOINT step")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK TO step")
                self._db.execute("RELEASE step")
                raise
            self._db.execute("RELEASE step")
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Many changes in one transaction (each still all or nothing on its own): storing
        every feed of a run at once writes each page of the key index once, not per feed."""
        with self._transaction():
            yield

    def _migrate(self) -> None:
        version = cast(int, self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state file has schema version {version}, newer than this digest "
                f"understands ({SCHEMA_VERSION}); upgrade digest"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                if number == IDENTITY_STEP:
                    _backfill_keys(db)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return cast(int, self._db.execute("PRAGMA user_version").fetchone()[0])

    # feeds

    def feed_statuses(self) -> dict[str, FeedStatus]:
        rows = self._db.execute("SELECT * FROM feeds").fetchall()
        return {row["url"]: _feed_status(row) for row in rows}

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
        """Record one feed's fetch and store its parsed entries (None: nothing was parsed) in
        one transaction; return how many entries are new digest candidates. Validators are
        kept only on success, so a feed that failed is fetched in full next time. A permanent
        move and a 410 are kept until the feed's config URL (the row's key) changes.

        A feed read for the first time into a state file that was already in use (by other
        feeds before this run, or by deliveries) brings its backlog: only its entries
        published within NEW_FEED_WINDOW are candidates, so adding a feed never floods a
        digest. On a fresh state file everything the feeds hold now is a candidate."""
        ok = error is None
        parsed = candidates is not None
        with self._transaction() as db:
            backlog_before = None
            if parsed and ok and self._first_fetch(db, url, now):
                backlog_before = now - NEW_FEED_WINDOW
            db.execute(
                """
                INSERT INTO feeds (url, name, last_status, last_error, last_attempt,
                    next_fetch, failures)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (url) DO UPDATE SET name = excluded.name,
                    last_status = excluded.last_status, last_error = excluded.last_error,
                    last_attempt = excluded.last_attempt, next_fetch = excluded.next_fetch,
                    failures = excluded.failures
                """,
                (url, name, status, error, _ts(now), _ts(next_fetch) if next_fetch else None,
                 failures),
            )  # fmt: skip
            if moved_to is not None:
                db.execute("UPDATE feeds SET moved_to = ? WHERE url = ?", (moved_to, url))
            if gone:
                db.execute("UPDATE feeds SET gone = ? WHERE url = ?", (_ts(now), url))
            if ok:
                db.execute(
                    """UPDATE feeds SET last_success = ?, etag = ?, last_modified = ?,
                       fetched_url = ?,
                       entries_seen = CASE WHEN ? THEN ? ELSE entries_seen END WHERE url = ?""",
                    (
                        _ts(now),
                        etag,
                        last_modified,
                        fetched_url,
                        parsed,
                        len(candidates or ()),
                        url,
                    ),
                )
            return _add_entries(db, candidates or (), now, backlog_before)

    @staticmethod
    def _first_fetch(db: sqlite3.Connection, url: str, now: datetime) -> bool:
        """True when the feed was never read before and the state file is in use already:
        it holds entries from an earlier run, or has made digests."""
        row = db.execute("SELECT last_success FROM feeds WHERE url = ?", (url,)).fetchone()
        if row is not None and row["last_success"] is not None:
            return False
        in_use = db.execute(
            """SELECT EXISTS (SELECT 1 FROM entries WHERE first_seen < ?)
                   OR EXISTS (SELECT 1 FROM deliveries)""",
            (_ts(now),),
        ).fetchone()[0]
        return bool(in_use)

    def prune(self, now: datetime, keep_days: int) -> int:
        """Forget entries first seen more than keep_days ago, keeping their identity keys
        (16 bytes each) so that none of them ever comes back as new, and the record of
        whom they were sent to, which only kept them out of later digests. Returns how many."""
        cutoff = _ts(now - timedelta(days=keep_days))
        old = "SELECT id FROM entries WHERE first_seen < ?"
        with self._transaction() as db:
            db.execute(
                f"UPDATE entry_keys SET entry_id = NULL WHERE entry_id IN ({old})", (cutoff,)
            )
            db.execute(f"DELETE FROM entry_feeds WHERE entry_id IN ({old})", (cutoff,))
            db.execute(f"DELETE FROM delivered_entries WHERE entry_id IN ({old})", (cutoff,))
            return db.execute("DELETE FROM entries WHERE first_seen < ?", (cutoff,)).rowcount

    def entry_keys_count(self) -> int:
        return cast(int, self._db.execute("SELECT count(*) FROM entry_keys").fetchone()[0])

    # entries

    def count_entries(self) -> int:
        return cast(int, self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def new_entries(self, reader: str | None, after: datetime, until: datetime) -> list[Entry]:
        """Entries first seen in (after, until], and those of the reader's folded digests,
        that were never delivered to this reader. With no reader: every entry first seen in
        (after, until], for collection statistics and explanations."""
        rows = self._db.execute(
            """
            SELECT e.*, (SELECT json_group_array(feed) FROM
                           (SELECT feed FROM entry_feeds f WHERE f.entry_id = e.id
                            ORDER BY f.first_seen, f.rowid)) AS feeds
            FROM entries e
            WHERE ((e.first_seen > ? AND e.first_seen <= ?)
                   OR e.id IN (SELECT j.value FROM deliveries d, json_each(d.entry_ids) j
                               WHERE d.reader = ? AND d.status = 'folded'))
              AND NOT e.backlog
              AND NOT EXISTS (SELECT 1 FROM delivered_entries d
                              WHERE d.reader = ? AND d.entry_id = e.id)
            ORDER BY e.first_seen, e.id
            """,
            (_ts(after), _ts(until), reader, reader),
        ).fetchall()
        return [_entry(row) for row in rows]

    # deliveries

    def delivery(self, reader: str, local_date: date) -> Delivery | None:
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE reader = ? AND local_date = ?",
            (reader, local_date.isoformat()),
        ).fetchone()
        return _delivery(row) if row else None

    def last_delivery(self, reader: str) -> Delivery | None:
        row = self._db.execute(
            """SELECT * FROM deliveries WHERE reader = ? AND status IN ('sent', 'written', 'empty')
               ORDER BY cutoff DESC LIMIT 1""",
            (reader,),
        ).fetchone()
        return _delivery(row) if row else None

    def deliveries(self, reader: str) -> list[Delivery]:
        """Every delivery to the reader, newest local date first."""
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE reader = ? ORDER BY local_date DESC", (reader,)
        ).fetchall()
        return [_delivery(row) for row in rows]

    def record_delivery(self, delivery: Delivery) -> None:
        """Store a delivery row; when it is done, mark its entries as sent to that reader, in
        the same transaction. A pending row replaces a folded one for the same date."""
        self.record_deliveries([delivery])

    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store several delivery rows in one transaction, as `record_delivery` stores one:
        a run's pending digests are stored together before the first is sent."""
        with self._transaction() as db:
            for delivery in deliveries:
                db.execute(
                    """DELETE FROM deliveries WHERE reader = ? AND local_date = ?
                       AND status = 'folded'""",
                    (delivery.reader, delivery.local_date.isoformat()),
                )
                db.execute(
                    """INSERT INTO deliveries (reader, local_date, status, message_id, entry_ids,
                           cutoff, created_at, target, message, attempts, last_error)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        delivery.reader,
                        delivery.local_date.isoformat(),
                        delivery.status,
                        delivery.message_id,
                        json.dumps(list(delivery.entry_ids)),
                        _ts(delivery.cutoff),
                        _ts(delivery.created_at),
                        delivery.target,
                        delivery.message,
                        delivery.attempts,
                        delivery.last_error,
                    ),
                )
                if delivery.status in DONE:
                    self._mark_entries(db, delivery.reader, delivery.local_date, delivery.entry_ids)

    def mark_done(
        self, reader: str, local_date: date, status: str, target: str, *, attempts: int
    ) -> None:
        """A pending digest was accepted (the server's 250) or written: one transaction. Its
        message is dropped with it: only a digest still to send needs one."""
        with self._transaction() as db:
            key = (reader, local_date.isoformat())
            row = db.execute(
                """SELECT entry_ids FROM deliveries WHERE reader = ? AND local_date = ?
                   AND status IN ('pending', 'failed')""",
                key,
            ).fetchone()
            if row is None:
                raise StateError(f"no pending digest for {reader} on {local_date}")
            db.execute(
                """UPDATE deliveries SET status = ?, target = ?, attempts = ?, last_error = NULL,
                       message = NULL
                   WHERE reader = ? AND local_date = ?""",
                (status, target, attempts, *key),
            )
            self._mark_entries(db, reader, local_date, json.loads(row["entry_ids"]))

    def mark_undelivered(
        self, reader: str, local_date: date, status: str, error: str, *, attempts: int
    ) -> None:
        """Record why a pending digest did not go out; it stays in the outbox."""
        with self._transaction() as db:
            db.execute(
                """UPDATE deliveries SET status = ?, last_error = ?, attempts = ?
                   WHERE reader = ? AND local_date = ? AND status IN ('pending', 'failed')""",
                (status, error, attempts, reader, local_date.isoformat()),
            )

    def fold_undelivered(self, reader: str, before: date) -> int:
        """Digests of earlier dates that never went out are given up: their entries, never
        marked sent, become candidates for the next digest. Returns how many were folded."""
        with self._transaction() as db:
            cursor = db.execute(
                """UPDATE deliveries SET status = 'folded'
                   WHERE reader = ? AND local_date < ? AND status IN ('pending', 'failed')""",
                (reader, before.isoformat()),
            )
            return cursor.rowcount

    @staticmethod
    def _mark_entries(
        db: sqlite3.Connection, reader: str, local_date: date, entry_ids: Iterable[str]
    ) -> None:
        db.executemany(
            """INSERT INTO delivered_entries (reader, entry_id, local_date) VALUES (?, ?, ?)
               ON CONFLICT DO NOTHING""",
            [(reader, i, local_date.isoformat()) for i in entry_ids],
        )


def key_hash(key: str) -> bytes:
    """An identity key as stored: 16 bytes, whatever its length."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def _add_entries(
    db: sqlite3.Connection,
    candidates: Sequence[Candidate],
    now: datetime,
    backlog_before: datetime | None,
) -> int:
    """Store each candidate as a new entry, or as one more sighting of the entry any of its
    keys already names (with its new keys and feeds, and a newer arXiv version)."""
    hashes = [[key_hash(k) for k in c.keys or (c.id,)] for c in candidates]
    known = _lookup(db, [h for hs in hashes for h in hs])
    new = 0
    seen = _ts(now)
    key_rows: list[tuple[bytes, str | None]] = []
    feed_rows: list[tuple[str, str, str]] = []
    for c, keys in zip(candidates, hashes, strict=True):
        e = c.entry
        match = next((h for h in keys if h in known), None)
        if match is not None:
            entry_id = known[match]
            if entry_id is not None and e.arxiv_version is not None:
                db.execute(
                    """UPDATE entries SET arxiv_version = ?, announce_type = ?
                       WHERE id = ? AND coalesce(arxiv_version, 0) < ?""",
                    (e.arxiv_version, e.announce_type, entry_id, e.arxiv_version),
                )
        else:
            entry_id = c.id
            backlog = backlog_before is not None and (
                e.published is None or e.published < backlog_before
            )
            inserted = db.execute(
                """INSERT INTO entries (id, title, link, summary, published, authors,
                       organisation, upvotes, first_seen, categories, arxiv_id, arxiv_version,
                       announce_type, backlog)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO NOTHING""",
                (
                    entry_id,
                    e.title,
                    e.link,
                    e.summary,
                    _ts(e.published) if e.published else None,
                    json.dumps(list(e.authors)),
                    e.organisation,
                    e.upvotes,
                    seen,
                    json.dumps(list(e.categories)),
                    e.arxiv_id,
                    e.arxiv_version,
                    e.announce_type,
                    backlog,
                ),
            ).rowcount
            new += inserted and not backlog
        for h in keys:
            if h not in known:
                known[h] = entry_id
                key_rows.append((h, entry_id))
        if entry_id is not None:
            feed_rows.extend((entry_id, feed, seen) for feed in c.feeds)
    db.executemany(
        "INSERT INTO entry_keys (key, entry_id) VALUES (?, ?) ON CONFLICT DO NOTHING", key_rows
    )
    db.executemany(
        """INSERT INTO entry_feeds (entry_id, feed, first_seen) VALUES (?, ?, ?)
           ON CONFLICT DO NOTHING""",
        feed_rows,
    )
    return new


def _lookup(db: sqlite3.Connection, hashes: Sequence[bytes]) -> dict[bytes, str | None]:
    found: dict[bytes, str | None] = {}
    for start in range(0, len(hashes), _CHUNK):
        chunk = hashes[start : start + _CHUNK]
        rows = db.execute(
            f"SELECT key, entry_id FROM entry_keys WHERE key IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def _backfill_keys(db: sqlite3.Connection) -> None:
    """Keys for entries stored before identity keys existed: their old id (a guid, a link,
    or a title hash, which new items of the same kind produce too) and today's keys."""
    rows = db.execute("SELECT id, title, link FROM entries").fetchall()
    for row in rows:
        keys = (row["id"], *identity_keys(ParsedEntry(title=row["title"], link=row["link"]), ""))
        db.executemany(
            "INSERT INTO entry_keys (key, entry_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(key_hash(k), row["id"]) for k in dict.fromkeys(keys)],
        )


def _ts(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the state file")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _entry(row: sqlite3.Row) -> Entry:
    first_seen = _dt(row["first_seen"])
    assert first_seen is not None
    return Entry(
        id=row["id"],
        title=row["title"],
        link=row["link"],
        summary=row["summary"],
        published=_dt(row["published"]),
        feeds=tuple(json.loads(row["feeds"])),
        first_seen=first_seen,
        authors=tuple(json.loads(row["authors"])),
        organisation=row["organisation"],
        upvotes=row["upvotes"],
        categories=tuple(json.loads(row["categories"])),
        arxiv_id=row["arxiv_id"],
        arxiv_version=row["arxiv_version"],
        announce_type=row["announce_type"],
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    cutoff, created = _dt(row["cutoff"]), _dt(row["created_at"])
    assert cutoff is not None and created is not None
    return Delivery(
        reader=row["reader"],
        local_date=date.fromisoformat(row["local_date"]),
        status=row["status"],
        message_id=row["message_id"],
        entry_ids=tuple(json.loads(row["entry_ids"])),
        cutoff=cutoff,
        created_at=created,
        target=row["target"],
        message=row["message"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )


def _feed_status(row: sqlite3.Row) -> FeedStatus:
    values: dict[str, Any] = dict(row)
    values.pop("name")
    for key in ("last_attempt", "last_success", "gone", "next_fetch"):
        values[key] = _dt(values[key])
    return FeedStatus(**values)
