"""The deliveries ledger: at most one digest per reader and local date (the primary key),
and the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from psycopg import errors as pgerrors

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
        with self._transaction() as db:
            for d in deliveries:
                day = d.local_date.isoformat()
                db.execute(
                    """DELETE FROM deliveries WHERE reader = %s AND local_date = %s
                       AND status = 'folded'""",
                    (d.reader, day),
                )
                try:
                    with db.transaction():  # the error below is ours, the step's undo
                        db.execute(
                            """INSERT INTO deliveries (reader, local_date, status, message_id,
                                   entry_ids, cutoff, created_at, target, message, attempts,
                                   last_error)
                               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                            (d.reader, day, d.status, d.message_id,
                             rows.dump_strings(d.entry_ids), rows.ts(d.cutoff),
                             rows.ts(d.created_at), d.target, d.message, d.attempts,
                             d.last_error),
                        )  # fmt: skip
                except pgerrors.UniqueViolation as e:
                    raise StateError(
                        f"the state {self.location} already has a digest for {d.reader} "
                        f"on {day}; none of these {len(deliveries)} was stored"
                    ) from e
                if d.status in DONE:
                    _mark_entries(db, d.reader, d.local_date, d.entry_ids)

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
                _mark_entries(db, reader, local_date, rows.strings(row, "entry_ids"))
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


def _mark_entries(db: Connection, reader: str, local_date: date, entry_ids: Iterable[str]) -> None:
    marks = [(reader, i, local_date.isoformat()) for i in entry_ids]
    if marks:
        with db.cursor() as cursor:
            cursor.executemany(
                """INSERT INTO delivered_entries (reader, entry_id, local_date)
                   VALUES (%s, %s, %s) ON CONFLICT DO NOTHING""",
                marks,
            )
