"""Typed TOML tables: a table's allowed keys, their types and defaults come from the fields
of the record it becomes (models.py), so a new option is one field there, plus at most one
entry in checks.CHECKS.

`Reader.record_fields(spec, value, key)` reads one table: every key must be a field of
`spec.record` (under its TOML name), each value is read at the field's type (str, int,
float, bool, Path, time, timedelta, a Literal, or any of these | None), a field without a
value gets its default (the record's own, or the file's from `spec.defaults`), and a field
without either is required.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import time, timedelta
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from .checks import CHECKS, MAX_DURATION_SECONDS, Check, one_line

T = TypeVar("T")

# ASCII digits only ("\d" takes "٧"), and fullmatch: "$" would take a trailing newline
_SEND_AT = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_REQUIRED = object()


@dataclass(frozen=True)
class Spec:
    """How one TOML table maps onto one record of models.py."""

    #: the record's class: its dataclass fields are the table's keys
    record: type
    #: the table's name in checks.CHECKS: "smtp", "feeds", "profiles" …
    name: str
    #: field name → key in the file, where they differ (`sender` is written `from`)
    toml_names: Mapping[str, str] = field(default_factory=dict)
    #: fields that are not keys of the table (derived from others, such as FeedConfig.source)
    derived: frozenset[str] = frozenset()
    #: keys of the table that the caller reads itself (the profile language, cross-checks)
    custom: frozenset[str] = frozenset()
    #: the file's defaults for fields the record has none for (or another one)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return self.toml_names.get(name, name)

    def allowed(self) -> set[str]:
        return set(self.allowed_keys)

    @cached_property
    def allowed_keys(self) -> frozenset[str]:
        return frozenset({self.key(f.name) for f in dataclasses.fields(self.record)}) - {
            self.key(name) for name in self.derived
        }

    @cached_property
    def plan(self) -> tuple[_Key, ...]:
        """The keys `Reader.record_fields` reads, worked out once per table (a list of
        100,000 subscribers reads the same table 100,000 times)."""
        hints = _hints(self.record)
        keys = []
        for f in dataclasses.fields(self.record):
            if f.name in self.derived or f.name in self.custom:
                continue
            if f.name in self.defaults:
                default = self.defaults[f.name]
            elif f.default is not dataclasses.MISSING:
                default = f.default
            else:
                default = _REQUIRED
            name = self.key(f.name)
            check = CHECKS.get(f"{self.name}.{name}")
            keys.append(_Key(f.name, name, hints[f.name], default, check))
        return tuple(keys)


@dataclass(frozen=True, slots=True)
class _Key:
    """One key of a table as `Spec.plan` has worked it out."""

    field: str
    name: str
    hint: Any
    #: the file's default (Spec.defaults), else the record's, else _REQUIRED
    default: Any
    check: Check | None

    @property
    def required(self) -> bool:
        """Neither the file nor the record has a default (a caller may still give one)."""
        return self.default is _REQUIRED


@cache
def _hints(record: type) -> dict[str, Any]:
    """Each field's type, `X | None` unwrapped to X (a missing optional is its default)."""
    return {name: _unwrapped(hint) for name, hint in typing.get_type_hints(record).items()}


@lru_cache(maxsize=4096)
def _clock(value: str) -> time | None:
    """HH:MM or HH:MM:SS as a time; remembered, since the rows of a list share a few."""
    m = _SEND_AT.fullmatch(value)
    return None if m is None else time(int(m[1]), int(m[2]), int(m[3] or 0))


def _plain(value: str) -> bool:
    """A string `Reader.get` takes as it is: not blank, no NUL."""
    return "\0" not in value and not value.isspace() and value != ""


@cache
def _unwrapped(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


class Reader:
    """Reads values out of parsed TOML; every problem is a ConfigError naming file and key."""

    def __init__(self, shown: str, base: Path) -> None:
        self.shown = shown
        self.base = base

    def fail(self, key: str | None, reason: str) -> ConfigError:
        return ConfigError(self.shown, one_line(key) if key else key, one_line(reason))

    def check(self, ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise self.fail(key, reason)

    def table(self, value: object, key: str, allowed: AbstractSet[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {kind(value)}")
        for name in value:
            if name not in allowed:
                full = f"{key}.{quote(name)}" if key else quote(name)
                hint = ", ".join(sorted(allowed))
                raise self.fail(full, f"unknown key (allowed here: {hint})")
        return cast(Mapping[str, Any], value)

    def items(self, raw: Mapping[str, Any], key: str, build: Callable[[Any, str], T]) -> list[T]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array of tables ([[{key}]]), not {kind(value)}")
        return [build(item, f"{key}[{i}]") for i, item in enumerate(value)]

    def record_fields(
        self,
        spec: Spec,
        value: object,
        key: str,
        *,
        defaults: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The fields of `spec.record` read from the table `value` (the one at `key`), each
        checked by checks.CHECKS; the `derived` and `custom` ones are left to the caller."""
        t = self.table(value, key, spec.allowed_keys)
        values: dict[str, Any] = {}
        for k in spec.plan:
            default = defaults.get(k.field, k.default) if defaults else k.default
            if k.name in t:
                value = t[k.name]
                # the common cases first, as `typed` would read them (a list of 100,000
                # subscribers reads this table 100,000 times)
                if k.hint is str and type(value) is str and _plain(value):
                    pass
                elif k.hint is time and type(value) is str and (clock := _clock(value)) is not None:
                    value = clock
                else:
                    value = self.typed(t, key, k.name, k.hint, default)
            elif default is _REQUIRED or (k.hint is Path and isinstance(default, str)):
                value = self.typed(t, key, k.name, k.hint, default)
            else:
                value = default
            values[k.field] = value
            if k.check is not None:
                problem = k.check(value)
                if problem is not None:
                    raise self.fail(f"{key}.{k.name}" if key else k.name, problem)
        return values

    def typed(self, t: Mapping[str, Any], key: str, name: str, hint: Any, default: Any) -> Any:
        """The value at `name` read as `hint`; `default` (or missing) when it is absent."""
        full = f"{key}.{name}" if key else name
        hint = _unwrapped(hint)
        if name not in t and default is not _REQUIRED:
            if isinstance(default, str) and hint is Path:
                return self.path(default, full)  # a file default, relative like the file's
            return default
        required = default is _REQUIRED
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            text = self.get(t, key, name, str, None, required=required)
            shown = ", ".join(map(str, choices))
            self.check(text in choices, full, f"must be one of {shown}, not {text!r}")
            return text
        if hint is float:
            return self.finite(self.get(t, key, name, (int, float), required=required), full)
        if hint in (str, int, bool):
            return self.get(t, key, name, hint, required=required)
        if hint is Path:
            return self.path(self.get(t, key, name, str, required=required), full)
        if hint is time:
            return self.clock(self.get(t, key, name, str, required=required), full)
        if hint is timedelta:
            return self.duration(self.get(t, key, name, str, required=required), full)
        raise TypeError(f"{full}: no reader for {hint!r}; read it in the caller (Spec.derived)")

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        want: type[T] | tuple[type, ...],
        default: T | None = None,
        *,
        required: bool = False,
    ) -> T:
        if name not in table:
            if required:
                raise self.fail(f"{key}.{name}" if key else name, "missing")
            return cast(T, default)
        value = table[name]
        if want is str and type(value) is str and _plain(value):
            return cast(T, value)  # the common case, first
        full = f"{key}.{name}" if key else name
        kinds = want if isinstance(want, tuple) else (want,)
        # bool is an int in Python but never a number in a config file
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(full, f"must be {kind_name(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.fail(full, f"must be {kind_name(kinds)}, not {kind(value)}")
        if isinstance(value, str) and not value.strip():
            raise self.fail(full, "must not be empty")
        if isinstance(value, str) and "\0" in value:
            raise self.fail(full, "must not hold a NUL character")
        return cast(T, value)

    def finite(self, value: object, full: str) -> float:
        """A finite float (an integer is taken as one): inf, nan and integers too large for
        a float are refused."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(full, f"must be a number, not {kind(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            shown = str(value) if isinstance(value, float) else "an integer too large"
            raise self.fail(full, f"must be a finite number, not {shown}")
        return number

    def zone(self, value: str, key: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:
            reason = f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
            raise self.fail(key, reason) from e
        return value

    def path(self, value: str, key: str) -> Path:
        self.check("\0" not in value, key, "a path must not hold a NUL character")
        try:
            return (self.base / Path(value).expanduser()).resolve()
        except (RuntimeError, OSError, ValueError) as e:  # "~nobody/x", a loop of links
            raise self.fail(key, f"not a usable path {value!r}: {e}") from e

    def clock(self, value: str, key: str) -> time:
        clock = _clock(value)
        if clock is None:
            raise self.fail(key, f"must be HH:MM or HH:MM:SS (24-hour), not {value!r}")
        return clock

    def duration(self, value: str, key: str) -> timedelta:
        m = _DURATION.fullmatch(value)
        self.check(
            m is not None and any(m.groups()),
            key,
            f'must be a duration such as "4h", "90m" or "1h30m", not {value!r}',
        )
        assert m is not None
        h, mins, secs = (int(g or 0) for g in m.groups())
        seconds = h * 3600 + mins * 60 + secs  # Python ints: no overflow before the check
        self.check(seconds <= MAX_DURATION_SECONDS, key, f"{value!r} is longer than a year")
        return timedelta(seconds=seconds)


def quote(term: str) -> str:
    return term if re.fullmatch(r"[A-Za-z0-9_-]+", term) else f'"{term}"'


def kind(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def kind_name(kinds: tuple[type, ...]) -> str:
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(kind(k()) for k in kinds)
