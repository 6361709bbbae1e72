"""The deliveries ledger: at most one digest per reader and local date (the primary key),
and the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from ...errors import StateError
from ...models import DONE, Delivery
from .. import rows
from .base import Base, Connection, guarded


class Ledger(Base):
    """Changes to the ledger, each in one transaction."""

    def record_delivery(self, delivery: Delivery) -> None:
        self.record_deliveries([delivery])

    @guarded
    def record_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        days = [d.local_date.isoformat() for d in deliveries]
        readers = [d.reader for d in deliveries]
        with self._transaction() as db:
            db.execute(
                """DELETE FROM deliveries d USING unnest(%s::text[], %s::text[]) AS k(r, day)
                   WHERE d.reader = k.r AND d.local_date = k.day AND d.status = 'folded'""",
                (readers, days),
            )
            cursor = db.execute(
                """INSERT INTO deliveries (reader, local_date, status, message_id, entry_ids,
                       cutoff, created_at, target, message, attempts, last_error)
                   SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],
                       %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[],
                       %s::bigint[], %s::text[])
                   ON CONFLICT (reader, local_date) DO NOTHING
                   RETURNING reader, local_date""",
                (readers, days, [d.status for d in deliveries],
                 [d.message_id for d in deliveries],
                 [rows.dump_strings(d.entry_ids) for d in deliveries],
                 [rows.ts(d.cutoff) for d in deliveries],
                 [rows.ts(d.created_at) for d in deliveries], [d.target for d in deliveries],
                 [d.message for d in deliveries], [d.attempts for d in deliveries],
                 [d.last_error for d in deliveries]),
            )  # fmt: skip
            stored = {(row["reader"], row["local_date"]) for row in cursor}
            if len(stored) < len(deliveries):  # the first one already there, in order
                seen: set[tuple[str, str]] = set()
                for reader, day in zip(readers, days, strict=True):
                    if (reader, day) not in stored or (reader, day) in seen:
                        raise StateError(
                            f"the state {self.location} already has a digest for {reader} "
                            f"on {day}; none of these {len(deliveries)} was stored"
                        )
                    seen.add((reader, day))
            _mark_entries(
                db,
                [(d.reader, i, d.local_date) for d in deliveries if d.status in DONE
                 for i in d.entry_ids],
            )  # fmt: skip

    @guarded
    def mark_done(
        self, reader: str, local_date: date, status: str, target: str, *, attempts: int
    ) -> None:
        with self._transaction() as db:
            key = (reader, local_date.isoformat())
            row = db.execute(
                """SELECT entry_ids FROM deliveries WHERE reader = %s AND local_date = %s
                   AND status IN ('pending', 'failed') FOR UPDATE""",
                key,
            ).fetchone()
            if row is None:
                raise StateError(f"no pending digest for {reader} on {local_date}")
            db.execute(
                """UPDATE deliveries SET status = %s, target = %s, attempts = %s,
                       last_error = NULL, message = NULL
                   WHERE reader = %s AND local_date = %s""",
                (status, target, attempts, *key),
            )
            try:
                ids = rows.strings(row, "entry_ids")
                _mark_entries(db, [(reader, i, local_date) for i in ids])
            except rows.BadValue as e:  # it went out: recorded, and only its entries lost
                self._skip(f"the entries of the digest of {reader} on {local_date}", e)

    @guarded
    def mark_undelivered(
        self, reader: str, local_date: date, status: str, error: str, *, attempts: int
    ) -> None:
        with self._transaction() as db:
            db.execute(
                """UPDATE deliveries SET status = %s, last_error = %s, attempts = %s
                   WHERE reader = %s AND local_date = %s AND status IN ('pending', 'failed')""",
                (status, error, attempts, reader, local_date.isoformat()),
            )

    @guarded
    def fold_undelivered(self, reader: str, before: date) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                """UPDATE deliveries SET status = 'folded'
                   WHERE reader = %s AND local_date < %s AND status IN ('pending', 'failed')""",
                (reader, before.isoformat()),
            )
            return cursor.rowcount

    @guarded
    def fold_undelivered_before(self, wanted: Mapping[str, date]) -> frozenset[str]:
        folded: set[str] = set()
        by_day: dict[date, list[str]] = {}
        for reader, day in wanted.items():
            by_day.setdefault(day, []).append(reader)
        with self._transaction() as db:
            for day, readers in by_day.items():
                cursor = db.execute(
                    """UPDATE deliveries SET status = 'folded'
                       WHERE reader = ANY(%s) AND local_date < %s
                       AND status IN ('pending', 'failed') RETURNING reader""",
                    (readers, day.isoformat()),
                )
                folded.update(row["reader"] for row in cursor)
        return frozenset(folded)


def _mark_entries(db: Connection, marks: Sequence[tuple[str, str, date]]) -> None:
    """Entries (reader, entry id, local date) sent to their readers, in one statement."""
    if marks:
        db.execute(
            """INSERT INTO delivered_entries (reader, entry_id, local_date)
               SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])
               ON CONFLICT DO NOTHING""",
            ([m[0] for m in marks], [m[1] for m in marks], [m[2].isoformat() for m in marks]),
        )
