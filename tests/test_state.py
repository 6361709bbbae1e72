"""The SQLite state file, for real: migrations, the ledger, the windows, the lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import RunDigest

from digest.dedupe import Candidate, merge
from digest.errors import StateError, StateLockedError
from digest.models import Delivery, ParsedEntry
from digest.state import IDENTITY_STEP, MIGRATIONS, SCHEMA_VERSION, Store

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def cands(feed: str, *links: str, published: datetime | None = T0) -> list[Candidate]:
    items = [
        ParsedEntry(
            title=f"Paper {x}", link=x, guid=f"https://papers.example/{x}", published=published
        )
        for x in links
    ]
    return merge([(feed, f"https://{feed}.example/feed", items)])


def test_a_new_file_gets_the_current_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite"
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"entries", "entry_feeds", "feeds", "deliveries", "delivered_entries"} <= tables


def test_a_file_from_a_newer_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer than this digest"):
        Store.open(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_text("this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(StateError, match="not a usable digest state file"):
        Store.open(path)


def test_entries_are_new_once_and_remember_every_feed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        assert store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x", "y")) == 2
        later = T0 + timedelta(hours=1)
        assert (
            store.record_feed("b", "B", later, status="200", candidates=cands("b", "y", "z")) == 1
        )
        assert store.count_entries() == 3
        by_link = {e.link: e for e in store.new_entries("r", T0 - timedelta(days=1), later)}
        assert by_link["y"].feeds == ("a", "b")
        assert by_link["y"].first_seen == T0
        assert by_link["z"].first_seen == later


def test_new_entries_window_is_half_open_and_skips_delivered(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
        store.record_feed(
            "a", "A", T0 + timedelta(hours=2), status="200", candidates=cands("a", "y")
        )
        links = lambda after, until: [e.link for e in store.new_entries("r", after, until)]  # noqa: E731
        assert links(T0, T0 + timedelta(hours=3)) == ["y"]  # first_seen == after is excluded
        assert links(T0 - timedelta(seconds=1), T0) == ["x"]  # first_seen == until is included
        x = store.new_entries("r", T0 - timedelta(days=1), T0)[0]
        store.record_delivery(Delivery("r", date(2026, 11, 20), "sent", "<m@x>", (x.id,), T0, T0))
        assert links(T0 - timedelta(days=1), T0 + timedelta(days=1)) == ["y"]
        assert [e.link for e in store.new_entries("other", T0 - timedelta(days=1), T0)] == ["x"]


def test_the_deliveries_ledger_allows_one_digest_per_reader_and_date(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        first = Delivery("r", date(2026, 11, 20), "sent", "<m@x>", (), T0, T0)
        store.record_delivery(first)
        assert store.delivery("r", date(2026, 11, 20)) == first
        with pytest.raises(sqlite3.IntegrityError):
            store.record_delivery(first)
        assert store.last_delivery("r") == first


def test_a_runs_pending_digests_are_stored_all_or_none(tmp_path: Path) -> None:
    day = date(2026, 11, 20)
    with Store.open(tmp_path / "s.sqlite") as store:
        pending = [
            Delivery(f"r{i}", day, "pending", f"<m{i}@x>", (f"e{i}",), T0, T0, message=b"x")
            for i in range(3)
        ]
        store.record_delivery(pending[2])
        with pytest.raises(sqlite3.IntegrityError):
            store.record_deliveries(pending)  # the third is already there
        assert [store.delivery(f"r{i}", day) for i in range(2)] == [None, None]
        store.record_deliveries(pending[:2])
        assert [store.delivery(f"r{i}", day) for i in range(3)] == pending


def test_a_sent_digest_keeps_no_message_and_pruning_forgets_whom_old_entries_went_to(
    tmp_path: Path,
) -> None:
    day = date(2026, 11, 20)
    with Store.open(tmp_path / "s.sqlite") as store:
        store.record_feed(
            "https://a.example/feed", "a", T0, status="200", candidates=cands("a", "x")
        )
        (entry,) = store.new_entries("r", T0 - timedelta(hours=1), T0)
        pending = Delivery("r", day, "pending", "<m@x>", (entry.id,), T0, T0, message=b"raw")
        store.record_delivery(pending)
        assert store.delivery("r", day).message == b"raw"  # type: ignore[union-attr]
        store.mark_done("r", day, "sent", "r@example.org", attempts=1)
        assert store.delivery("r", day).message is None  # type: ignore[union-attr]
        store.prune(T0 + timedelta(days=10), keep_days=30)
        assert store.count_entries() == 1
        store.prune(T0 + timedelta(days=31), keep_days=30)
        assert store.count_entries() == 0
    with closing(sqlite3.connect(tmp_path / "s.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM delivered_entries").fetchone()[0] == 0


def test_the_upgrade_drops_the_messages_older_releases_kept_of_sent_digests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with closing(sqlite3.connect(path)) as db:  # a state file as the previous release left it
        for number, step in enumerate(MIGRATIONS[:-1]):
            db.executescript(step)
            db.execute(f"PRAGMA user_version = {number + 1}")
        for reader, status in (("a", "sent"), ("b", "pending")):
            db.execute(
                "INSERT INTO deliveries (reader, local_date, status, entry_ids, cutoff, "
                "created_at, message) VALUES (?, '2026-11-20', ?, '[]', ?, ?, x'72617721')",
                (reader, status, T0.isoformat(), T0.isoformat()),
            )
        db.commit()
    with Store.open(path) as store:
        assert store.delivery("a", date(2026, 11, 20)).message is None  # type: ignore[union-attr]
        assert store.delivery("b", date(2026, 11, 20)).message == b"raw!"  # type: ignore[union-attr]


def test_failed_fetch_keeps_old_validators_out(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        store.record_feed("a", "A", T0, status="200", etag='"v1"', candidates=[])
        store.record_feed("a", "A", T0 + timedelta(days=1), status="500", error="HTTP 500")
        status = store.feed_statuses()["a"]
        assert status.etag == '"v1"' and status.last_error == "HTTP 500"
        assert status.last_success == T0


def test_dry_run_copy_never_touches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    before = path.read_bytes()
    with Store.copy(path) as copy:
        copy.record_feed("a", "A", T0, status="200", candidates=cands("a", "y", "z"))
        assert copy.count_entries() == 3
    with Store.open(path) as store:
        assert store.count_entries() == 1
    assert path.read_bytes() == before


HOLD_LOCK = """
import sys, time
from pathlib import Path
from digest.state import Store
store = Store.open(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_process_on_the_same_state_file_is_refused(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    path = tmp_path / "state.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StateLockedError, match="in use by another digest process"):
            Store.open(path)
        config = tmp_path / "c.toml"
        config.write_text(f'[digest]\nstate = "{path}"\n[[feeds]]\nname = "f"\nurl = "none.xml"\n')
        result = run_digest("collect", "--config", str(config))
        assert result.returncode == 1
        assert "in use by another digest process" in result.stderr
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # the lock dies with its process: a crashed run never blocks the next one
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION


# --- identity keys ---------------------------------------------------------------------------


def test_keys_are_stored_as_16_byte_hashes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with closing(sqlite3.connect(path)) as db:
        sizes = {row[0] for row in db.execute("SELECT length(key) FROM entry_keys")}
    assert sizes == {16}


def test_categories_and_arxiv_fields_are_kept(tmp_path: Path) -> None:
    paper = ParsedEntry(
        title="A paper",
        link="https://arxiv.org/abs/2401.00001",
        categories=("cs.LG", "stat.ML"),
        arxiv_id="2401.00001",
        arxiv_version=1,
        announce_type="new",
        published=T0,
    )
    replaced = ParsedEntry(
        title="A paper, revised",
        link="https://arxiv.org/abs/2401.00001v2",
        arxiv_id="2401.00001",
        arxiv_version=2,
        announce_type="replace",
    )
    with Store.open(tmp_path / "s.sqlite") as store:
        store.record_feed("a", "A", T0, status="200", candidates=merge([("a", "a", [paper])]))
        later = T0 + timedelta(days=1)
        assert (
            store.record_feed(
                "a", "A", later, status="200", candidates=merge([("a", "a", [replaced])])
            )
            == 0
        )
        (entry,) = store.new_entries("r", T0 - timedelta(days=1), later)
    assert entry.id == "arxiv:2401.00001"
    assert entry.categories == ("cs.LG", "stat.ML")
    assert (entry.title, entry.arxiv_version, entry.announce_type) == ("A paper", 2, "replace")


def test_entries_from_before_identity_keys_stay_known_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with closing(sqlite3.connect(path)) as db:  # a state file as the previous release left it
        for number, step in enumerate(MIGRATIONS[:IDENTITY_STEP]):
            db.executescript(step)
            db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute(
            "INSERT INTO entries (id, title, link, summary, authors, first_seen) "
            "VALUES ('urn:uuid:7', 'Old post', 'http://www.blog.example/p/7/', '', '[]', ?)",
            (T0.isoformat(),),
        )
        db.commit()
    again = ParsedEntry(title="Old post", guid="urn:uuid:7")
    moved = ParsedEntry(title="Old post", guid="urn:uuid:8", link="https://blog.example/p/7")
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        later = T0 + timedelta(days=1)
        for item in (again, moved):
            batch = merge([("blog", "https://blog.example/feed", [item])])
            assert store.record_feed("f", "F", later, status="200", candidates=batch) == 0


def test_a_batch_is_one_transaction_and_each_step_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path) as store:
        with pytest.raises(ZeroDivisionError), store.batch():
            store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
            1 / 0  # noqa: B018 - a crash in the middle of a run's collection
        assert store.count_entries() == 0
        with store.batch():
            store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
            with pytest.raises(sqlite3.IntegrityError):
                store.record_feed("a", "A", T0, status="bad", candidates=[bad_candidate()])
            store.record_feed("b", "B", T0, status="200", candidates=cands("b", "y"))
    with Store.open(path) as store:
        assert {e.link for e in store.new_entries("r", T0 - timedelta(days=1), T0)} == {"x", "y"}
        assert store.feed_statuses()["a"].last_status == "200"  # the failed step left nothing


def bad_candidate() -> Candidate:
    """One that the entries table refuses (a NULL title), after its feed row was written."""
    (good,) = cands("c", "z")
    return Candidate(good.id, ParsedEntry(title=None, link="z"), ("c",), good.keys)  # type: ignore[arg-type]
