"""The ledger at the size of a big morning: the queries a batched run makes use indexes (the
pruning of old ledger rows is a Store contract: tests/test_state.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest.dedupe import merge
from digest.models import Delivery, ParsedEntry
from digest.state import open_store

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def entries(feed: str, n: int, day: int) -> list[ParsedEntry]:
    return [
        ParsedEntry(title=f"Paper {day}.{i}", link=f"https://p.example/{day}/{i}",
                    guid=f"urn:{day}:{i}", published=T0)
        for i in range(n)
    ]  # fmt: skip


def test_every_query_of_a_batch_uses_an_index(tmp_path: Path) -> None:
    """EXPLAIN QUERY PLAN of each statement the batched run makes (traced from the store)
    scans no table of the ledger whole: at 100,000 readers a scan per batch is 100 scans."""
    readers = [f"subscriber:s{i}" for i in range(300)]
    with open_store(tmp_path / "state.sqlite") as store:
        found = merge([("f", "https://f.example", entries("f", 50, 1))])
        store.record_feed("https://f.example", "f", T0, status="200", candidates=found)
        window = store.window_entries(T0 - timedelta(days=1), T0)
        store.record_deliveries(
            [Delivery(r, date(2026, 11, 19), "sent", None, (window[i % 50].id,), T0, T0)
             for i, r in enumerate(readers)]
        )  # fmt: skip
        db = store._db  # type: ignore[attr-defined]
        traced: list[str] = []
        db.set_trace_callback(traced.append)
        wanted = dict.fromkeys(readers[:200], date(2026, 11, 20))
        store.deliveries_on(wanted)
        store.last_deliveries(readers[:200])
        store.folded_entry_ids(readers[:200])
        store.sent_entry_ids(readers[:200], [e.id for e in window])
        store.window_entries(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        store.fold_undelivered_before(wanted)
        db.set_trace_callback(None)
        plans = {}
        for sql in traced:
            if not re.match(r"\s*(SELECT|UPDATE|DELETE|WITH)", sql, re.IGNORECASE):
                continue
            rows = db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            plans[sql] = [str(row[3]) for row in rows]
    assert len(plans) >= 6
    for sql, plan in plans.items():
        scans = [step for step in plan if re.match(r"SCAN (deliveries|delivered_entries)\b", step)]
        assert not scans, f"{sql.strip()[:120]} …: {plan}"
