"""The wheel a user installs carries the templates, and digest finds them there."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT

TEMPLATES = {"digest.html.j2", "digest.txt.j2", "digest.md.j2", "index.md.j2"}


def test_wheel_ships_the_templates_and_renders_from_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("digest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"digest/templates/{name}" for name in TEMPLATES} <= names
        site = tmp_path / "site"
        archive.extractall(site)
    found = subprocess.run(
        [sys.executable, "-c", "import digest.render as r; print(r.template_dir())"],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == site / "digest" / "templates"
