"""Feeds and their entries as stored: fetches, identity keys, the backlog, pruning."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from ...dedupe import Candidate
from ...models import FeedStatus
from ...urls import redacted
from .. import rows
from .base import Base, guarded
from .schema import pragma

#: on a feed's first fetch into an existing state file, only entries published this
#: recently are digest candidates; the rest are its backlog
NEW_FEED_WINDOW = timedelta(days=2)
# SQLite's smallest limit on parameters in one statement
_CHUNK = 900


_DONE_SQL = "('sent', 'written', 'empty')"


class Feeds(Base):
    """What is known of each feed, and storing what it brought."""

    @guarded
    def feed_statuses(self) -> dict[str, FeedStatus]:
        statuses = {}
        for row in self._db.execute("SELECT * FROM feeds"):
            try:
                status = rows.feed_status(row)
            except rows.BadValue as e:
                key = redacted(row["url"]) if isinstance(row["url"], str) else "?"
                self._skip(f"the row of feed {key!r} (fetched as if new)", e)
                continue
            statuses[status.url] = status
        return statuses

    @guarded
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
        ok = error is None
        parsed = candidates is not None
        stamp = rows.ts(now)
        with self._transaction() as db:
            backlog_before = None
            if parsed and ok and _first_fetch(db, url, stamp):
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
                (url, name, status, error, stamp, rows.ts(next_fetch) if next_fetch else None,
                 failures),
            )  # fmt: skip
            if moved_to is not None:
                db.execute("UPDATE feeds SET moved_to = ? WHERE url = ?", (moved_to, url))
            if gone:
                db.execute("UPDATE feeds SET gone = ? WHERE url = ?", (stamp, url))
            if ok:
                db.execute(
                    """UPDATE feeds SET last_success = ?, etag = ?, last_modified = ?,
                       fetched_url = ?,
                       entries_seen = CASE WHEN ? THEN ? ELSE entries_seen END WHERE url = ?""",
                    (stamp, etag, last_modified, fetched_url, parsed, len(candidates or ()), url),
                )
            return _add_entries(db, candidates or (), stamp, backlog_before)

    @guarded
    def rekey_feed(
        self,
        old: str,
        new: str,
        *,
        fetched_url: str | None,
        moved_to: str | None,
        last_error: str | None,
    ) -> None:
        before = pragma(self._db, "secure_delete")
        self._db.execute("PRAGMA secure_delete = ON")  # the old key's bytes overwritten
        try:
            with self._transaction() as db:
                db.execute(
                    """UPDATE feeds SET url = ?, fetched_url = ?, moved_to = ?, last_error = ?
                       WHERE url = ?""",
                    (new, fetched_url, moved_to, last_error, old),
                )
        finally:
            self._db.execute(f"PRAGMA secure_delete = {before}")

    @guarded
    def prune(self, now: datetime, keep_days: int) -> int:
        cutoff = rows.ts(now - timedelta(days=keep_days))
        old = "SELECT id FROM entries WHERE first_seen < ?"
        with self._transaction() as db:
            db.execute(
                f"UPDATE entry_keys SET entry_id = NULL WHERE entry_id IN ({old})", (cutoff,)
            )
            db.execute(f"DELETE FROM entry_feeds WHERE entry_id IN ({old})", (cutoff,))
            db.execute(f"DELETE FROM delivered_entries WHERE entry_id IN ({old})", (cutoff,))
            # the ledger too, but each reader's latest digest (its next window starts at its
            # cutoff) and the Markdown pages' rows (the index and the archive list them)
            db.execute(
                f"""DELETE FROM deliveries WHERE local_date < ? AND reader NOT LIKE 'markdown:%'
                    AND rowid NOT IN (SELECT rowid FROM (SELECT rowid, row_number() OVER
                        (PARTITION BY reader ORDER BY cutoff DESC, local_date DESC) AS n
                        FROM deliveries WHERE status IN {_DONE_SQL}) WHERE n = 1)""",
                ((now - timedelta(days=keep_days)).date().isoformat(),),
            )
            return db.execute("DELETE FROM entries WHERE first_seen < ?", (cutoff,)).rowcount

    @guarded
    def entry_keys_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entry_keys").fetchone()[0])

    @guarded
    def count_entries(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])


def _first_fetch(db: sqlite3.Connection, url: str, now: str) -> bool:
    """True when the feed was never read before and the state file is in use already:
    it holds entries from an earlier run, or has made digests."""
    row = db.execute("SELECT last_success FROM feeds WHERE url = ?", (url,)).fetchone()
    if row is not None and row["last_success"] is not None:
        return False
    in_use = db.execute(
        """SELECT EXISTS (SELECT 1 FROM entries WHERE first_seen < ?)
               OR EXISTS (SELECT 1 FROM deliveries)""",
        (now,),
    ).fetchone()[0]
    return bool(in_use)


def _add_entries(
    db: sqlite3.Connection,
    candidates: Sequence[Candidate],
    seen: str,
    backlog_before: datetime | None,
) -> int:
    """Store each candidate as a new entry, or as one more sighting of the entry any of its
    keys already names (with its new keys and feeds, and a newer arXiv version)."""
    hashes = [[rows.key_hash(k) for k in c.keys or (c.id,)] for c in candidates]
    known = _lookup(db, [h for hs in hashes for h in hs])
    new = 0
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
                (entry_id, e.title, e.link, e.summary,
                 rows.ts(e.published) if e.published else None, rows.dump_strings(e.authors),
                 e.organisation, e.upvotes, seen, rows.dump_strings(e.categories), e.arxiv_id,
                 e.arxiv_version, e.announce_type, backlog),
            ).rowcount  # fmt: skip
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
        cursor = db.execute(
            f"SELECT key, entry_id FROM entry_keys WHERE key IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        found.update((row[0], row[1]) for row in cursor)
    return found
