"""Reading entries and the ledger: a window's entries once, what each reader already had."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ...errors import StateRowError
from ...models import Delivery, Entry
from .. import common, rows
from .base import Base, guarded

_DONE_SQL = "('sent', 'written', 'empty')"
_ENTRY = """
    SELECT e.rowid AS row_number, e.*,
        (SELECT json_group_array(feed) FROM
           (SELECT feed FROM entry_feeds f WHERE f.entry_id = e.id
            ORDER BY f.first_seen, f.rowid)) AS feeds
    FROM entries e
"""


class Reading(Base):
    """The entries of a window, and what readers were sent, folded and last delivered;
    in bulk for many readers, or for one."""

    def _entries(self, where: str, parameters: Sequence[Any]) -> list[Entry]:
        found = []
        cursor = self._db.execute(f"{_ENTRY} WHERE {where} ORDER BY e.first_seen, e.id", parameters)
        for row in cursor:
            try:
                found.append(rows.entry(row))
            except rows.BadValue as e:
                which = repr(row["id"]) if isinstance(row["id"], str) else f"#{row['row_number']}"
                self._skip(f"entry {which}", e)
        return found

    @guarded
    def window_entries(self, after: datetime, until: datetime) -> list[Entry]:
        return self._entries(
            "e.first_seen > ? AND e.first_seen <= ? AND NOT e.backlog",
            (rows.ts(after), rows.ts(until)),
        )

    @guarded
    def entries_by_id(self, ids: Collection[str]) -> dict[str, Entry]:
        if not ids:
            return {}
        found = self._entries(
            "e.id IN (SELECT value FROM json_each(?)) AND NOT e.backlog",
            (rows.dump_strings(list(ids)),),
        )
        return {e.id: e for e in found}

    @guarded
    def new_entries(self, reader: str | None, after: datetime, until: datetime) -> list[Entry]:
        return common.new_entries(self, reader, after, until)  # type: ignore[arg-type]

    @guarded
    def sent_entry_ids(
        self, readers: Collection[str], entry_ids: Collection[str]
    ) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {reader: set() for reader in readers}
        if found and entry_ids:
            ids = rows.dump_strings(list(entry_ids))
            if len(found) == 1:  # the reader's own rows, by the primary key
                sql = """SELECT reader, entry_id FROM delivered_entries WHERE reader = ?
                         AND entry_id IN (SELECT value FROM json_each(?))"""
                parameters: tuple[str, ...] = (next(iter(found)), ids)
            else:  # by entry (few were sent to anyone yet), then kept for these readers
                sql = """SELECT reader, entry_id FROM delivered_entries
                         WHERE entry_id IN (SELECT value FROM json_each(?))
                         AND +reader IN (SELECT value FROM json_each(?))"""
                parameters = (ids, rows.dump_strings(list(found)))
            for reader, entry_id in self._db.execute(sql, parameters):
                found[reader].add(entry_id)
        return {reader: frozenset(ids) for reader, ids in found.items()}

    @guarded
    def folded_entry_ids(self, readers: Collection[str]) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {reader: set() for reader in readers}
        cursor = self._db.execute(
            """SELECT reader, local_date, entry_ids FROM deliveries WHERE status = 'folded'
               AND reader IN (SELECT value FROM json_each(?))""",
            (rows.dump_strings(list(found)),),
        )
        for row in cursor:
            try:
                found[row["reader"]].update(rows.strings(row, "entry_ids"))
            except rows.BadValue as e:
                self._skip(f"the folded digest of {row['reader']} on {row['local_date']}", e)
        return {reader: frozenset(ids) for reader, ids in found.items()}

    @guarded
    def last_deliveries(self, readers: Collection[str]) -> dict[str, Delivery | StateRowError]:
        cursor = self._db.execute(
            f"""SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY reader
                                  ORDER BY cutoff DESC, local_date DESC) AS n
                               FROM deliveries WHERE status IN {_DONE_SQL}
                               AND reader IN (SELECT value FROM json_each(?)))
                WHERE n = 1""",
            (rows.dump_strings(list(readers)),),
        )
        found: dict[str, Delivery | StateRowError] = {}
        for row in cursor:
            try:
                found[row["reader"]] = rows.delivery(row)
            except rows.BadValue as e:
                what = f"the latest delivery of {row['reader']} ({row['local_date']})"
                found[row["reader"]] = self._damaged(what, e)
        return found

    def last_delivery(self, reader: str) -> Delivery | None:
        last = self.last_deliveries([reader]).get(reader)
        if isinstance(last, StateRowError):
            raise last
        return last

    @guarded
    def delivery(self, reader: str, local_date: date) -> Delivery | None:
        row = self._db.execute(
            "SELECT * FROM deliveries WHERE reader = ? AND local_date = ?",
            (reader, local_date.isoformat()),
        ).fetchone()
        if row is None:
            return None
        try:
            return rows.delivery(row)
        except rows.BadValue as e:
            raise self._damaged(f"the delivery of {reader} on {local_date}", e) from e

    @guarded
    def deliveries_on(self, wanted: Mapping[str, date]) -> dict[str, Delivery | StateRowError]:
        found: dict[str, Delivery | StateRowError] = {}
        by_day: dict[date, list[str]] = {}
        for reader, day in wanted.items():
            by_day.setdefault(day, []).append(reader)
        for day, readers in by_day.items():
            cursor = self._db.execute(
                """SELECT * FROM deliveries WHERE local_date = ?
                   AND reader IN (SELECT value FROM json_each(?))""",
                (day.isoformat(), rows.dump_strings(readers)),
            )
            for row in cursor:
                try:
                    found[row["reader"]] = rows.delivery(row)
                except rows.BadValue as e:
                    what = f"the delivery of {row['reader']} on {day}"
                    found[row["reader"]] = self._damaged(what, e)
        return found

    @guarded
    def deliveries(self, reader: str) -> list[Delivery]:
        found = []
        cursor = self._db.execute(
            "SELECT * FROM deliveries WHERE reader = ? ORDER BY local_date DESC", (reader,)
        )
        for row in cursor:
            try:
                found.append(rows.delivery(row))
            except rows.BadValue as e:
                self._skip(f"the delivery of {reader} on {row['local_date']}", e)
        return found
