"""`[[subscriber_lists]]`: subscribers from CSV files, each row read as a `[[subscribers]]`
table; every problem one line naming the file, the line and the column."""

from __future__ import annotations

import gc
import os
from datetime import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from conftest import ROOT, RunDigest

from digest.config import MAX_LIST_BYTES, load_config
from digest.errors import ConfigError

BASE = """
[digest]
timezone = "Europe/Berlin"

[[feeds]]
name = "papers"
url = "papers.rss"

[profiles.rl]
keywords = { RLHF = 2 }

[profiles.agents]
keywords = { agent = 1 }

[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "rl"
"""
LIST = '[[subscriber_lists]]\npath = "subscribers.csv"\n'
HEADER = "name,email,profile,send_at,timezone\n"
ROWS = (
    "grace,grace@example.org,agents,06:30,America/New_York\n"
    "linus,linus@example.org,rl,,\n"
    "barbara,barbara@example.org,rl,08:00,\n"
)


def write(directory: Path, csv: str | bytes, toml: str = BASE + LIST) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = csv if isinstance(csv, bytes) else csv.encode("utf-8")
    (directory / "subscribers.csv").write_bytes(data)
    path = directory / "digest.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return info.value


# --- what a list gives --------------------------------------------------------------------


def test_rows_are_appended_after_the_tables_in_file_order(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, HEADER + ROWS))
    assert [s.name for s in config.subscribers] == ["ada", "grace", "linus", "barbara"]
    ada, grace, linus, barbara = config.subscribers
    assert (grace.email, grace.profile) == ("grace@example.org", "agents")
    assert (grace.send_at, grace.timezone) == (time(6, 30), "America/New_York")
    # an empty field is the default [[subscribers]] has: 07:00, [digest].timezone
    assert (linus.send_at, linus.timezone) == (time(7, 0), "Europe/Berlin")
    assert (barbara.send_at, barbara.timezone) == (time(8, 0), "Europe/Berlin")
    assert linus == type(ada)(
        name="linus",
        email="linus@example.org",
        profile="rl",
        send_at=time(7),
        timezone="Europe/Berlin",
    )
    (listed,) = config.subscriber_lists
    assert listed.path == tmp_path / "subscribers.csv"
    assert listed.count == 3


def test_the_optional_columns_may_be_left_out_and_the_columns_reordered(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "profile,email,name\nrl,grace@example.org,grace\n"))
    grace = config.subscribers[1]
    assert (grace.name, grace.email, grace.profile) == ("grace", "grace@example.org", "rl")
    assert (grace.send_at, grace.timezone) == (time(7, 0), "Europe/Berlin")


def test_what_spreadsheets_and_databases_write_is_read(tmp_path: Path) -> None:
    """A BOM, CRLF line ends, quoted fields with commas and quotes, blank lines."""
    text = (
        "\ufeffname,email,profile\r\n"
        '"Hopper, Grace",grace@example.org,agents\r\n'
        "\r\n"
        '"Ada ""the first"" L",ada.l@example.org,"rl"\r\n'
    )
    config = load_config(write(tmp_path, text))
    assert [s.name for s in config.subscribers[1:]] == ["Hopper, Grace", 'Ada "the first" L']


def test_several_lists_are_read_in_their_order(tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b.csv").write_text("name,email,profile\nzoe,zoe@example.org,rl\n")
    toml = BASE + LIST + '[[subscriber_lists]]\npath = "more/b.csv"\n'
    config = load_config(write(tmp_path, HEADER + ROWS, toml))
    assert [s.name for s in config.subscribers] == ["ada", "grace", "linus", "barbara", "zoe"]
    assert [(x.path.name, x.count) for x in config.subscriber_lists] == [
        ("subscribers.csv", 3),
        ("b.csv", 1),
    ]


def test_a_list_with_a_header_only_is_no_subscribers(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "name,email,profile\n"))
    assert [s.name for s in config.subscribers] == ["ada"]
    assert config.subscriber_lists[0].count == 0


def test_the_error_names_the_list_as_the_config_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, HEADER + "grace,grace@example.org,rl,,\nlinus,not-an-address,rl,,\n")
    monkeypatch.chdir(tmp_path)
    error = config_error(Path("digest.toml"))
    assert str(error).startswith("subscribers.csv:3: email: not an email address: 'not-an-address'")


# --- every problem: one line, the file, the line, the column ------------------------------

ROW_PROBLEMS = {
    "bad address": ("linus,linus@@example.org,rl,,", "email", "not an email address"),
    "address with a name": ("linus,Linus <l@example.org>,rl,,", "email", "write the address alone"),
    "empty address": ("linus,,rl,,", "email", "must not be empty"),
    "empty name": (",linus@example.org,rl,,", "name", "must not be empty"),
    "blank name": ("  ,linus@example.org,rl,,", "name", "must not be empty"),
    "unknown profile": ("linus,linus@example.org,nope,,", "profile", "no profile named 'nope'"),
    "bad send_at": ("linus,linus@example.org,rl,7am,", "send_at", "must be HH:MM"),
    "send_at 24:00": ("linus,linus@example.org,rl,24:00,", "send_at", "must be HH:MM"),
    "bad zone": ("linus,linus@example.org,rl,,Mars/Olympus", "timezone", "unknown time zone"),
    "duplicate in the list": ("grace,g2@example.org,rl,,", "name", "subscribers.csv:2)"),
    "duplicate of a table": ("ada,a2@example.org,rl,,", "name", "subscribers[0] in"),
}


@pytest.mark.parametrize("case", ROW_PROBLEMS)
def test_a_bad_row_is_one_line_naming_the_file_line_and_column(tmp_path: Path, case: str) -> None:
    row, column, reason = ROW_PROBLEMS[case]
    path = write(tmp_path, HEADER + "grace,grace@example.org,rl,,\n" + row + "\n")
    error = config_error(path)
    assert str(error).startswith(f"{tmp_path / 'subscribers.csv'}:3: {column}: "), str(error)
    assert reason in error.reason


def test_a_duplicate_names_both_places(tmp_path: Path) -> None:
    error = config_error(
        write(tmp_path, HEADER + "grace,g@example.org,rl,,\nada,a@example.org,rl,,\n")
    )
    assert str(error) == (
        f"{tmp_path / 'subscribers.csv'}:3: name: duplicate subscriber 'ada' "
        f"(the subscriber at subscribers[0] in {tmp_path / 'digest.toml'})"
    )


def test_a_webhook_named_as_a_listed_subscriber_names_both_places(tmp_path: Path) -> None:
    hook = (
        '[[webhooks]]\nname = "grace"\nurl = "https://hooks.example.org/T/B/X"\n'
        'profile = "rl"\nformat = "json"\n'
    )
    error = config_error(write(tmp_path, HEADER + ROWS, BASE + LIST + hook))
    assert error.key == "webhooks[0].name"
    assert f"the subscriber at {tmp_path / 'subscribers.csv'}:2" in error.reason


def test_two_lists_with_one_name_name_both_files(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("name,email,profile\n\nlinus,l2@example.org,rl\n")
    toml = BASE + LIST + '[[subscriber_lists]]\npath = "b.csv"\n'
    error = config_error(write(tmp_path, HEADER + ROWS, toml))
    assert str(error).startswith(f"{tmp_path / 'b.csv'}:3: name: duplicate subscriber 'linus'")
    assert f"{tmp_path / 'subscribers.csv'}:3)" in error.reason


FILE_PROBLEMS = {
    "unknown column": ("name,email,profile,phone\n", 1, "unknown column 'phone'"),
    "missing column": ("name,profile\n", 1, "no column 'email'"),
    "a column twice": ("name,email,profile,name\n", 1, "named twice"),
    "semicolons": ("name;email;profile\nx;x@example.org;rl\n", 1, "separated by commas"),
    "too many fields": (HEADER + "Hopper, Grace,g@example.org,rl,,\n", 2, "quote a value"),
    "too few fields": (HEADER + "grace,g@example.org,rl\n", 2, "keep its comma"),
    "unclosed quote": (HEADER + 'a,a@example.org,rl,,\n"grace,g@x.org,rl,,\nb\n', 3, "not closed"),
    "text after a quote": (HEADER + '"grace"x,g@example.org,rl,,\n', 2, "not valid CSV"),
    "empty file": ("", None, "a header row is needed"),
    "blank lines only": ("\n\r\n\n", None, "a header row is needed"),
}


@pytest.mark.parametrize("case", FILE_PROBLEMS)
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    text, line, reason = FILE_PROBLEMS[case]
    error = config_error(write(tmp_path, text))
    where = f"{tmp_path / 'subscribers.csv'}" + (f":{line}" if line else "")
    assert error.path == where, str(error)
    assert reason in error.reason, str(error)


BYTE_PROBLEMS = {
    "NUL byte": (HEADER.encode() + b"grace,g@example.org,rl,,\r\nx\0y,x@example.org,rl,,\n", 3),
    "Latin-1": (HEADER.encode() + b"grace,g@example.org,rl,,\nM\xfcller,m@example.org,rl,,\n", 3),
    "UTF-16": ("name,email,profile\n".encode("utf-16"), None),
    "CR line ends": (b"name,email,profile\rgrace,g@example.org,rl\rx\0,x@example.org,rl\r", 3),
}


@pytest.mark.parametrize("case", BYTE_PROBLEMS)
def test_bytes_that_are_not_csv_text_are_one_line(tmp_path: Path, case: str) -> None:
    data, line = BYTE_PROBLEMS[case]
    error = config_error(write(tmp_path, data))
    assert error.path == f"{tmp_path / 'subscribers.csv'}" + (f":{line}" if line else "")
    assert error.key is None


def test_a_field_longer_than_the_csv_reader_takes_is_one_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, HEADER + "x" * 200_000 + ",x@example.org,rl,,\n"))
    assert error.path.endswith("subscribers.csv:2")
    assert "field larger than field limit" in error.reason


TABLE_PROBLEMS = {
    "no path": ("[[subscriber_lists]]\n", "subscriber_lists[0].path", "missing"),
    "unknown key": (LIST + 'sep = ";"\n', "subscriber_lists[0].sep", "unknown key"),
    "not an array": ("[subscriber_lists]\npath = 'x.csv'\n", "subscriber_lists", "array of tables"),
    "no such file": (
        '[[subscriber_lists]]\npath = "nowhere.csv"\n',
        "subscriber_lists[0].path",
        "no such file",
    ),
    "a directory": (
        '[[subscriber_lists]]\npath = "."\n',
        "subscriber_lists[0].path",
        "not a regular file",
    ),
    "a file as a directory": (
        '[[subscriber_lists]]\npath = "digest.toml/x.csv"\n',
        "subscriber_lists[0].path",
        "cannot read",
    ),
    "twice": (LIST + LIST, "subscriber_lists[1].path", "the same file as subscriber_lists[0]"),
    "NUL in the path": (
        '[[subscriber_lists]]\npath = "a\\u0000b"\n',
        "subscriber_lists[0].path",
        "NUL",
    ),
}


@pytest.mark.parametrize("case", TABLE_PROBLEMS)
def test_a_bad_list_table_names_its_key_in_the_config_file(tmp_path: Path, case: str) -> None:
    table, key, reason = TABLE_PROBLEMS[case]
    error = config_error(write(tmp_path, HEADER + ROWS, BASE + table))
    assert error.path == str(tmp_path / "digest.toml")
    assert (error.key, reason in error.reason) == (key, True), str(error)


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    write(tmp_path, HEADER)
    os.mkfifo(tmp_path / "pipe.csv")
    error = config_error(
        write(tmp_path, HEADER, BASE + '[[subscriber_lists]]\npath = "pipe.csv"\n')
    )
    assert "not a regular file" in error.reason


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER)
    with (tmp_path / "subscribers.csv").open("r+b") as f:
        f.truncate(1024 * 1024 * 1024)  # a sparse GB: nothing is written, nothing read
    error = config_error(path)
    assert error.key == "subscriber_lists[0].path"
    assert f"at most {MAX_LIST_BYTES // (1024 * 1024)} MB" in error.reason
    assert "1,024 MB" in error.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER)
    (tmp_path / "subscribers.csv").chmod(0)
    error = config_error(path)
    assert "cannot read" in error.reason


# --- through the real commands ------------------------------------------------------------


def test_check_config_names_a_few_subscribers_and_where_they_came_from(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    result = run_digest("check-config", str(write(tmp_path, HEADER + ROWS)))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  subscribers: 4 (1 in the config, 3 from subscribers.csv)" in lines
    assert "    grace <grace@example.org>: profile agents, at 06:30 America/New_York" in lines
    assert "    linus <linus@example.org>: profile rl, at 07:00 Europe/Berlin" in lines


def test_check_config_counts_a_long_list_without_listing_it(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    rows = "".join(f"reader{i},reader{i}@example.org,rl,,\n" for i in range(2500))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.csv").write_text("name,email,profile\nzoe,zoe@example.org,rl\n")
    toml = BASE + LIST + '[[subscriber_lists]]\npath = "sub/more.csv"\n'
    result = run_digest("check-config", str(write(tmp_path, HEADER + rows, toml)))
    assert result.returncode == 0, result.stderr
    assert (
        "  subscribers: 2,502 (1 in the config, 2,500 from subscribers.csv, 1 from sub/more.csv)"
        "; more than 20, so not listed one by one"
    ) in result.stdout.splitlines()
    assert "reader" not in result.stdout
    assert len(result.stdout.splitlines()) < 15


def test_check_config_refuses_a_bad_row_with_one_line(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    path = write(tmp_path, HEADER + ROWS + "zoe,zoe@example.org,rl,25:00,\n")
    result = run_digest("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path / 'subscribers.csv'}:5: send_at: must be HH:MM")


def test_check_config_counts_many_profiles_without_listing_them(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    profiles = "".join(f"[profiles.p{i}]\nkeywords = {{ term{i} = 1 }}\n" for i in range(25))
    result = run_digest("check-config", str(write(tmp_path, HEADER + ROWS, BASE + profiles + LIST)))
    assert result.returncode == 0, result.stderr
    assert "  profiles (27): more than 20, so not listed one by one" in result.stdout
    assert "term1" not in result.stdout


def test_the_readme_example_list_is_read_as_it_says(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### `[[subscriber_lists]]`") :]
    start = section.index("```csv\n") + len("```csv\n")
    example = section[start : section.index("```", start)]
    toml = BASE[: BASE.index("[[subscribers]]")] + LIST
    config = load_config(write(tmp_path, example, toml))
    assert [(s.name, s.send_at, s.timezone) for s in config.subscribers] == [
        ("ada", time(6, 30), "Europe/London"),
        ("grace", time(7, 0), "Europe/Berlin"),
        ("Hopper, Grace", time(8, 0), "America/New_York"),
    ]


def test_digest_run_delivers_to_every_listed_subscriber(
    example_dir: Path, run_digest: RunDigest
) -> None:
    """The bundled example with a list of three: five digests written, each to its address,
    ranked by its own profile; a second run on the same date delivers nothing new."""
    config = example_dir / "config.example.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + '\n[[subscriber_lists]]\npath = "lists/readers.csv"\n')
    (example_dir / "lists").mkdir()
    (example_dir / "lists" / "readers.csv").write_bytes(
        b"\xef\xbb\xbfname,email,profile,send_at,timezone\r\n"
        b"linus,linus@example.org,agents,,\r\n"
        b'"barbara",barbara@example.org,rl,06:00,Asia/Tokyo\r\n'
        b"edsger,edsger@example.org,vision,,Europe/Amsterdam\r\n"
    )
    result = run_digest("run", "--config", str(config), "--now", "2026-11-23T07:30:00Z")
    assert result.returncode == 0, result.stderr
    out = example_dir / "examples" / "out" / "2026-11-23"
    for name in ("ada", "grace", "linus", "barbara", "edsger"):
        message = BytesParser(policy=policy.default).parsebytes((out / f"{name}.eml").read_bytes())
        assert message["To"].addresses[0].addr_spec == f"{name}@example.org"
    # each listed reader's digest is ranked by their own profile
    assert "WebRL: Training LLM Web Agents" in (out / "linus.txt").read_text()
    assert "RLHF Workflow: From Reward Modeling to Online RLHF" in (out / "barbara.txt").read_text()
    assert "Vision-Language Generative Models" in (out / "edsger.txt").read_text()
    assert "RLHF Workflow" not in (out / "edsger.txt").read_text()
    # 13:00 UTC is still the 23rd in Tokyo: every reader has had that date's digest
    again = run_digest("run", "--config", str(config), "--now", "2026-11-23T13:00:00Z")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already delivered") == 6  # five subscribers and the wiki page


def test_the_garbage_collector_is_back_on_after_a_list_read_or_refused(tmp_path: Path) -> None:
    """Reading a list pauses the cyclic collector (its rows make no cycles): only then."""
    assert gc.isenabled()
    load_config(write(tmp_path, HEADER + ROWS))
    assert gc.isenabled()
    config_error(write(tmp_path, HEADER + ROWS + "zoe,zoe@example.org,nope,,\n"))
    assert gc.isenabled()
