"""Shared fixtures: real servers (tests/servers.py) and a way to run the real `digest` CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

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
