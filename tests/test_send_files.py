"""Files digest writes for people and other programs honour the umask; the state file does not.

A wiki engine or web server running as another user must be able to read the pages, index,
archive and digests written as files: under the usual umask 022 they are 0644. The state file
holds subscribers' addresses and the delivery ledger: it is 0600 whatever the umask.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import RunDigest
from test_send import message, outgoing

from digest.send import FileMailer, write_atomic

NOW = "2026-11-23T07:30:00Z"


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for the test (children inherit it), then restore it."""
    old = os.umask(0o022)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_write_atomic_gives_the_mode_the_umask_allows(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int
) -> None:
    umask(mask)
    target = tmp_path / "page.md"
    write_atomic(target, b"one")
    assert mode(target) == expected
    write_atomic(target, b"two")  # replacing a file: the new one has the same mode
    assert (mode(target), target.read_bytes()) == (expected, b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]  # no temporary file left


def test_write_atomic_private_is_0600_whatever_the_umask(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o000)
    write_atomic(tmp_path / "secret", b"x", private=True)
    assert mode(tmp_path / "secret") == 0o600


def test_file_mailer_writes_0644_under_umask_022(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    asyncio.run(FileMailer(tmp_path).send(outgoing(message())))
    written = sorted((tmp_path / "2026-11-20").iterdir())
    assert [p.suffix for p in written] == [".eml", ".html", ".txt"]
    assert {p.name: mode(p) for p in written} == {p.name: 0o644 for p in written}


def test_a_run_and_an_archive_write_0644_files_and_a_0600_state_file(
    example_dir: Path, run_digest: RunDigest, umask: Callable[[int], None]
) -> None:
    """Through the CLI, as a user with umask 022 would run it."""
    config = str(example_dir / "config.example.toml")
    result = run_digest("run", "--config", config, "--now", NOW)
    assert result.returncode == 0, result.stderr
    archive = example_dir / "site"
    result = run_digest("archive", "--config", config, "--out", str(archive))
    assert result.returncode == 0, result.stderr
    examples = example_dir / "examples"
    written = {
        p.relative_to(example_dir): mode(p)
        for folder in (examples / "out", examples / "wiki", archive)
        for p in folder.rglob("*")
        if p.is_file()
    }
    suffixes = {p.suffix for p in written}
    assert {".eml", ".html", ".txt", ".md"} <= suffixes, written
    assert written == dict.fromkeys(written, 0o644)
    assert mode(examples / "state" / "digest.sqlite") == 0o600
