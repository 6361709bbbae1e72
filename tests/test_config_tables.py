"""The generic table reader: a table's keys, types and defaults are its record's fields, so
a new option is one field in models.py (plus at most one entry in checks.CHECKS)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Literal

import pytest

from digest.config import SETTINGS, SMTP, load_config
from digest.config.tables import Reader, Spec
from digest.errors import ConfigError
from digest.models import Settings, SmtpSettings


@dataclass(frozen=True, slots=True)
class Gadget:
    """A record no config table has yet: what a new table or option would look like."""

    name: str
    size: int
    colour: Literal["red", "blue"] = "red"
    ratio: float = 0.5
    home: Path | None = None
    at: time = time(7, 0)
    every: timedelta = timedelta(hours=1)
    note: str | None = None
    derived: str = ""


GADGET = Spec(
    Gadget,
    "gadget",
    toml_names={"note": "comment"},
    derived=frozenset({"derived"}),
    defaults={"size": 3},
)


def read(tmp_path: Path, table: object) -> Gadget:
    reader = Reader(str(tmp_path / "digest.toml"), tmp_path)
    return Gadget(**reader.record_fields(GADGET, table, "gadget"))


def test_every_field_is_a_key_read_at_its_type_with_its_default(tmp_path: Path) -> None:
    gadget = read(
        tmp_path,
        {
            "name": "g",
            "colour": "blue",
            "ratio": 2,
            "home": "sub/dir",
            "at": "06:30",
            "every": "1h30m",
            "comment": "hi",
        },
    )
    assert gadget == Gadget(
        name="g",
        size=3,
        colour="blue",
        ratio=2.0,
        home=tmp_path.resolve() / "sub" / "dir",
        at=time(6, 30),
        every=timedelta(hours=1, minutes=30),
        note="hi",
    )
    assert read(tmp_path, {"name": "g"}) == Gadget(name="g", size=3)


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ({}, "gadget.name", "missing"),
        ({"name": "g", "derived": "x"}, "gadget.derived", "unknown key"),
        ({"name": "g", "note": "x"}, "gadget.note", "allowed here: at, colour, comment,"),
        ({"name": "g", "colour": "green"}, "gadget.colour", "one of red, blue"),
        ({"name": "g", "ratio": float("inf")}, "gadget.ratio", "finite"),
        ({"name": "g", "size": 1.5}, "gadget.size", "integer"),
        ({"name": "g", "at": "7:00"}, "gadget.at", "HH:MM"),
        ({"name": "g", "every": "1d"}, "gadget.every", "duration"),
        ({"name": "g", "home": "a\0b"}, "gadget.home", "NUL"),
        ({"name": True}, "gadget.name", "a string, not a boolean"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(
    tmp_path: Path, table: dict[str, object], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        read(tmp_path, table)
    assert info.value.key == key
    assert reason in info.value.reason


@pytest.mark.parametrize(("spec", "record"), [(SMTP, SmtpSettings), (SETTINGS, Settings)])
def test_the_allowed_keys_are_the_records_fields(spec: Spec, record: type) -> None:
    names = {spec.key(f.name) for f in dataclasses.fields(record)}
    assert spec.allowed() == names
    assert "data_timeout" in SMTP.allowed() and "from" in SMTP.allowed()


def test_a_field_the_reader_has_no_type_for_must_be_read_by_the_caller(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Odd:
        items: tuple[str, ...] = ()

    reader = Reader(str(tmp_path / "digest.toml"), tmp_path)
    with pytest.raises(TypeError, match="Spec.derived"):
        reader.record_fields(Spec(Odd, "odd"), {"items": ["a"]}, "odd")


def test_the_public_import_paths_keep_working(tmp_path: Path) -> None:
    from digest.config import is_loopback

    assert is_loopback("127.0.0.1") and not is_loopback("example.org")
    path = tmp_path / "digest.toml"
    path.write_text('[[feeds]]\nname = "p"\nurl = "p.rss"\n')
    assert load_config(path).feeds[0].name == "p"


HAS_RANKER = "ranker" in {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.skipif(not HAS_RANKER, reason="Settings.ranker comes with the rank registry")
def test_the_ranker_is_a_key_of_digest_by_its_field_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    feed = '[[feeds]]\nname = "p"\nurl = "p.rss"\n'
    path.write_text('[digest]\nranker = "keyword"\n' + feed)
    assert load_config(path).settings.ranker == "keyword"
    path.write_text('[digest]\nranker = "nope"\n' + feed)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "digest.ranker"
    assert "unknown ranker 'nope' (known: " in info.value.reason
