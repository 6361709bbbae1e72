"""The SQLite schema as numbered migrations.

Each step moves the schema up one version, inside one transaction, and a step that has
shipped is never edited: a change is a new step. A store on another database keeps the same
numbering with its own dialect, so that one `user_version` means one set of tables.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..dedupe import identity_keys
from ..models import ParsedEntry
from .rows import key_hash

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
#: `PRAGMA application_id` of a digest state file ("dgst"), so that neither digest nor
#: file(1) mistakes another program's SQLite file for one. Files made before it was set
#: have 0 and are recognised by their schema; opening one for writing sets it.
APPLICATION_ID = int.from_bytes(b"dgst", "big")


def statements(step: str) -> list[str]:
    """The statements of one migration step, in order."""
    return [s for s in step.split(";") if s.strip()]


def backfill_keys(rows: Iterable[tuple[str, str, str | None]]) -> list[tuple[bytes, str]]:
    """Keys for entries (id, title, link) stored before identity keys existed: their old id
    (a guid, a link, or a title hash, which new items of the same kind produce too) and
    today's keys."""
    found: list[tuple[bytes, str]] = []
    for entry_id, title, link in rows:
        keys = (entry_id, *identity_keys(ParsedEntry(title=title, link=link), ""))
        found.extend((key_hash(k), entry_id) for k in dict.fromkeys(keys))
    return found
