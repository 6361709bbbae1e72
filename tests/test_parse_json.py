"""JSON documents: hostile ones cost their feed with one clear line; JSON Feed as its spec says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA, RunDigest

from digest.errors import FeedError
from digest.parse import parse_feed

DEEP = b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000
HUGE = (
    b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": '
    + b"7" * 5_000
    + b', "title": "Huge"}]}'
)
HOSTILE = {
    "nested past the recursion limit": (DEEP + b"]" * 100_000, "nested deeper than digest reads"),
    "deep and cut short": (DEEP, "nested deeper than digest reads"),
    "deep daily papers": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than digest reads"),
    "5,000-digit integer": (HUGE, "an integer longer than 4,300 digits"),
}


@pytest.mark.parametrize(("body", "reason"), HOSTILE.values(), ids=HOSTILE)
def test_hostile_json_is_one_line_naming_the_feed(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed("Hostile", body)
    assert info.value.feed == "Hostile"
    assert reason in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize("kind", [None, "json", "daily-papers"])
def test_hostile_json_of_a_declared_kind_is_a_feed_error_too(kind: str | None) -> None:
    for body, _ in HOSTILE.values():
        with pytest.raises(FeedError):
            parse_feed("Hostile", body, kind)  # type: ignore[arg-type]


def feed(version: str, items: list[dict[str, object]], **top: object) -> bytes:
    return json.dumps(
        {"version": f"https://jsonfeed.org/version/{version}", "items": items, **top}
    ).encode()


def test_items_without_authors_inherit_the_feeds_authors_1_1() -> None:
    body = feed(
        "1.1",
        [{"id": "1", "title": "Inherits"}, {"id": "2", "title": "Own", "authors": [{"name": "B"}]}],
        authors=[{"name": "Feed One"}, {"name": "Feed Two"}],
    )
    inherits, own = parse_feed("f", body).entries
    assert inherits.authors == ("Feed One", "Feed Two")
    assert own.authors == ("B",)


def test_items_without_an_author_inherit_the_feeds_author_1_0() -> None:
    body = feed(
        "1",
        [{"id": "1", "title": "Inherits"}, {"id": "2", "title": "Own", "author": {"name": "B"}}],
        author={"name": "Feed Author", "url": "https://x.example/"},
    )
    inherits, own = parse_feed("f", body).entries
    assert inherits.authors == ("Feed Author",)
    assert own.authors == ("B",)


def test_numeric_ids_become_strings() -> None:
    body = feed("1.1", [{"id": 42, "title": "a"}, {"id": 1.5, "title": "b"}, {"id": True}])
    ids = [e.guid for e in parse_feed("f", body).entries]
    assert ids == ["42", "1.5", None]  # a boolean is not a number here


def test_collect_reports_hostile_json_feeds_by_name_and_stores_the_good_one(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    (tmp_path / "deep.json").write_bytes(DEEP + b"]" * 100_000)
    (tmp_path / "huge.json").write_bytes(HUGE)
    shutil.copy(DATA / "feeds" / "jsonfeed.json", tmp_path / "good.json")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\nstate = "state.sqlite"\n'
        + "".join(f'[[feeds]]\nname = "{n}"\nurl = "{n}.json"\n' for n in ("deep", "huge", "good"))
    )
    collected = run_digest("collect", "--config", str(config), "--now", "2026-11-22T06:00:00Z")
    assert "Traceback" not in collected.stderr
    assert "2 new entries, 2 failed" in collected.stderr, collected.stderr
    lines = collected.stderr.splitlines()
    assert any("'deep'" in line and "nested deeper than digest reads" in line for line in lines)
    assert any("'huge'" in line and "integer" in line for line in lines)
