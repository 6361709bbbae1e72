"""The disk holding the state file fills up during a run: one line, and nothing is lost.

A real full disk: a small tmpfs mounted for the test (skipped where mounting is not
allowed: it needs root or CAP_SYS_ADMIN). And, everywhere, RLIMIT_FSIZE: the kernel refuses
any write past a file size (EFBIG), which SQLite meets in the same write paths as ENOSPC.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import DIGEST
from servers import SMTPServer

from digest.state import open_store

NOW = "2026-11-20T06:00:00Z"
LATER = "2026-11-20T08:00:00Z"
PEOPLE = ("ada", "grace", "edsger", "barbara")


class Disk:
    """A small file system of its own, and a filler to make it full."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def available(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all but `leave` bytes of the free space."""
        with open(self.filler, "ab") as f:
            try:
                while self.available() > leave:
                    f.write(b"\0" * min(65536, max(self.available() - leave, 4096)))
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC

    def make_room(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def install(root: Path, state: str, *, entries: int, smtp: SMTPServer | None = None) -> Path:
    """A feed of `entries` papers with long abstracts, and a subscriber for each of PEOPLE."""
    abstract = escape("Reinforcement learning from a long abstract. " * 120)
    items = "".join(
        f"<item><title>Reinforcement learning paper {i}</title>"
        f"<link>https://papers.example/{i}</link><description>{abstract} {i}</description></item>"
        for i in range(entries)
    )
    feed = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    (root / "feed.rss").write_text(feed)
    people = "".join(
        f"[[subscribers]]\nname = '{p}'\nemail = '{p}@example.org'\nprofile = 'rl'\n"
        for p in PEOPLE
    )
    mail = (
        f"[smtp]\nhost = '{smtp.host}'\nport = {smtp.port}\nsecurity = 'none'\n"
        "from = 'digest@example.org'\nconnections = 1\nattempts = 1\n"
        if smtp
        else ""
    )
    config = root / "digest.toml"
    config.write_text(
        f"[digest]\nstate = '{state}'\noutput = 'out'\ntimezone = 'UTC'\n{mail}"
        "[[feeds]]\nname = 'papers'\nurl = 'feed.rss'\n"
        "[profiles.rl]\nkeywords = { 'reinforcement learning' = 1 }\n" + people
    )
    return config


def digest(*args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The real `digest` command, optionally with RLIMIT_FSIZE set in it."""

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [str(DIGEST), *args], capture_output=True, text=True, env=env, preexec_fn=limit,
        timeout=120, check=False,
    )  # fmt: skip


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run stopped with exit 1 and one error line, no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_disk_that_fills_while_feeds_are_stored_loses_nothing(tmp_path: Path, disk: Disk) -> None:
    config = install(tmp_path, str(disk.path / "state.sqlite"), entries=150)
    disk.fill(leave=256 * 1024)  # the feed's entries need about four times that
    first = digest("run", "--config", str(config), "--now", NOW)
    line = the_error(first)
    assert "cannot be written: its disk is full. Nothing is lost" in line
    assert not (tmp_path / "out").exists(), "digests went out of a collection not recorded"
    status = digest("status", "--config", str(config), "--now", NOW)  # still a usable file
    assert status.returncode == 0 and "nothing delivered yet" in status.stdout, status.stderr

    disk.make_room()
    again = digest("run", "--config", str(config), "--now", NOW)
    assert again.returncode == 0, again.stderr
    assert {p.stem for p in (tmp_path / "out" / "2026-11-20").glob("*.eml")} == set(PEOPLE)
    with open_store(disk.path / "state.sqlite", "read") as store:
        assert store.count_entries() == 150


def test_a_disk_that_fills_once_a_digest_is_accepted_loses_nothing(
    tmp_path: Path, disk: Disk, smtp_plain_server: SMTPServer
) -> None:
    """The worst moment: the server has said 250 and the ledger cannot record it. The run
    stops there (it sends nothing it cannot record), and the next one sends that digest
    again with the others: one duplicate per connection, never a lost digest."""
    server = smtp_plain_server
    config = install(tmp_path, str(disk.path / "state.sqlite"), entries=30, smtp=server)
    assert digest("collect", "--config", str(config), "--now", NOW).returncode == 0

    def fill_the_disk(count: int) -> str | None:
        if count == 1:
            disk.fill()
        return None  # and accept the message

    server.on_data = fill_the_disk
    line = the_error(digest("run", "--config", str(config), "--now", NOW))
    assert "its disk is full" in line
    server.on_data = None
    assert len(server.messages) == 1, "it went on sending what it could not record"

    disk.make_room()
    again = digest("run", "--config", str(config), "--now", LATER)
    assert again.returncode == 0, again.stderr
    copies = Counter(m.rcpt_tos[0].split("@")[0] for m in server.messages)
    assert set(copies) == set(PEOPLE), "a digest was lost"
    assert sorted(copies.values()) == [1, 1, 1, 2], copies
    ids = Counter(str(m.message["Message-ID"]) for m in server.messages)
    assert len(ids) == len(PEOPLE)  # the duplicate is the very same message


def test_a_file_size_limit_hit_while_feeds_are_stored_loses_nothing(tmp_path: Path) -> None:
    """Without a file system to fill: the kernel's per-process file size limit."""
    config = install(tmp_path, "state/state.sqlite", entries=150)
    assert digest("check-config", str(config)).returncode == 0
    first = digest("run", "--config", str(config), "--now", NOW, file_size_limit=400 * 1024)
    line = the_error(first)
    assert "state.sqlite cannot be read or written (disk I/O error)" in line
    assert not (tmp_path / "out").exists()

    again = digest("run", "--config", str(config), "--now", NOW)
    assert again.returncode == 0, again.stderr
    assert {p.stem for p in (tmp_path / "out" / "2026-11-20").glob("*.eml")} == set(PEOPLE)
    with open_store(tmp_path / "state" / "state.sqlite", "read") as store:
        assert store.count_entries() == 150
