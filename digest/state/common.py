"""What every store computes the same way from its own bulk reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..models import Entry

if TYPE_CHECKING:
    from . import Store


def new_entries(store: Store, reader: str | None, after: datetime, until: datetime) -> list[Entry]:
    """Store.new_entries from the store's window_entries, folded_entry_ids, entries_by_id
    and sent_entry_ids (see its contract)."""
    window = store.window_entries(after, until)
    if reader is None:
        return window
    have = {e.id for e in window}
    folded = store.folded_entry_ids([reader])[reader] - have
    entries = window
    if folded:
        entries = sorted(
            [*window, *store.entries_by_id(folded).values()],
            key=lambda e: (e.first_seen, e.id),
        )
    sent = store.sent_entry_ids([reader], [e.id for e in entries])[reader]
    return [e for e in entries if e.id not in sent]
