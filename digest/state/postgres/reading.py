"""Reading entries and the ledger: a window's entries once, what each reader already had."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from ...errors import StateRowError
from ...models import Delivery, Entry
from .. import common, rows
from .base import Base, guarded

_DONE_SQL = "('sent', 'written', 'empty')"
# feeds as the JSON text SQLite's json_group_array gives, in the order they brought it
_ENTRY = """
    SELECT e.*,
        (SELECT coalesce(json_agg(f.feed ORDER BY f.first_seen, f.seq), '[]')::text
         FROM entry_feeds f WHERE f.entry_id = e.id) AS feeds
    FROM entries e
"""


class Reading(Base):
    """The entries of a window, and what readers were sent, folded and last delivered;
    in bulk for many readers, or for one."""

    def _entries(self, where: str, parameters: Mapping[str, Any]) -> list[Entry]:
        found = []
        cursor = self._execute(f"{_ENTRY} WHERE {where} ORDER BY e.first_seen, e.id", parameters)
        for row in cursor:
            try:
                found.append(rows.entry(row))
            except rows.BadValue as e:
                self._skip(f"entry {row['id']!r}", e)
        return found

    @guarded
    def window_entries(self, after: datetime, until: datetime) -> list[Entry]:
        return self._entries(
            "e.first_seen > %(after)s AND e.first_seen <= %(until)s AND e.backlog = 0",
            {"after": rows.ts(after), "until": rows.ts(until)},
        )

    @guarded
    def entries_by_id(self, ids: Collection[str]) -> dict[str, Entry]:
        if not ids:
            return {}
        found = self._entries("e.id = ANY(%(ids)s) AND e.backlog = 0", {"ids": list(ids)})
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
            cursor = self._execute(
                """SELECT reader, entry_id FROM delivered_entries
                   WHERE reader = ANY(%s) AND entry_id = ANY(%s)""",
                (list(found), list(entry_ids)),
            )
            for row in cursor:
                found[row["reader"]].add(row["entry_id"])
        return {reader: frozenset(ids) for reader, ids in found.items()}

    @guarded
    def folded_entry_ids(self, readers: Collection[str]) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {reader: set() for reader in readers}
        if not found:
            return {}
        cursor = self._execute(
            """SELECT reader, local_date, entry_ids FROM deliveries WHERE status = 'folded'
               AND reader = ANY(%s)""",
            (list(found),),
        )
        for row in cursor:
            try:
                found[row["reader"]].update(rows.strings(row, "entry_ids"))
            except rows.BadValue as e:
                self._skip(f"the folded digest of {row['reader']} on {row['local_date']}", e)
        return {reader: frozenset(ids) for reader, ids in found.items()}

    @guarded
    def last_deliveries(self, readers: Collection[str]) -> dict[str, Delivery | StateRowError]:
        found: dict[str, Delivery | StateRowError] = {}
        if not readers:
            return found
        cursor = self._execute(
            f"""SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY reader
                                  ORDER BY cutoff DESC, local_date DESC) AS n
                               FROM deliveries WHERE status IN {_DONE_SQL}
                               AND reader = ANY(%s)) AS latest
                WHERE n = 1""",
            (list(readers),),
        )
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
        row = self._execute(
            "SELECT * FROM deliveries WHERE reader = %s AND local_date = %s",
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
            cursor = self._execute(
                "SELECT * FROM deliveries WHERE local_date = %s AND reader = ANY(%s)",
                (day.isoformat(), readers),
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
        cursor = self._execute(
            "SELECT * FROM deliveries WHERE reader = %s ORDER BY local_date DESC", (reader,)
        )
        for row in cursor:
            try:
                found.append(rows.delivery(row))
            except rows.BadValue as e:
                self._skip(f"the delivery of {reader} on {row['local_date']}", e)
        return found
