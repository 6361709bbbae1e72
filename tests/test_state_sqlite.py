"""The SQLite state file itself, for real: its creation, migrations, refusals and locks.

What every store promises is tested in test_state.py; what a user meets when the file is
damaged, foreign, full or shared is tested through the CLI in test_state_damage.py.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
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
from digest.state import daemon_lock, open_store, serving_pid
from digest.state.migrations import APPLICATION_ID, IDENTITY_STEP, MIGRATIONS, SCHEMA_VERSION

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def cands(feed: str, *links: str) -> list[Candidate]:
    items = [
        ParsedEntry(title=f"Paper {x}", link=x, guid=f"https://papers.example/{x}", published=T0)
        for x in links
    ]
    return merge([(feed, f"https://{feed}.example/feed", items)])


def old_release(path: Path, steps: int) -> sqlite3.Connection:
    """A state file as a release with `steps` migrations left it (no application id)."""
    db = sqlite3.connect(path)
    for number, step in enumerate(MIGRATIONS[:steps]):
        db.executescript(step)
        db.execute(f"PRAGMA user_version = {number + 1}")
    return db


def test_a_new_file_gets_the_current_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite"
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION  # type: ignore[attr-defined]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"entries", "entry_feeds", "feeds", "deliveries", "delivered_entries"} <= tables
    # it holds the messages and addresses of every subscriber: for its owner only
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith("state.")) == []


def test_a_file_from_a_newer_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path):
        pass
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for mode in ("write", "read", "scratch"):
        with pytest.raises(StateError, match="newer than this digest understands"):
            open_store(path, mode)  # type: ignore[arg-type]


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_text("this is not a database, it is a shopping list\n" * 100)
    with pytest.raises(StateError, match="not a usable digest state file"):
        open_store(path)


def test_the_upgrade_drops_the_messages_older_releases_kept_of_sent_digests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    with closing(old_release(path, len(MIGRATIONS) - 1)) as db:
        for reader, status in (("a", "sent"), ("b", "pending")):
            db.execute(
                "INSERT INTO deliveries (reader, local_date, status, entry_ids, cutoff, "
                "created_at, message) VALUES (?, '2026-11-20', ?, '[]', ?, ?, x'72617721')",
                (reader, status, T0.isoformat(), T0.isoformat()),
            )
        db.commit()
    with open_store(path) as store:
        assert store.delivery("a", date(2026, 11, 20)).message is None  # type: ignore[union-attr]
        assert store.delivery("b", date(2026, 11, 20)).message == b"raw!"  # type: ignore[union-attr]
    with closing(sqlite3.connect(path)) as db:  # and it is marked as digest's from now on
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


def test_a_sent_digest_keeps_no_message_and_pruning_forgets_whom_old_entries_went_to(
    tmp_path: Path,
) -> None:
    day = date(2026, 11, 20)
    with open_store(tmp_path / "s.sqlite") as store:
        store.record_feed(
            "https://a.example/feed", "a", T0, status="200", candidates=cands("a", "x")
        )
        (entry,) = store.new_entries("r", T0 - timedelta(hours=1), T0)
        pending = Delivery("r", day, "pending", "<m@x>", (entry.id,), T0, T0, message=b"raw")
        store.record_delivery(pending)
        store.mark_done("r", day, "sent", "r@example.org", attempts=1)
        store.prune(T0 + timedelta(days=31), keep_days=30)
    with closing(sqlite3.connect(tmp_path / "s.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM delivered_entries").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM deliveries WHERE message NOTNULL").fetchone() == (
            0,
        )


def test_keys_are_stored_as_16_byte_hashes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with open_store(path) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with closing(sqlite3.connect(path)) as db:
        sizes = {row[0] for row in db.execute("SELECT length(key) FROM entry_keys")}
    assert sizes == {16}


def test_entries_from_before_identity_keys_stay_known_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with closing(old_release(path, IDENTITY_STEP)) as db:
        db.execute(
            "INSERT INTO entries (id, title, link, summary, authors, first_seen) "
            "VALUES ('urn:uuid:7', 'Old post', 'http://www.blog.example/p/7/', '', '[]', ?)",
            (T0.isoformat(),),
        )
        db.commit()
    again = ParsedEntry(title="Old post", guid="urn:uuid:7")
    moved = ParsedEntry(title="Old post", guid="urn:uuid:8", link="https://blog.example/p/7")
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION  # type: ignore[attr-defined]
        later = T0 + timedelta(days=1)
        for item in (again, moved):
            batch = merge([("blog", "https://blog.example/feed", [item])])
            assert store.record_feed("f", "F", later, status="200", candidates=batch) == 0


def test_a_dry_run_copy_never_touches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with open_store(path) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    before = path.read_bytes()
    with open_store(path, "scratch") as copy:
        copy.record_feed("a", "A", T0, status="200", candidates=cands("a", "y", "z"))
        assert copy.count_entries() == 3
    with open_store(path) as store:
        assert store.count_entries() == 1
    assert path.read_bytes() == before


def test_a_read_store_of_a_current_file_reads_the_file_itself(tmp_path: Path) -> None:
    """No copy of the whole file for status, feeds, explain or archive; an older schema is
    migrated in a copy in memory, and the file is left as it was."""
    current, older = tmp_path / "current.sqlite", tmp_path / "older.sqlite"
    with open_store(current):
        pass
    old_release(older, len(MIGRATIONS) - 1).close()
    before = older.read_bytes()
    with open_store(current, "read") as store:
        files = [row[2] for row in store._db.execute("PRAGMA database_list")]  # type: ignore[attr-defined]
        assert files == [str(current)]
    with open_store(older, "read") as store:
        assert store.schema_version == SCHEMA_VERSION  # type: ignore[attr-defined]
        files = [row[2] for row in store._db.execute("PRAGMA database_list")]  # type: ignore[attr-defined]
        assert files == [""]  # in memory
    assert older.read_bytes() == before


def test_read_and_scratch_stores_never_create_the_file(tmp_path: Path) -> None:
    for mode in ("read", "scratch"):
        with open_store(tmp_path / "state.sqlite", mode):  # type: ignore[arg-type]
            pass
    assert list(tmp_path.iterdir()) == []


# --- the writer lock ---------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from digest.state import daemon_lock, open_store, serving_pid
store = open_store(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "write")
print("locked", flush=True)
time.sleep(60)
"""


def hold(path: Path, mode: str = "write") -> subprocess.Popen[str]:
    """Another process holding the state file open in `mode`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def refused_elsewhere(path: Path) -> bool:
    """Whether another process is refused the state file for writing now."""
    attempt = subprocess.run(
        [sys.executable, "-c", "import sys; from digest.state import open_store; "
         "open_store(sys.argv[1]).close()", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert attempt.returncode == 0 or "StateLockedError" in attempt.stderr, attempt.stderr
    return attempt.returncode != 0


def stop(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    if holder.stdout is not None:
        holder.stdout.close()


def test_a_second_process_on_the_same_state_file_is_refused(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    path = tmp_path / "state.sqlite"
    holder = hold(path)
    try:
        with pytest.raises(StateLockedError, match="in use by another digest process"):
            open_store(path)
        config = tmp_path / "c.toml"
        config.write_text(f'[digest]\nstate = "{path}"\n[[feeds]]\nname = "f"\nurl = "none.xml"\n')
        result = run_digest("collect", "--config", str(config))
        assert result.returncode == 1
        assert "in use by another digest process" in result.stderr
    finally:
        stop(holder)
    # the lock dies with its process: a crashed run never blocks the next one
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION  # type: ignore[attr-defined]


def test_the_same_file_under_another_name_is_refused_too(tmp_path: Path) -> None:
    """A hard link in another directory and a symbolic link are the same database: a second
    writer by either name is refused while the first holds it."""
    path = tmp_path / "a" / "state.sqlite"
    with open_store(path):
        pass
    (tmp_path / "b").mkdir()
    hard, soft = tmp_path / "b" / "hard.sqlite", tmp_path / "b" / "soft.sqlite"
    os.link(path, hard)
    soft.symlink_to(path)
    for holder_name, other in ((path, hard), (hard, soft), (soft, path)):
        holder = hold(holder_name)
        try:
            with pytest.raises(StateLockedError, match="in use by another digest process"):
                open_store(other)
        finally:
            stop(holder)
    with open_store(hard) as store:  # and each name works alone
        assert store.count_entries() == 0


def test_a_bind_mount_of_the_directory_is_the_same_database(tmp_path: Path) -> None:
    real, mounted = tmp_path / "real", tmp_path / "mounted"
    real.mkdir()
    mounted.mkdir()
    if subprocess.run(["mount", "--bind", str(real), str(mounted)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root or CAP_SYS_ADMIN)")
    try:
        holder = hold(real / "state.sqlite")
        try:
            with pytest.raises(StateLockedError):
                open_store(mounted / "state.sqlite")
        finally:
            stop(holder)
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_second_writer_in_the_same_process_is_refused_by_any_name(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path):
        os.link(path, tmp_path / "other.sqlite")
        for name in (path, tmp_path / "other.sqlite"):
            with pytest.raises(StateLockedError):
                open_store(name)


def test_closing_a_reader_leaves_the_writers_sqlite_locks_in_place(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it,
    SQLite's own included. If a read store's descriptor were closed while this process's
    writer is open, the next process to close a connection would think it the last one and
    delete the write-ahead log from under the writer."""
    path = tmp_path / "state.sqlite"
    with open_store(path) as writer:
        writer.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
        for mode in ("read", "scratch"):
            with open_store(path, mode) as reader:  # type: ignore[arg-type]
                assert reader.count_entries() == 1
        subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
             "c.execute('SELECT count(*) FROM entries').fetchone(); c.close()", str(path)],
            check=True,
        )  # fmt: skip
        assert Path(f"{path}-wal").exists(), "the log was deleted while the writer had it"
        assert refused_elsewhere(path)  # and the writer lock is still held
        writer.record_feed("a", "A", T0, status="200", candidates=cands("a", "y"))
    with open_store(path, "read") as store:
        assert store.count_entries() == 2


def test_a_hard_linked_state_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path):
        pass
    os.link(path, tmp_path / "backup.sqlite")
    with open_store(path):
        pass
    assert "has 2 names (hard links)" in caplog.text


CREATE = """
import sys
from pathlib import Path
from digest.state import daemon_lock, open_store, serving_pid
open_store(Path(sys.argv[1])).close()
"""


def test_a_crash_while_the_file_is_made_leaves_no_empty_file(tmp_path: Path) -> None:
    """Killed at any moment of its creation, the state file is absent or whole."""
    rng = random.Random(20261120)
    outcomes = {"absent": 0, "whole": 0}
    for trial in range(40):
        path = tmp_path / f"t{trial}" / "state.sqlite"
        path.parent.mkdir()
        child = subprocess.Popen([sys.executable, "-c", CREATE, str(path)])
        try:
            child.wait(timeout=rng.uniform(0.05, 0.4))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if not path.exists():
            outcomes["absent"] += 1
            continue
        assert path.stat().st_size > 0, f"trial {trial}: an empty state file"
        with open_store(path) as store:
            assert store.schema_version == SCHEMA_VERSION  # type: ignore[attr-defined]
        outcomes["whole"] += 1
    assert outcomes["absent"] and outcomes["whole"], outcomes


# --- the daemon lock ---------------------------------------------------------------------------

HOLD_DAEMON = """
import sys, time
from pathlib import Path
from digest.state import daemon_lock
with daemon_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_one_daemon_per_database_whatever_its_name_and_writers_still_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a" / "state.sqlite"
    with open_store(path):
        pass
    (tmp_path / "b").mkdir()
    other = tmp_path / "b" / "state.sqlite"
    os.link(path, other)
    daemon = subprocess.Popen(
        [sys.executable, "-c", HOLD_DAEMON, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "locked"
        assert serving_pid(path) == daemon.pid
        assert serving_pid(other) == -1  # running; its pid file is beside the other name
        for name in (path, other):
            with pytest.raises(StateLockedError, match="another `digest serve`"):
                with daemon_lock(name):
                    pass
        with open_store(other) as store:  # the daemon lock is not the writer lock
            store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    finally:
        stop(daemon)
    assert serving_pid(path) is None and serving_pid(other) is None
    with daemon_lock(other):
        assert serving_pid(path) == -1 and serving_pid(other) == os.getpid()


def test_only_the_sqlite_store_imports_sqlite3() -> None:
    """Everything above the store talks to the Store Protocol."""
    package = Path(__file__).resolve().parent.parent / "digest"
    importers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(
            line.split("#")[0].split() in (["import", "sqlite3"], ["from", "sqlite3", "import"])
            or line.startswith("from sqlite3 ")
            for line in path.read_text().splitlines()
        )
    )
    assert importers and all(name.startswith("state/sqlite/") for name in importers), importers


def test_an_unreadable_feed_row_is_named_without_the_secrets_of_its_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.sqlite"
    secret = "https://ada:hunter2@feeds.example/rss?token=abcdef0123456789abcdef"
    with open_store(path) as store:
        store.record_feed(secret, "F", T0, status="200", candidates=[])
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE feeds SET last_success = 'soon'")
        db.commit()
    with open_store(path, "read") as store:
        assert store.feed_statuses() == {}
        (problem,) = store.problems()
    assert "last_success: 'soon' is not a date and time" in problem
    assert "feeds.example" in problem and "hunter2" not in caplog.text + problem
    assert "abcdef0123456789" not in caplog.text + problem
