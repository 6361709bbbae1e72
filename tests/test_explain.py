"""`digest explain`: the full breakdown behind a subscriber's digest, picked and left out."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import RunDigest

NOW = "2026-11-23T07:30:00Z"
LINK = re.compile(r"https://huggingface\.co/papers/ex-[0-9a-f]{10}")


def explain(run_digest: RunDigest, config: Path, *args: str) -> str:
    result = run_digest("explain", "--config", str(config), "--subscriber", "ada", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def blocks(text: str) -> dict[str, str]:
    """link → the status line under it ("1. picked", "left out: …")."""
    found = re.findall(r"^  (https://\S+)\n  (.+)$", text, flags=re.MULTILINE)
    return dict(found)


def test_explain_covers_picked_and_left_out_entries_before_the_digest_goes_out(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = example_dir / "config.example.toml"
    assert run_digest("collect", "--config", str(config), "--now", NOW).returncode == 0
    out = explain(run_digest, config, "--now", NOW)
    assert "ada, profile 'rl': the digest that would go out now (2026-11-23)" in out
    status = blocks(out)
    picked = [s for s in status.values() if s.endswith(". picked")]
    assert picked and picked[0] == "1. picked"
    left = [s for s in status.values() if s.startswith("left out: ")]
    assert 'left out: excluded by "survey"' in left
    assert any(s.startswith("left out: below min_score 1") for s in left)
    assert re.search(r"^…and \d+ entries that matched no term of the profile$", out, re.M)
    # every breakdown ends with the score its lines add up to
    for block in out.split("\n\n")[1:]:
        lines = [line for line in block.splitlines() if re.match(r"^\s+[+-]\d", line)]
        total = re.search(r"^\s+= (\S+)$", block, re.M)
        if lines and total:
            parts = sum(float(line.split()[0]) for line in lines)
            assert abs(parts - float(total[1])) < 0.01, block


def test_explain_after_delivery_explains_the_digest_that_went_out(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = example_dir / "config.example.toml"
    assert run_digest("run", "--config", str(config), "--now", NOW).returncode == 0
    sent = LINK.findall((example_dir / "examples" / "out" / "2026-11-23" / "ada.txt").read_text())
    out = explain(run_digest, config, "--now", NOW)
    assert "the digest of 2026-11-23 (written)" in out
    status = blocks(out)
    assert [link for link, s in status.items() if s.endswith(". picked")] == sent


def test_explain_one_entry_by_url_and_refuse_an_unknown_one(
    example_dir: Path, run_digest: RunDigest
) -> None:
    config = example_dir / "config.example.toml"
    assert run_digest("collect", "--config", str(config), "--now", NOW).returncode == 0
    everything = blocks(explain(run_digest, config, "--now", NOW))
    survey = next(link for link, s in everything.items() if "survey" in s)
    one = explain(run_digest, config, "--now", NOW, "--entry", survey)
    assert blocks(one) == {survey: 'left out: excluded by "survey"'}
    unknown = run_digest(
        "explain",
        "--config",
        str(config),
        "--subscriber",
        "ada",
        "--now",
        NOW,
        "--entry",
        "https://example.org/nothing",
    )
    assert unknown.returncode == 1
    assert (
        "not found in the state file's last 30 days: https://example.org/nothing" in unknown.stderr
    )


def test_explain_names_each_picks_section(example_dir: Path, run_digest: RunDigest) -> None:
    config = example_dir / "config.example.toml"
    text = config.read_text().replace(
        'exclude = ["survey"]\n',
        'exclude = ["survey"]\nsections = "tag"\n'
        '[profiles.rl.tags]\nalignment = ["RLHF", "reward model", "alignment"]\n'
        'policies = ["reinforcement learning", "policy optimization"]\n',
        1,
    )
    config.write_text(text)
    assert run_digest("collect", "--config", str(config), "--now", NOW).returncode == 0
    picked = [
        s for s in blocks(explain(run_digest, config, "--now", NOW)).values() if "picked" in s
    ]
    sections = [re.fullmatch(r"\d+\. picked, in section '(\w+)'", s) for s in picked]
    assert picked and all(sections), picked
    names = [m[1] for m in sections if m]
    assert set(names) <= {"alignment", "policies", "Other"} and "alignment" in names
    # grouped: once a section ends it does not come back
    runs = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert len(runs) == len(set(runs))
