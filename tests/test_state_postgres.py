"""What is PostgreSQL's own in the PostgreSQL store: its URL, its server, its locks across
processes, a dry run that leaves no trace, and digest without psycopg. The Store contract
itself runs on both stores in test_state.py; everything here runs against the real server
of conftest's `postgres_server` (skipped without one, unless CI is set)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import PostgresServer, RunDigest

from digest.config import load_config
from digest.dedupe import merge
from digest.errors import ConfigError, StateError, StateLockedError
from digest.models import Delivery, ParsedEntry
from digest.state import daemon_lock, open_store, serving_pid

try:
    import psycopg
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("psycopg is not installed (pip install -e '.[postgres]')", allow_module_level=True)

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)


@pytest.fixture
def url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new empty database."""
    from digest.state.postgres import close_pools

    location = postgres_server.create_database()
    yield location
    close_pools()
    postgres_server.drop_database(location)


def cands(feed: str, *links: str) -> Any:
    items = [ParsedEntry(title=f"Paper {x}", link=x, published=T0) for x in links]
    return merge([(feed, f"https://{feed}.example/feed", items)])


def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the database's public schema, in a stable order."""
    with psycopg.connect(url) as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- the URL and the server --------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "postgresql://digest:s3cr3t-pw@127.0.0.1:5432/digest",
        "postgres://digest:s3cr3t-pw@127.0.0.1/digest",
        "postgresql://digest@127.0.0.1/digest?password=s3cr3t-pw",
        "postgresql:///digest?host=/run/postgresql&password=s3cr3t-pw",
    ],
)
def test_a_url_with_a_password_is_refused_without_echoing_it(location: str) -> None:
    for mode in ("write", "read", "scratch"):
        with pytest.raises(StateError, match="password in its URL") as e:
            open_store(location, mode)  # type: ignore[arg-type]
        line = one_line(e)
        assert "s3cr3t-pw" not in line and "PGPASSWORD" in line


def test_an_unreachable_server_is_one_line_naming_its_host_and_port() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StateError) as e:
        open_store(f"postgresql://digest@127.0.0.1:{port}/digest", "write")
    line = one_line(e)
    assert f"cannot connect to the PostgreSQL server at 127.0.0.1 port {port}" in line, line
    assert "refused" in line.lower(), line
    assert time.monotonic() - started < 10


def test_a_password_the_server_wants_and_is_not_given_is_one_line(
    postgres_server: PostgresServer, url: str
) -> None:
    """No such user: the server's refusal, in one line, naming where it is."""
    other = url.replace(f"//{postgres_server.user}@", "//nobody@")
    with pytest.raises(StateError) as e:
        open_store(other, "read")
    line = one_line(e)
    assert f"at 127.0.0.1 port {postgres_server.port}" in line and "nobody" in line, line


def test_a_database_with_another_programs_tables_is_refused(url: str) -> None:
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE entries (x integer)")
    for mode in ("write", "read", "scratch"):
        with pytest.raises(StateError, match=r"another program's tables \(entries\)") as e:
            open_store(url, mode)  # type: ignore[arg-type]
        one_line(e)


def test_a_newer_schema_is_refused_and_a_table_dropped_by_hand_is_a_sentence(url: str) -> None:
    with open_store(url) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with psycopg.connect(url) as db:
        db.execute("DROP TABLE entry_feeds")
    with pytest.raises(StateError, match="has no table entry_feeds") as e:
        open_store(url)
    one_line(e)
    with psycopg.connect(url) as db:
        db.execute("UPDATE digest_schema SET version = 99")
    with pytest.raises(StateError, match="newer than this digest understands") as e:
        open_store(url, "read")
    one_line(e)


def test_driver_errors_while_open_are_state_errors(url: str) -> None:
    """The server going away under an open store: a sentence, not a traceback."""
    store = open_store(url)
    try:
        with psycopg.connect(url) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StateError, match=f"the state {url} ") as e:
            store.count_entries()
        one_line(e)
    finally:
        store.close()
    with open_store(url) as again:  # the pool dropped the broken connection
        assert again.count_entries() == 0


# --- the modes ---------------------------------------------------------------------------


def test_a_dry_run_leaves_no_trace(url: str) -> None:
    with open_store(url) as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
        (x,) = store.window_entries(T0 - timedelta(days=1), T0)
        store.record_delivery(
            Delivery("r", DAY, "pending", "<m@x>", (x.id,), T0, T0, message=b"raw")
        )
    before = everything(url)
    with open_store(url, "scratch") as scratch:
        later = T0 + timedelta(days=1)
        with scratch.batch():
            scratch.record_feed("a", "A", later, status="200", candidates=cands("a", "y"))
            scratch.record_feed("b", "B", later, status="500", error="HTTP 500")
        scratch.mark_done("r", DAY, "sent", "r@example.org", attempts=1)
        scratch.fold_undelivered_before({"s": DAY})
        scratch.prune(T0 + timedelta(days=90), keep_days=30)
        scratch.rekey_feed("a", "a2", fetched_url=None, moved_to=None, last_error=None)
        assert scratch.count_entries() == 0 and "a2" in scratch.feed_statuses()
    assert everything(url) == before


def test_read_and_scratch_stores_create_nothing_in_an_empty_database(url: str) -> None:
    for mode in ("read", "scratch"):
        with open_store(url, mode) as store:  # type: ignore[arg-type]
            if mode == "scratch":
                store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
                assert store.count_entries() == 1
    assert everything(url) == {}
    with open_store(url) as store:  # and a writer still makes the state, then finds it new
        assert store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x")) == 1
    assert set(everything(url)) >= {"entries", "deliveries", "digest_schema"}


def test_a_read_store_is_read_only_in_the_database_too(url: str) -> None:
    open_store(url).close()
    with open_store(url, "read") as store:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            store._db.execute("DELETE FROM entries")  # type: ignore[attr-defined]


HOLD = """
import sys, time
from digest.state import open_store
store = open_store(sys.argv[1], sys.argv[2])
print("open", flush=True)
time.sleep(60)
"""


@contextmanager
def holder(url: str, what: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding a writer (or the daemon lock) on the state; SIGKILLed at the
    end (the server then drops its session, and with it the lock)."""
    code = HOLD
    if what == "daemon":
        code = textwrap.dedent("""
            import sys, time
            from digest.state import daemon_lock
            with daemon_lock(sys.argv[1]):
                print("open", flush=True)
                time.sleep(60)
        """)
    child = subprocess.Popen(
        [sys.executable, "-c", code, url, "write"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "open"
        yield child
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_second_writer_in_another_process_is_refused_until_the_first_is_gone(url: str) -> None:
    open_store(url).close()
    with holder(url, "write"):
        with pytest.raises(StateLockedError, match="in use by another digest process") as e:
            open_store(url)
        one_line(e)
        with open_store(url, "read") as reader, open_store(url, "scratch") as scratch:
            assert reader.count_entries() == scratch.count_entries() == 0
    deadline = time.monotonic() + 10
    while True:
        try:
            with open_store(url) as store:
                store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
            break
        except StateLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_second_daemon_is_refused_and_the_first_ones_pid_is_known(url: str) -> None:
    assert serving_pid(url) is None
    with holder(url, "daemon") as child:
        assert serving_pid(url) == child.pid
        with pytest.raises(StateLockedError, match=rf"another `digest serve` \(pid {child.pid}\)"):
            with daemon_lock(url):
                pass
        with open_store(url) as store:  # writers are not blocked by it
            store.count_entries()
    deadline = time.monotonic() + 10
    while serving_pid(url) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with daemon_lock(url):
        assert serving_pid(url) == os.getpid()


# --- digest without psycopg ----------------------------------------------------------------

WITHOUT = """
import sys
sys.modules["psycopg"] = None  # as if not installed
sys.modules["psycopg_pool"] = None
import digest, digest.cli, digest.pipeline
from digest.errors import StateError
from digest.state import open_store
with open_store(sys.argv[1] + "/state.sqlite") as store:
    print(store.count_entries())
try:
    open_store("postgresql://digest@127.0.0.1/digest")
except StateError as e:
    print(e)
"""


def test_digest_works_without_psycopg(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    count, error = done.stdout.splitlines()
    assert count == "0"
    assert "needs psycopg" in error and "pip install 'digest[postgres]'" in error


# --- the CLI on a PostgreSQL state -----------------------------------------------------------


def test_digest_run_with_a_postgresql_state_end_to_end(
    example_dir: Path, run_digest: RunDigest, url: str
) -> None:
    """The bundled example with `[digest] state` pointed at the server: a dry run leaves
    the database empty, a run delivers and records, a second run sends nothing again."""
    config = example_dir / "config.example.toml"
    text = config.read_text()
    assert 'state = "examples/state/digest.sqlite"' in text
    config.write_text(text.replace('state = "examples/state/digest.sqlite"', f'state = "{url}"'))
    now = "2026-11-23T07:30:00Z"
    dry = run_digest("run", "--config", str(config), "--dry-run", "--now", now)
    assert dry.returncode == 0, dry.stderr
    assert everything(url) == {}
    first = run_digest("run", "--config", str(config), "--now", now)
    assert first.returncode == 0, first.stderr
    assert not (example_dir / "examples" / "state").exists()  # no SQLite file beside
    out = example_dir / "examples" / "out" / "2026-11-23"
    assert "RLHF Workflow" in (out / "ada.txt").read_text()
    rows = everything(url)
    assert len(rows["deliveries"]) == 3 and len(rows["feeds"]) == 3
    assert all(row[2] in ("sent", "written") for row in rows["deliveries"]), rows["deliveries"]
    again = run_digest("run", "--config", str(config), "--now", "2026-11-23T21:00:00Z")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already delivered") == 3
    status = run_digest("status", "--config", str(config), "--now", "2026-11-23T21:00:00Z")
    assert status.returncode == 0, status.stderr


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("postgresql://digest@db.example.org/digest", "postgresql://digest@db.example.org/digest"),
        ("postgres:///digest?host=/run/postgresql", "postgres:///digest?host=/run/postgresql"),
        ("state/digest.sqlite", None),  # a path, relative like the file
    ],
)
def test_the_config_keeps_a_state_url_as_written(
    tmp_path: Path, state: str, expected: str | None
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(f'[digest]\nstate = "{state}"\n[[feeds]]\nname = "f"\nurl = "f.xml"\n')
    found = load_config(config).settings.state
    assert found == (expected or tmp_path / "state" / "digest.sqlite")


def test_the_config_refuses_a_state_url_with_a_password_without_echoing_it(
    tmp_path: Path,
) -> None:
    for state in (
        "postgresql://digest:s3cr3t-pw@db/digest",
        "postgresql://db/d?password=s3cr3t-pw",
    ):
        config = tmp_path / "digest.toml"
        config.write_text(f'[digest]\nstate = "{state}"\n[[feeds]]\nname = "f"\nurl = "f.xml"\n')
        with pytest.raises(ConfigError, match=r"digest\.state: a password in the state's URL") as e:
            load_config(config)
        assert "s3cr3t-pw" not in str(e.value)


def test_digest_run_with_an_unreachable_database_is_one_line(
    example_dir: Path, run_digest: RunDigest
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = example_dir / "config.example.toml"
    state = f"postgresql://digest@127.0.0.1:{port}/digest"
    text = config.read_text()
    config.write_text(text.replace('state = "examples/state/digest.sqlite"', f'state = "{state}"'))
    result = run_digest("run", "--config", str(config), "--now", "2026-11-23T07:30:00Z")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the state {state}: cannot connect to the PostgreSQL server at 127.0.0.1 port "
        f"{port} (Connection refused)"
    ]
    assert not (example_dir / "examples" / "out").exists()  # nothing delivered
