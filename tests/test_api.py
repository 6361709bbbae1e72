"""The library API: `import digest` is the front door, and the README's example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import digest

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has a python block"
    return match.group(1)


def test_every_public_name_is_documented_and_importable() -> None:
    for name in digest.__all__:
        value = getattr(digest, name)
        if callable(value) and not isinstance(value, type):
            doc = value.__doc__ or ""
            assert doc.strip(), f"digest.{name} has no docstring"
        if name in ("run", "collect", "deliver", "preview", "explain"):
            assert "Returns" in (value.__doc__ or ""), f"digest.{name} says what it returns"


def test_importing_digest_loads_no_stage_libraries() -> None:
    code = (
        "import sys, digest\n"
        "heavy = [m for m in ('numpy', 'httpx', 'aiosmtplib', 'jinja2', 'feedparser') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_readme_example_runs_as_written(example_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=example_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("ada written ") for line in lines), done.stdout
    assert any("papers" in line and "written" in line for line in lines), done.stdout
    assert (example_dir / "examples" / "out").is_dir()


def test_run_collect_and_deliver_do_what_the_command_does(example_dir: Path) -> None:
    config = digest.load_config(example_dir / "config.example.toml")
    feeds = digest.collect(config, NOW)
    assert [f.status for f in feeds] == ["ok", "ok", "ok"]
    dry = digest.deliver(config, NOW, dry_run=True)
    assert {d.outcome for d in dry} <= {"dry-run", "empty"}
    sent = digest.deliver(config, NOW)
    assert [d.reader for d in sent] == [d.reader for d in dry]
    assert "written" in {d.outcome for d in sent}
    again = digest.run(config, NOW)
    assert {d.outcome for d in again.deliveries} <= {"already", "empty"}
    assert not again.failed
    why = digest.explain(config, "ada", NOW)
    assert why.ranking.picks


def test_rendering_imports_neither_numpy_nor_the_automaton() -> None:
    code = (
        "import sys\n"
        "from digest.render import render\n"
        "from digest.rank import why\n"
        "print(','.join(m for m in ('numpy', 'ahocorasick') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_subscriber_whose_address_cannot_be_composed_costs_only_that_digest(
    example_dir: Path,
) -> None:
    """check-config refuses such an address; a library caller can still build one."""
    from dataclasses import replace

    config = digest.load_config(example_dir / "config.example.toml")
    ada, grace = config.subscribers
    broken = replace(ada, email="ada@exa\nmple.org, eve@evil.example")
    report = digest.run(replace(config, subscribers=(broken, grace)), NOW)
    outcomes = {d.reader: d.outcome for d in report.deliveries}
    assert outcomes["ada"] == "failed" and outcomes["grace"] == "written"
    assert report.failed
    (failed,) = [d for d in report.deliveries if d.reader == "ada"]
    assert failed.error is not None and "\n" not in failed.error
