"""Feeds and their entries as stored: fetches, identity keys, the backlog, pruning."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ...dedupe import Candidate
from ...models import FeedStatus
from ...urls import redacted
from .. import rows
from ..sqlite.feeds import NEW_FEED_WINDOW
from .base import Base, Connection, guarded


class Feeds(Base):
    """What is known of each feed, and storing what it brought."""

    @guarded
    def feed_statuses(self) -> dict[str, FeedStatus]:
        statuses = {}
        for row in self._execute("SELECT * FROM feeds ORDER BY url"):
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
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (url) DO UPDATE SET name = excluded.name,
                    last_status = excluded.last_status, last_error = excluded.last_error,
                    last_attempt = excluded.last_attempt, next_fetch = excluded.next_fetch,
                    failures = excluded.failures
                """,
                (url, name, status, error, stamp, rows.ts(next_fetch) if next_fetch else None,
                 failures),
            )  # fmt: skip
            if moved_to is not None:
                db.execute("UPDATE feeds SET moved_to = %s WHERE url = %s", (moved_to, url))
            if gone:
                db.execute("UPDATE feeds SET gone = %s WHERE url = %s", (stamp, url))
            if ok:
                db.execute(
                    """UPDATE feeds SET last_success = %s, etag = %s, last_modified = %s,
                       fetched_url = %s,
                       entries_seen = CASE WHEN %s THEN %s ELSE entries_seen END
                       WHERE url = %s""",
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
        # PostgreSQL keeps the old row version until it is vacuumed, and its space is then
        # reused rather than zeroed: the old key leaves the tables, not at once the disk.
        with self._transaction() as db:
            db.execute(
                """UPDATE feeds SET url = %s, fetched_url = %s, moved_to = %s, last_error = %s
                   WHERE url = %s""",
                (new, fetched_url, moved_to, last_error, old),
            )

    @guarded
    def prune(self, now: datetime, keep_days: int) -> int:
        cutoff = rows.ts(now - timedelta(days=keep_days))
        old = "SELECT id FROM entries WHERE first_seen < %(cutoff)s"
        parameters = {"cutoff": cutoff}
        with self._transaction() as db:
            db.execute(
                f"UPDATE entry_keys SET entry_id = NULL WHERE entry_id IN ({old})", parameters
            )
            db.execute(f"DELETE FROM entry_feeds WHERE entry_id IN ({old})", parameters)
            db.execute(f"DELETE FROM delivered_entries WHERE entry_id IN ({old})", parameters)
            # the ledger too, but each reader's latest digest (its next window starts at its
            # cutoff) and the Markdown pages' rows (the index and the archive list them)
            db.execute(
                """DELETE FROM deliveries WHERE local_date < %(day)s
                   AND reader NOT LIKE 'markdown:%%'
                   AND (reader, local_date) NOT IN (
                       SELECT reader, local_date FROM (
                           SELECT reader, local_date, row_number() OVER (PARTITION BY reader
                               ORDER BY cutoff DESC, local_date DESC) AS n
                           FROM deliveries WHERE status IN ('sent', 'written', 'empty')
                       ) AS latest WHERE n = 1)""",
                {"day": (now - timedelta(days=keep_days)).date().isoformat()},
            )
            return db.execute(
                "DELETE FROM entries WHERE first_seen < %(cutoff)s", parameters
            ).rowcount

    @guarded
    def entry_keys_count(self) -> int:
        return int(self._execute("SELECT count(*) AS n FROM entry_keys").fetchall()[0]["n"])

    @guarded
    def count_entries(self) -> int:
        return int(self._execute("SELECT count(*) AS n FROM entries").fetchall()[0]["n"])


def _first_fetch(db: Connection, url: str, now: str) -> bool:
    """True when the feed was never read before and the state is in use already: it holds
    entries from an earlier run, or has made digests."""
    row = db.execute("SELECT last_success FROM feeds WHERE url = %s", (url,)).fetchone()
    if row is not None and row["last_success"] is not None:
        return False
    found = db.execute(
        """SELECT EXISTS (SELECT 1 FROM entries WHERE first_seen < %s)
               OR EXISTS (SELECT 1 FROM deliveries) AS in_use""",
        (now,),
    ).fetchall()
    return bool(found[0]["in_use"])


def _add_entries(
    db: Connection,
    candidates: Sequence[Candidate],
    seen: str,
    backlog_before: datetime | None,
) -> int:
    """Store each candidate as a new entry, or as one more sighting of the entry any of its
    keys already names (with its new keys and feeds, and a newer arXiv version). Decided in
    order, as SQLite does one by one; written in a few statements (`_insert`)."""
    hashes = [[rows.key_hash(k) for k in c.keys or (c.id,)] for c in candidates]
    known = _lookup(db, [h for hs in hashes for h in hs])
    entry_rows: list[tuple[object, ...]] = []
    added: list[tuple[str, bool]] = []  # (id, backlog) of each entry inserted, in order
    newer: list[tuple[int, str | None, str, int]] = []
    key_rows: list[tuple[bytes, str | None]] = []
    feed_rows: list[tuple[str, str, str]] = []
    for c, keys in zip(candidates, hashes, strict=True):
        e = c.entry
        match = next((h for h in keys if h in known), None)
        if match is not None:
            entry_id = known[match]
            if entry_id is not None and e.arxiv_version is not None:
                newer.append((e.arxiv_version, e.announce_type, entry_id, e.arxiv_version))
        else:
            entry_id = c.id
            backlog = backlog_before is not None and (
                e.published is None or e.published < backlog_before
            )
            entry_rows.append(
                (entry_id, e.title, e.link, e.summary,
                 rows.ts(e.published) if e.published else None, rows.dump_strings(e.authors),
                 e.organisation, e.upvotes, seen, rows.dump_strings(e.categories), e.arxiv_id,
                 e.arxiv_version, e.announce_type, int(backlog))
            )  # fmt: skip
            added.append((entry_id, backlog))
        for h in keys:
            if h not in known:
                known[h] = entry_id
                key_rows.append((h, entry_id))
        if entry_id is not None:
            feed_rows.extend((entry_id, feed, seen) for feed in c.feeds)
    inserted = set(_insert(db, _ENTRIES, entry_rows, returning="id"))
    new = 0
    for entry_id, backlog in added:  # an id inserted twice in one fetch counts once
        if entry_id in inserted:
            inserted.discard(entry_id)
            new += not backlog
    if newer:
        with db.cursor() as cursor:
            cursor.executemany(
                """UPDATE entries SET arxiv_version = %s, announce_type = %s
                   WHERE id = %s AND coalesce(arxiv_version, 0) < %s""",
                newer,
            )
    _insert(db, _KEYS, key_rows)
    _insert(db, _FEEDS, feed_rows)
    return new


# each: the table with its columns, and their types (for the arrays unnest takes)
_ENTRIES = (
    "entries (id, title, link, summary, published, authors, organisation, upvotes, first_seen,"
    " categories, arxiv_id, arxiv_version, announce_type, backlog)",
    ("text", "text", "text", "text", "text", "text", "text", "bigint", "text", "text", "text",
     "bigint", "text", "bigint"),
)  # fmt: skip
_KEYS = ("entry_keys (key, entry_id)", ("bytea", "text"))
_FEEDS = ("entry_feeds (entry_id, feed, first_seen)", ("text", "text", "text"))


def _insert(
    db: Connection,
    table: tuple[str, tuple[str, ...]],
    values: Sequence[tuple[object, ...]],
    *,
    returning: str | None = None,
) -> list[object]:
    """Insert rows in their order in one statement, skipping those already there; the
    `returning` column of the rows inserted."""
    if not values:
        return []
    into, types = table
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    columns = ", ".join(f"c{i}" for i in range(len(types)))
    sql = (
        f"INSERT INTO {into} SELECT {columns} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS t({columns}, n) ORDER BY n ON CONFLICT DO NOTHING"
    )
    if returning:
        sql += f" RETURNING {returning}"
    cursor = db.execute(sql, [list(column) for column in zip(*values, strict=True)])
    return [row[returning] for row in cursor] if returning else []


def _lookup(db: Connection, hashes: Sequence[bytes]) -> dict[bytes, str | None]:
    if not hashes:
        return {}
    cursor = db.execute("SELECT key, entry_id FROM entry_keys WHERE key = ANY(%s)", (list(hashes),))
    return {bytes(row["key"]): row["entry_id"] for row in cursor}
