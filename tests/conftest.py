"""Shared fixtures: real servers (tests/servers.py) and a way to run the real `digest` CLI."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings

# Hypothesis's per-example deadline (200 ms) times this shared 2-core machine's noise, not our
# code: property tests check results, and benchmarks under bench/ measure speed.
settings.register_profile("digest", deadline=None)
settings.load_profile("digest")

pytest_plugins = ["servers"]

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared"
DIGEST = Path(sys.executable).with_name("digest")

RunDigest = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_digest() -> RunDigest:
    """Run the installed `digest` command in a subprocess, as a user would."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        assert DIGEST.exists(), f"the digest command is not installed next to {sys.executable}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        full_env.update(env or {})
        return subprocess.run(
            [str(DIGEST), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A copy of the bundled example config and feeds, so runs write only into tmp_path."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.example.toml")
    shutil.copytree(ROOT / "examples" / "feeds", tmp_path / "examples" / "feeds")
    return tmp_path


# --- a PostgreSQL server for the stores' tests (issue 15) -------------------------------------

#: the unprivileged user the server runs as when the tests run as root (postgres refuses root)
PG_USER = "digestpg"


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1, trusting local connections."""

    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        """A libpq URL of one database (no password: the server trusts 127.0.0.1)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, whoever is still connected."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_bin() -> Path | None:
    """The directory of Debian's server binaries (the newest version), or one on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def _unavailable(why: str) -> NoReturn:
    """Skip locally; with CI set, the PostgreSQL tests must run, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}: the PostgreSQL store cannot be tested", pytrace=False)
    pytest.skip(why)


def _as_server_user(argv: list[str]) -> list[str]:
    """A command run as the unprivileged server user when we are root; else as ourselves."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", PG_USER, "--", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session: initdb and pg_ctl in a temporary directory, run
    as an unprivileged user, listening on 127.0.0.1 on a free port (its unix socket in that
    directory); stopped at the end. Skipped when the server binaries or psycopg are missing,
    unless CI is set."""
    bindir = _postgres_bin()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (Debian's postgresql package)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    # as root, in /tmp: the server user must reach the directory (TMPDIR may be root's own)
    base = Path(tempfile.mkdtemp(prefix="digest-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data = base / "data"
    user = PG_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust"]
    initdb += ["--encoding=UTF8", "--no-locale", "--no-sync"]
    command = _as_server_user(initdb)
    if os.geteuid() == 0:
        shutil.chown(base, PG_USER)
    subprocess.run(command, check=True, capture_output=True, text=True)
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log")]
    started = subprocess.run(
        _as_server_user([*ctl, "-w", "-t", "60", "-o", options, "start"]),
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        log = (base / "server.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"the PostgreSQL server did not start: {started.stderr}\n{log}")
    try:
        yield PostgresServer("127.0.0.1", port, user)
    finally:
        from digest.state.postgres import close_pools

        close_pools()
        subprocess.run(
            _as_server_user([*ctl, "-m", "immediate", "stop"]), capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)
