"""Fuzzing the config: whatever the file holds, `load_config` returns a Config or raises a
ConfigError whose message is one line naming the file; never any other exception."""

from __future__ import annotations

import atexit
import json
import math
import random
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, RunDigest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_config_hostile import composes

from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Config
from digest.urls import url_problem

EXAMPLE = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
# the example's commented-out tables, so that every key a config can hold is fuzzed
EXAMPLE["smtp"] = {
    "host": "smtp.example.org",
    "port": 587,
    "security": "starttls",
    "username": "digest@example.org",
    "password_env": "DIGEST_SMTP_PASSWORD",
    "from": "Morning papers <digest@example.org>",
    "timeout": 30,
    "data_timeout": 600,
    "connections": 4,
    "attempts": 3,
    "backoff": 2,
}
EXAMPLE["fetch"] = {"concurrency": 16, "per_host": 4, "timeout": 30}
EXAMPLE["webhooks"] = [
    {
        "name": "team-chat",
        "url": "https://hooks.example.org/T000/B000/XXXX",
        "profile": "rl",
        "format": "slack",
        "send_at": "07:00",
        "timezone": "Europe/Berlin",
    }
]
EXAMPLE["digest"].update(
    collect_every="1h", catch_up="4h", unsubscribe_url="https://example.org/u", keep_days=180
)
EXAMPLE["profiles"]["rl"].update(
    require=["RLHF"],
    fields={"title": 2, "summary": 1},
    authors=["Ada Lovelace"],
    organisations={"NVIDIA": 2},
    popularity=1,
    freshness=0.5,
    max_per_feed=3,
    sections="tag",
    tags={"alignment": ["RLHF", "alignment"]},
)
EXAMPLE["profiles"]["agents"]["sections"] = "feed"
EXAMPLE["subscriber_lists"] = [{"path": "subscribers.csv"}]
LIST_TEXT = (
    "name,email,profile,send_at,timezone\n"
    "linus,linus@example.org,agents,,\n"
    '"Hopper, Grace",hopper@example.org,rl,06:00,Asia/Tokyo\n'
)
EXAMPLE["feeds"][0]["type"] = "rss"


def key_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in the document: table keys and array indexes."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*prefix, i)
            yield from key_paths(item, (*prefix, i))


PATHS = sorted(key_paths(EXAMPLE), key=repr)


def toml_key(key: str) -> str:
    return json.dumps(key)


def toml_value(value: Any) -> str:
    """TOML for `value`, every table inline; strings as JSON strings (the same escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


# strings a config meets in the wild or in a hostile hand: control characters, other digits,
# durations, times, addresses, URLs, paths
TRICKY_STRINGS = [
    "",
    " ",
    "07:00\n",
    "\u0667:\u0660\u0660",
    "24:00",
    "99999999999999999999h",
    "1h30m",
    "0s",
    "Ada <ada@example.org>",
    "a@x, b@x",
    "\u00e4da@x",
    "ada@b\u00fccher.example",
    "http://[::1",
    "HTTP://example.org/feed",
    "https://u:p@example.org:99999/x?token=abc",
    "https://example.org/" + "a" * 9000,
    "file:///etc/passwd",
    "file://",
    "~nobody-here/x",
    "a\x00b",
    "../../..",
    "/",
    ".",
    "{date}",
    "{day}",
    "x{date}y",
    "Mars/Olympus",
    "Europe/Berlin",
    "../../etc/localtime",
    "hunter2!",
    "tag",
    "feed",
    "slack",
    "json",
    "none",
    "tls",
    "localhost",
    "trans*former",
    "tr*",
    "*",
    "RLHF",
    "\u202e",
    "\r\n",
]
TRICKY = st.sampled_from(TRICKY_STRINGS)
TRICKY_NUMBERS = [
    math.inf,
    -math.inf,
    math.nan,
    10**40,
    -(10**40),
    10**19,
    -1,
    0,
    0.0,
    1e-300,
    65536,
]
SCALARS = st.one_of(
    TRICKY,
    st.sampled_from(TRICKY_NUMBERS),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    TRICKY,
    st.dates(),
    st.times(),
    st.datetimes(),
)
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(sorted({str(p[-1]) for p in PATHS})))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)

FUZZ = settings(
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    deadline=None,
)
# thousands of files are written: in memory where the machine has a RAM disk
_SHM = Path("/dev/shm")
DIRECTORY = Path(
    tempfile.mkdtemp(prefix="digest-config-fuzz-", dir=_SHM if _SHM.is_dir() else None)
)
atexit.register(shutil.rmtree, DIRECTORY, ignore_errors=True)
(DIRECTORY / "subscribers.csv").write_text(LIST_TEXT, encoding="utf-8")


def load_text(text: str) -> Config | None:
    """load_config on `text`: a Config, or None after checking the refusal is one clean line."""
    path = DIRECTORY / "digest.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path)
    except ConfigError as e:
        message = str(e)
        # the config file, or a [[subscriber_lists]] file (named relative to the config file)
        assert message.startswith(str(path)) or message.startswith(str(DIRECTORY)), message
        assert "\n" not in message and "\r" not in message, repr(message)
        assert e.reason, message
        assert "Traceback" not in message
        return None
    assert_usable(config)
    return config


def assert_usable(config: Config) -> None:
    """What an accepted config promises the run: each value works where it is used."""
    now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    day = now - timedelta(days=config.settings.keep_days)  # no overflow
    assert day.year > 1900
    for sub in config.subscribers:
        assert composes(sub.email), sub.email
        ZoneInfo(sub.timezone)
    if config.smtp is not None:
        assert math.isfinite(config.smtp.timeout) and math.isfinite(config.smtp.data_timeout)
        assert composes("ada@example.org", sender=config.smtp.sender), config.smtp.sender
    for feed in config.feeds:
        if feed.is_http:
            assert url_problem(feed.source.replace("{date}", "2026-11-23")) is None, feed.url
        else:
            assert "\0" not in feed.source
    for hook in config.webhooks:
        assert url_problem(hook.url) is None
    profile_numbers = [
        n
        for p in config.profiles.values()
        for n in (
            p.min_score,
            p.popularity,
            p.freshness,
            *(w for _, w in p.keywords),
            *(w for _, w in p.fields),
            *(w for _, w in p.authors + p.organisations),
        )
    ]
    assert all(map(math.isfinite, [config.settings.min_score, *profile_numbers]))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: replaced(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = replaced(doc[head], rest, value)
    return copy


def removed(doc: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if rest:
        if isinstance(doc, dict):
            return {**doc, head: removed(doc[head], rest)}
        copy = list(doc)
        copy[head] = removed(doc[head], rest)
        return copy
    if isinstance(doc, dict):
        return {k: v for k, v in doc.items() if k != head}
    return [v for i, v in enumerate(doc) if i != head]


def test_every_tricky_value_at_every_key_is_accepted_or_one_line() -> None:
    """Exhaustive where it is cheap: each hostile string and number at each key."""
    values: list[Any] = [*TRICKY_STRINGS, *TRICKY_NUMBERS, True, [], {}]
    crashes: list[str] = []
    for path in PATHS:
        for value in values:
            try:
                load_text(toml_document(replaced(EXAMPLE, path, value)))
            except Exception as e:  # noqa: BLE001 - the point: nothing else may escape
                crashes.append(f"{path} = {value!r}: {type(e).__name__}: {e}"[:300])
    assert not crashes, f"{len(crashes)} crashes, e.g.\n" + "\n".join(crashes[:20])


def test_the_fuzzed_base_document_is_valid() -> None:
    """The starting point is accepted, so the fuzz below explores near a valid config."""
    config = load_text(toml_document(EXAMPLE))
    assert config is not None
    assert config.webhooks and config.smtp is not None and config.smtp.data_timeout == 600
    assert [s.name for s in config.subscribers[-2:]] == ["linus", "Hopper, Grace"]


@FUZZ
@given(st.sampled_from(PATHS), VALUES)
def test_any_value_at_any_key_is_accepted_or_one_line(path: tuple[Any, ...], value: Any) -> None:
    load_text(toml_document(replaced(EXAMPLE, path, value)))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=2, max_size=5))
def test_several_changes_at_once_are_accepted_or_one_line(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    doc: Any = EXAMPLE
    for path, value in changes:
        try:
            doc = replaced(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced the table this path went through
    load_text(toml_document(doc))


@FUZZ
@given(st.sampled_from(PATHS))
def test_any_key_left_out_is_accepted_or_one_line(path: tuple[Any, ...]) -> None:
    load_text(toml_document(removed(EXAMPLE, path)))


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_random_documents_are_accepted_or_one_line(doc: dict[str, Any]) -> None:
    load_text(toml_document(doc))


# --- subscriber lists: whatever the CSV file holds -----------------------------------------

COLUMNS = ["name", "email", "profile", "send_at", "timezone"]
GOOD_FIELDS = {
    "name": st.one_of(
        st.sampled_from(["Hopper, Grace", 'say "hi"']),
        st.text("abcdefghij", min_size=3, max_size=9),
    ),
    "email": st.sampled_from(["linus@example.org", "h@b\u00fccher.example", "x@localhost"]),
    "profile": st.sampled_from(["rl", "agents", "vision"]),
    "send_at": st.sampled_from(["", "07:00", "23:59:59"]),
    "timezone": st.sampled_from(["", "Asia/Tokyo", "UTC"]),
}
CSV_FIELDS = st.one_of(
    TRICKY,
    st.text(st.characters(blacklist_characters="\0"), max_size=12),
    st.sampled_from([",", '"', '""', "\n", "ada", "nope", "24:00", "Mars/Olympus", "x\ny"]),
)
HEADERS = st.one_of(
    st.just(COLUMNS),
    st.just(COLUMNS[:3]),
    st.permutations(COLUMNS),
    st.lists(st.sampled_from([*COLUMNS, "phone", "Name", " email", ""]), max_size=6),
)


# one in twenty: hypothesis draws the boundaries of an integer range far more often than that
RARELY = st.sampled_from([False] * 19 + [True])


def csv_field(value: str, quote: bool) -> str:
    if quote or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV file near a valid list: a header, rows of likely and hostile fields, each
    field quoted or not (and now and then a quote left open), any line ends, a BOM, a
    stray byte."""
    header = list(draw(HEADERS))
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 6))):
        width = len(header) + draw(st.sampled_from([0] * 18 + [-1, 1]))
        fields = []
        for i in range(max(width, 0)):
            column = header[i] if i < len(header) else ""
            good = GOOD_FIELDS.get(column)
            hostile = good is None or draw(RARELY)
            value = draw(CSV_FIELDS if hostile else good)
            fields.append(value if draw(RARELY) else csv_field(value, draw(st.booleans())))
        lines.append(",".join(fields))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(lines) + draw(st.sampled_from(["", end, end + end]))
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(RARELY):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\0", b"\xff", b"\xc3", b'"'])) + data[at:]
    return data


@FUZZ
@given(csv_files())
def test_any_subscriber_list_is_read_or_one_line(data: bytes) -> None:
    (DIRECTORY / "fuzz.csv").write_bytes(data)
    doc = {**EXAMPLE, "subscriber_lists": [{"path": "fuzz.csv"}]}
    config = load_text(toml_document(doc))
    if config is not None:
        (listed,) = config.subscriber_lists
        assert len(config.subscribers) == len(EXAMPLE["subscribers"]) + listed.count
        assert len({s.name for s in config.subscribers}) == len(config.subscribers)
        assert all(s.profile in config.profiles for s in config.subscribers)


EXAMPLE_TEXT = (ROOT / "config.example.toml").read_text(encoding="utf-8")


@FUZZ
@given(st.integers(0, len(EXAMPLE_TEXT)), st.text(max_size=8), st.integers(0, 8))
def test_the_example_file_edited_anywhere_is_accepted_or_one_line(
    at: int, insert: str, cut: int
) -> None:
    load_text(EXAMPLE_TEXT[:at] + insert + EXAMPLE_TEXT[at + cut :])


def cli_cases() -> list[str]:
    """A few documents from the fuzz's own generators, fixed by a seed."""
    rng = random.Random(17)
    values: list[Any] = [
        math.inf,
        "07:00\n",
        "99999999999999999999h",
        10**40,
        "a\x00b",
        "Ada <ada@example.org>",
        {"x": [1, {"y": math.nan}]},
        "http://[::1",
    ]
    rng.shuffle(values)
    paths = rng.sample([p for p in PATHS if len(p) > 1], len(values))
    return [toml_document(replaced(EXAMPLE, p, v)) for p, v in zip(paths, values, strict=True)]


@pytest.mark.parametrize("text", cli_cases())
def test_check_config_on_fuzzed_files_exits_2_with_one_line(
    tmp_path: Path, run_digest: RunDigest, text: str
) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    result = run_digest("check-config", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert str(path) in line
    assert result.stdout == ""
