"""Golden files: the built-in templates' rendering of one fixed digest, byte for byte.

tests/golden/ holds the subject, HTML, plain-text and Markdown parts (and a Markdown index)
of the digest that scripts/regen_golden.py builds from fixed records at a fixed `now`. When
rendering or a template changes on purpose, regenerate them and review the diff:

    python scripts/regen_golden.py          # rewrites tests/golden/
    git diff tests/golden/                  # what a reader will see change

A mismatch fails with a unified diff of each file that differs.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

SCRIPT = ROOT / "scripts" / "regen_golden.py"
GOLDEN = ROOT / "tests" / "golden"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("regen_golden", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def differences(expected_dir: Path, actual: dict[str, str]) -> list[str]:
    """A unified diff per file whose golden copy is missing or differs, in bytes."""
    found = []
    for name, content in actual.items():
        path = expected_dir / name
        golden = path.read_bytes() if path.exists() else b""
        if golden == content.encode():
            continue
        diff = difflib.unified_diff(
            golden.decode(errors="replace").splitlines(keepends=True),
            content.splitlines(keepends=True),
            fromfile=f"tests/golden/{name}" + ("" if path.exists() else " (missing)"),
            tofile=f"{name} as rendered now",
        )
        found.append("".join(diff) or f"{name}: differs in line endings or bytes only\n")
    return found


def test_the_rendered_digest_matches_the_golden_files() -> None:
    found = differences(GOLDEN, _script().rendered())
    if found:
        pytest.fail(
            "rendering changed; if on purpose, run `python scripts/regen_golden.py` and "
            "review `git diff tests/golden/`:\n\n" + "\n".join(found),
            pytrace=False,
        )


def test_every_golden_file_is_rendered() -> None:
    """No stale file: each one in tests/golden/ is one the script writes."""
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(_script().rendered())


def test_a_change_is_shown_as_a_unified_diff(tmp_path: Path) -> None:
    rendered = _script().rendered()
    for name, content in rendered.items():
        (tmp_path / name).write_text(content, encoding="utf-8", newline="")
    assert differences(tmp_path, rendered) == []
    changed = {**rendered, "digest.txt": rendered["digest.txt"].replace("score 6.5", "score 7")}
    (diff,) = differences(tmp_path, changed)
    assert "--- tests/golden/digest.txt\n+++ digest.txt as rendered now\n" in diff
    assert "\n-   Why: preference (title), policy optimization (summary) — score 6.5\n" in diff
    assert "\n+   Why: preference (title), policy optimization (summary) — score 7\n" in diff


def test_the_script_check_mode_reports_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    monkeypatch.setattr(script, "GOLDEN", tmp_path)
    assert script.main(["--check"]) == 1  # nothing there yet
    assert list(tmp_path.iterdir()) == []
    assert script.main([]) == 0
    assert script.main(["--check"]) == 0
    assert "0 golden files differ" in capsys.readouterr().out
