"""A state file that is damaged, foreign, hand-edited or at a strange path, as a user meets
it: through the `digest` command. Each case is one clear line and exit 1, never a
traceback, never a file re-initialised over; a hand-edited row costs only what it belongs
to. (The disk filling up is in test_state_disk_full.py.)
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result
from conftest import DIGEST, RunDigest

from digest import schedule
from digest.cli import cli
from digest.config import load_config
from digest.state.migrations import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

DAY1 = "2026-11-20T06:00:00Z"
DAY2 = "2026-11-21T06:00:00Z"
#: every command that opens the state, with what it needs
COMMANDS: dict[str, list[str]] = {
    "run": ["run", "--now", DAY2],
    "run --dry-run": ["run", "--dry-run", "--now", DAY2],
    "collect": ["collect", "--now", DAY2],
    "status": ["status", "--now", DAY2],
    "feeds": ["feeds", "--now", DAY2],
    "explain": ["explain", "--subscriber", "ada", "--now", DAY2],
    "preview": ["preview", "--subscriber", "ada", "--now", DAY2],
    "archive": ["archive", "--out", "archive"],
}


class Install:
    """A config with one local feed, two subscribers and a Markdown page, writing files."""

    def __init__(self, root: Path, state: str = "state/digest.sqlite") -> None:
        self.root = root
        self.config = root / "digest.toml"
        self.state = root / state
        self.config.write_text(
            f"""
[digest]
title = "Papers"
state = "{state}"
output = "out"
timezone = "UTC"

[[feeds]]
name = "local"
url = "feed.rss"

[profiles.rl]
keywords = {{ "reinforcement learning" = 1 }}

[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "rl"

[[subscribers]]
name = "grace"
email = "grace@example.org"
profile = "rl"

[[markdown]]
profile = "rl"
path = "wiki/{{date}}.md"
"""
        )

    def day(self, number: int, count: int = 3) -> list[str]:
        """The feed as it is on that day: `count` papers of its own; returns their links."""
        links = [f"https://papers.example/{number}/{i}" for i in range(count)]
        items = "".join(
            f"<item><title>Reinforcement learning, day {number} paper {i}</title>"
            f"<link>{link}</link><guid>{link}</guid>"
            f"<description>{escape('About reinforcement learning.')}</description></item>"
            for i, link in enumerate(links)
        )
        (self.root / "feed.rss").write_text(
            f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
        )
        return links

    def digest(self, *args: str) -> Result:
        """`digest ARGS --config …` in this process, from the install's directory."""
        logger = logging.getLogger("digest")
        saved = (logger.handlers[:], logger.level, logger.propagate)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(self.root)
            command = [args[0], "--config", str(self.config), *args[1:]]
            try:
                result = CliRunner().invoke(cli, command)
            finally:  # the command sets up the process's logging: not for later tests
                logger.handlers[:], logger.level, logger.propagate = saved
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"digest {' '.join(args)} raised {result.exception!r}:\n{result.stderr}"
        )
        return result

    def sql(self, *statements: str) -> None:
        """Edit the state file by hand, as a user with the sqlite3 shell would."""
        with closing(sqlite3.connect(self.state)) as db:
            for statement in statements:
                db.execute(statement)
            db.commit()

    def written(self, day: str) -> set[str]:
        folder = self.root / "out" / day
        return {p.stem for p in folder.glob("*.eml")} if folder.exists() else set()


@pytest.fixture
def install(tmp_path: Path) -> Install:
    return Install(tmp_path)


def one_line(result: Result, *expected: str) -> str:
    """The command failed with exit 1 and exactly one line on stderr holding `expected`."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def files_of(directory: Path) -> dict[str, bytes | None]:
    """Every file under `directory` with its bytes (None for a directory)."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


# --- files that are refused ---------------------------------------------------------------


def another_programs_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        db.execute("INSERT INTO moz_places (url) VALUES ('https://example.org/')")
        db.commit()


def another_programs_id(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA application_id = 1196444487")  # 'GPKG': a GeoPackage
        db.execute("CREATE TABLE gpkg_contents (table_name TEXT)")
        db.commit()


def empty_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("VACUUM")


def digest_schema(path: Path, *, drop: str | None = None, version: int = SCHEMA_VERSION) -> None:
    """digest's schema at the current version, less one table or column, or another
    version number."""
    with closing(sqlite3.connect(path)) as db:
        for step in MIGRATIONS:
            db.executescript(step)
        if drop is not None and "." in drop:
            table, column = drop.split(".")
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        elif drop is not None:
            db.execute(f"DROP TABLE {drop}")
        db.execute(f"PRAGMA user_version = {version}")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.commit()


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "an empty file": (lambda p: p.write_bytes(b""), "it is empty (0 bytes)"),
    "a text file": (lambda p: p.write_text("shopping list\n" * 50), "not an SQLite database"),
    "another program's database": (
        another_programs_database,
        "another program's tables (moz_places)",
    ),  # fmt: skip
    "another program's file format": (another_programs_id, "belongs to another program"),
    "an SQLite file with nothing in it": (
        empty_database,
        "an SQLite database with nothing in it",
    ),  # fmt: skip
    "a missing table": (
        lambda p: digest_schema(p, drop="delivered_entries"),
        f"says schema version {SCHEMA_VERSION} but has no table delivered_entries",
    ),  # fmt: skip
    "a missing column": (
        lambda p: digest_schema(p, drop="feeds.gone"),
        "has no column feeds.gone",
    ),  # fmt: skip
    "a newer digest's file": (
        lambda p: digest_schema(p, version=SCHEMA_VERSION + 1),
        "newer than this digest understands",
    ),  # fmt: skip
    "a directory": (lambda p: p.mkdir(), "is a directory, not a file"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_file_that_is_not_a_usable_state_is_refused_by_every_command_and_left_alone(
    install: Install, case: str
) -> None:
    make, reason = REFUSED[case]
    install.day(1)
    install.state.parent.mkdir()
    make(install.state)
    before = files_of(install.state.parent)
    for name, args in COMMANDS.items():
        line = one_line(install.digest(*args), reason)
        assert line.startswith("error: ") and str(install.state) in line, (name, line)
        assert files_of(install.state.parent) == before, f"{name} changed the state's folder"
    assert not (install.root / "out").exists() and not (install.root / "wiki").exists()


def test_pages_damaged_past_the_header_are_one_line_for_every_command(install: Install) -> None:
    install.day(1, count=40)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    data = bytearray(install.state.read_bytes())
    assert len(data) > 4 * 4096, "too small a file to damage past its first page"
    noise = random.Random(17)
    for offset in range(4096, len(data)):  # every page but the first (the schema) is noise
        data[offset] = noise.randrange(256)
    install.state.write_bytes(bytes(data))
    install.day(2)
    for name, args in COMMANDS.items():
        line = one_line(install.digest(*args), str(install.state), "is damaged")
        assert "restore it from a backup" in line, (name, line)


# --- a state file at a path a URI would misread ------------------------------------------------


def test_a_hash_or_question_mark_in_the_state_path_reads_that_very_file(tmp_path: Path) -> None:
    install = Install(tmp_path, state="state #1?x=%41/digest.sqlite")
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    before = files_of(tmp_path)
    status = install.digest("status", "--now", DAY1)
    assert status.exit_code == 0, status.stderr
    assert "ada: next" in status.stdout and "last: 2026-11-20 written, 3 picks" in status.stdout
    explained = install.digest("explain", "--subscriber", "ada", "--now", DAY1)
    assert "the digest of 2026-11-20 (written)" in explained.stdout
    dry = install.digest("run", "--dry-run", "--now", DAY1)
    assert "ada 2026-11-20: already delivered" in dry.stderr
    # only SQLite's own companions of the very file (a reader's log and index) may appear
    after = {name for name in files_of(tmp_path) if not name.endswith(("-wal", "-shm"))}
    assert after == set(before), "a stray file was made"


# --- rows edited by hand ---------------------------------------------------------------------


def test_an_unreadable_entry_is_left_out_by_name_and_the_others_go_out(install: Install) -> None:
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    day2 = install.day(2)
    assert install.digest("collect", "--now", DAY2).exit_code == 0
    install.sql(
        f"UPDATE entries SET published = 'the day before yesterday' WHERE link = '{day2[0]}'",
        f"UPDATE entries SET authors = '[\"Ada\", unquoted]' WHERE link = '{day2[1]}'",
    )
    result = install.digest("run", "--now", DAY2)
    assert result.exit_code == 1, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot be read" in line]
    assert len(warnings) == 2, result.stderr  # once each, not once per reader
    assert "published: 'the day before yesterday' is not a date and time" in warnings[0]
    assert "authors: not a JSON list" in warnings[1]
    assert "2 rows of the state file could not be read" in result.stderr
    assert install.written("2026-11-21") == {"ada", "grace"}
    text = (install.root / "out" / "2026-11-21" / "ada.txt").read_text()
    assert day2[2] in text and day2[0] not in text and day2[1] not in text
    page = (install.root / "wiki" / "2026-11-21.md").read_text()
    assert day2[2] in page
    # a read-only command meets the same row: a warning, and its answer
    explained = install.digest("explain", "--subscriber", "ada", "--now", DAY2)
    assert explained.exit_code == 0 and "cannot be read" in explained.stderr


def test_an_unreadable_delivery_costs_that_readers_digest_only(install: Install) -> None:
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    install.sql("UPDATE deliveries SET cutoff = 'yesterday' WHERE reader = 'subscriber:ada'")
    install.day(2)
    result = install.digest("run", "--now", DAY2)
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("ada 2026-11-21")]
    assert len(failed) == 1, result.stderr
    assert "FAILED" in failed[0] and "the latest delivery of subscriber:ada" in failed[0]
    assert "cutoff: 'yesterday' is not a date and time" in failed[0]
    assert install.written("2026-11-21") == {"grace"}
    status = install.digest("status", "--now", DAY2)
    assert status.exit_code == 0, status.stderr
    ada, grace = (line for line in status.stdout.splitlines() if ": next " in line)
    assert "cannot be read" in ada and "last: 2026-11-20 written" in grace


def test_a_pending_digest_without_its_message_fails_alone(install: Install) -> None:
    """NULL where a value belongs: the message of a digest waiting in the outbox."""
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    install.sql(
        "UPDATE deliveries SET status = 'pending', message = NULL WHERE reader = 'subscriber:ada'"
    )
    result = install.digest("run", "--now", "2026-11-20T09:00:00Z")
    assert result.exit_code == 1
    assert "message: missing from a pending digest" in result.stderr
    assert "grace 2026-11-20: already delivered" in result.stderr
    assert "ada 2026-11-20: FAILED" in result.stderr


def test_an_unreadable_feed_row_is_fetched_as_new_and_reported(install: Install) -> None:
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    install.sql("UPDATE feeds SET last_attempt = 42, entries_seen = 'many'")
    install.day(2)
    result = install.digest("run", "--now", DAY2)
    assert result.exit_code == 1
    assert "the row of feed 'feed.rss' (fetched as if new) cannot be read" in result.stderr
    assert install.written("2026-11-21") == {"ada", "grace"}
    feeds = install.digest("feeds", "--now", DAY2)  # rewritten by that fetch
    assert feeds.exit_code == 0 and "cannot be read" not in feeds.stderr


def test_an_older_file_whose_upgrade_fails_is_one_line_and_stays_as_it_was(
    install: Install,
) -> None:
    """The read-only commands upgrade a copy in memory: that too is one line."""
    install.day(1)
    install.state.parent.mkdir()
    with closing(sqlite3.connect(install.state)) as db:
        for number, step in enumerate(MIGRATIONS[:-1]):
            db.executescript(step)
            db.execute(f"PRAGMA user_version = {number + 1}")
        # made by hand: the index the last step creates is there already
        db.execute("CREATE INDEX delivered_entries_entry ON delivered_entries (reader)")
        db.commit()
    for name, args in COMMANDS.items():
        line = one_line(install.digest(*args), str(install.state))
        assert f"cannot be upgraded from schema version {SCHEMA_VERSION - 1} to" in line, name
        assert "delivered_entries_entry already exists" in line, name
    with closing(sqlite3.connect(install.state)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION - 1,)


def test_serve_refuses_an_unusable_state_file_before_it_starts(
    install: Install, run_digest: RunDigest
) -> None:
    install.day(1)
    install.state.parent.mkdir()
    install.state.write_bytes(b"")
    result = run_digest("serve", "--config", str(install.config), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {install.state} is not a usable digest state file: it is empty (0 bytes), "
        "so it cannot be the record of what was sent; if you meant to start afresh, delete "
        "it and digest makes a new one"
    ]
    assert install.state.read_bytes() == b""


def test_the_daemon_delivers_to_the_others_when_one_readers_row_is_unreadable(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    install.day(1)
    assert install.digest("run", "--now", DAY1).exit_code == 0
    install.sql("UPDATE deliveries SET local_date = '20 Nov' WHERE reader = 'subscriber:ada'")
    install.day(2)
    config = load_config(install.config)
    at = datetime(2026, 11, 21, 7, 1, tzinfo=UTC)  # just after both send_at
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(install.root)
        reports = schedule.Daemon(config, clock=lambda: at).deliver_due(["ada", "grace"])
    people = [(r.reader, r.outcome) for r in reports if not r.reader.startswith("wiki/")]
    assert people == [("grace", "written")]
    assert "delivery ada 2026-11-21: FAILED" in caplog.text
    assert "local_date: '20 Nov' is not a date" in caplog.text


def test_a_state_file_in_a_directory_that_cannot_be_entered_is_one_line(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """As root, the command runs as `nobody` (root enters every directory); otherwise the
    directory is made inaccessible to its owner."""
    shared = Path(tempfile.mkdtemp(prefix="digest-perm-"))  # not under pytest's 0700 root
    try:
        shared.chmod(0o755)
        install = Install(shared)
        install.day(1)
        for path in (install.config, install.root / "feed.rss"):
            path.chmod(0o644)
        install.state.parent.mkdir(mode=0o700)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if os.geteuid() != 0:
            install.state.parent.chmod(0)
            prefix = []
        elif shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop to nobody")
        for args in (COMMANDS["status"], COMMANDS["run"], COMMANDS["run --dry-run"]):
            command = [*prefix, str(DIGEST), args[0], "--config", str(install.config), *args[1:]]
            result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                    cwd=shared)  # fmt: skip
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr
            (line,) = result.stderr.strip().splitlines()
            assert str(install.state) in line and "Permission denied" in line, line
    finally:
        install.state.parent.chmod(0o700)
        shutil.rmtree(shared)
