"""check-config refuses what would crash a run later: one line naming the file and the key,
checked as the email layer, the HTTP client, the template engine and `datetime` will take it."""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path

import pytest
from conftest import RunDigest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_config import FEED, PROFILE, SMTP, SUBSCRIBER, config_error, write

from digest.config import address_problem, load_config
from digest.send import Outgoing, compose

NUMBERS = {
    "digest.min_score": "[digest]\nmin_score = {v}\n" + FEED,
    "profiles.rl.min_score": FEED + PROFILE + "min_score = {v}\n",
    "profiles.rl.keywords.RLHF": FEED + "[profiles.rl]\nkeywords = { RLHF = {v} }\n",
    "profiles.rl.fields.title": FEED + PROFILE + "fields = { title = {v} }\n",
    "profiles.rl.popularity": FEED + PROFILE + "popularity = {v}\n",
    "profiles.rl.freshness": FEED + PROFILE + "freshness = {v}\n",
    "profiles.rl.authors.Ada": FEED + PROFILE + "authors = { Ada = {v} }\n",
    "feeds[0].weight": FEED + "weight = {v}\n",
    "fetch.timeout": "[fetch]\ntimeout = {v}\n" + FEED,
    "smtp.timeout": SMTP + "timeout = {v}\n" + FEED,
    "smtp.data_timeout": SMTP + "data_timeout = {v}\n" + FEED,
    "smtp.backoff": SMTP + "backoff = {v}\n" + FEED,
}


@pytest.mark.parametrize("value", ["inf", "+inf", "nan", "-nan", str(10**400)])
@pytest.mark.parametrize("key", NUMBERS)
def test_non_finite_numbers_are_refused_everywhere(tmp_path: Path, key: str, value: str) -> None:
    error = config_error(write(tmp_path, NUMBERS[key].replace("{v}", value)))
    assert error.key == key
    assert "finite" in error.reason or "positive" in error.reason, error.reason


@pytest.mark.parametrize(
    ("key", "value"),
    [("smtp.timeout", "3601"), ("smtp.data_timeout", "86400"), ("smtp.data_timeout", "0")],
)
def test_smtp_timeouts_are_bounded(tmp_path: Path, key: str, value: str) -> None:
    name = key.split(".")[1]
    error = config_error(write(tmp_path, f"{SMTP}{name} = {value}\n{FEED}"))
    assert error.key == key
    assert "at most 3600" in error.reason


def test_data_timeout_defaults_to_rfc_5321s_ten_minutes_and_is_read(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, SMTP + FEED)).smtp
    assert default is not None and default.data_timeout == 600.0
    read = load_config(write(tmp_path, SMTP + "data_timeout = 120\ntimeout = 10\n" + FEED)).smtp
    assert read is not None and (read.data_timeout, read.timeout) == (120.0, 10.0)


@pytest.mark.parametrize(
    "send_at", ["07:00\\n", "07:00 ", " 07:00", "\u0667:\u0660\u0660", "07:\u0660\u0660", "7:00"]
)
def test_send_at_takes_ascii_digits_only_and_nothing_around_them(
    tmp_path: Path, send_at: str
) -> None:
    text = FEED + PROFILE + SUBSCRIBER + f'send_at = "{send_at}"\n'
    error = config_error(write(tmp_path, text))
    assert error.key == "subscribers[0].send_at"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("catch_up", "99999999999999999999h"),
        ("collect_every", "99999999999999999999999999999s"),
        ("collect_every", "\u0664h"),
        ("catch_up", "2h\\n"),
        ("catch_up", "25h"),
    ],
)
def test_durations_that_overflow_or_hide_characters_are_refused(
    tmp_path: Path, name: str, value: str
) -> None:
    error = config_error(write(tmp_path, f'[digest]\n{name} = "{value}"\n' + FEED))
    assert error.key == f"digest.{name}"


@pytest.mark.parametrize("keep_days", ["36501", "1000000", str(10**30)])
def test_keep_days_is_bounded_by_what_dates_can_hold(tmp_path: Path, keep_days: str) -> None:
    error = config_error(write(tmp_path, f"[digest]\nkeep_days = {keep_days}\n" + FEED))
    assert error.key == "digest.keep_days"
    assert "at most 36500" in error.reason


def test_a_century_of_keep_days_is_fine(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[digest]\nkeep_days = 36500\n" + FEED)).settings.keep_days


@pytest.mark.parametrize("opening", ["[", "{ a = "])
def test_deeply_nested_toml_is_one_line(tmp_path: Path, opening: str) -> None:
    closing = "]" if opening == "[" else " }"
    error = config_error(write(tmp_path, FEED + "x = " + opening * 5000 + closing * 5000 + "\n"))
    assert "nested too deeply" in error.reason


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[digest]\nstate = "state\\u0000.sqlite"\n' + FEED, "digest.state"),
        ('[digest]\noutput = "out\\u0000"\n' + FEED, "digest.output"),
        ('[digest]\ntemplates = "t\\u0000"\n' + FEED, "digest.templates"),
        ('[[feeds]]\nname = "p"\nurl = "papers\\u0000.rss"\n', "feeds[0].url"),
        ('[[feeds]]\nname = "p"\nurl = "file:///tmp/p\\u0000.rss"\n', "feeds[0].url"),
        (SMTP + 'ca_file = "ca\\u0000.pem"\n' + FEED, "smtp.ca_file"),
        (FEED + PROFILE + '[[markdown]]\nprofile = "rl"\npath = "w/{date}\\u0000.md"\n', None),
        ('[digest]\nstate = "~no-such-user-here/x.sqlite"\n' + FEED, "digest.state"),
    ],
)
def test_a_nul_or_unusable_path_is_one_line(tmp_path: Path, text: str, key: str | None) -> None:
    error = config_error(write(tmp_path, text))
    assert error.key is not None
    if key is not None:
        assert error.key == key


def test_a_nul_in_the_config_file_name_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "digest\0.toml"
    with pytest.raises(Exception) as info:
        load_config(path)
    assert type(info.value).__name__ == "ConfigError"
    assert "\n" not in str(info.value)


# --- subscriber addresses, exactly as the email layer takes them ---------------------------

REFUSED_ADDRESSES = [
    "Ada <ada@example.org>",
    "a@x, b@x",
    "\u00e4da@x",
    "ada@example.org\\n",
    "ada at example.org",
    "a..b@example.org",
    ".a@example.org",
    "ada@x..org",
    "ada@-x.org",
    '\\"a b\\"@example.org',
    "<ada@example.org>",
    "ada@",
    "@example.org",
    "ada@exa mple.org",
    "a" * 65 + "@example.org",
]
ACCEPTED_ADDRESSES = [
    "ada@example.org",
    "a.b+tag@example.org",
    "ada@b\u00fccher.example",
    "ada@localhost",
    "o'neil@example.org",
]


def composes(address: str, sender: str = "Digest <digest@example.org>") -> bool:
    """What `digest run` will do with a subscriber's address, done here for real."""
    try:
        message = compose(
            sender=sender,
            to_name="Ada",
            to_address=address,
            subject="s",
            text="t",
            html="<p>h</p>",
            msg_id="<x@example.org>",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        outgoing = Outgoing.of(message, datetime(2026, 1, 1).date(), "ada")
    except Exception:
        return False
    return outgoing.recipients == (address,)


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_subscriber_address_the_email_layer_would_choke_on_is_refused(
    tmp_path: Path, address: str
) -> None:
    text = FEED + PROFILE + SUBSCRIBER.replace('"ada@example.org"', f'"{address}"')
    error = config_error(write(tmp_path, text))
    assert error.key == "subscribers[0].email"


@pytest.mark.parametrize("address", ACCEPTED_ADDRESSES)
def test_an_accepted_subscriber_address_can_be_composed(tmp_path: Path, address: str) -> None:
    text = FEED + PROFILE + SUBSCRIBER.replace("ada@example.org", address)
    (sub,) = load_config(write(tmp_path, text)).subscribers
    assert sub.email == address
    assert composes(sub.email)


# what a local part and a domain are made of, and what is near them
_NEAR = st.sampled_from(
    list("az09.-_+'!#$%&*/=?^`{|}~") + ['"', "(", ")", "[", "]", "\\", ":", ";", "\u00fc", "@"]
)
_ATOMS = st.lists(st.text(st.sampled_from(list("aZ09!#$%&'*+/=?^_`{|}~-")), min_size=1, max_size=5))
_LABELS = st.lists(st.text(st.sampled_from(list("aZ09-")), min_size=1, max_size=6), min_size=1)
_LOCALS = st.one_of(
    _ATOMS.map(".".join),
    # a dot-atom with one character near it put anywhere: the edge the check must hold
    st.tuples(_ATOMS.map(".".join), _NEAR, st.integers(0, 12)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    ),
    st.text(_NEAR, min_size=1, max_size=12),
)
_DOMAINS = st.one_of(_LABELS.map(".".join), st.text(_NEAR, max_size=12))


@settings(max_examples=600)
@given(_LOCALS, _DOMAINS)
def test_an_address_the_check_accepts_is_one_the_email_layer_composes(
    local: str, domain: str
) -> None:
    """address_problem takes an ASCII dot-atom at a host name without asking the email
    package (whose parse was 2/3 of the check, run for every row of a long list): the
    email package must agree on every address it accepts."""
    address = f"{local}@{domain}"
    if address_problem(address) is None:
        Address(display_name="x", addr_spec=address)  # raises if the parser disagrees
        assert composes(address), address


@pytest.mark.parametrize("sender", ["a@x, b@x", "Digest <\u00e4@example.org>", "Digest"])
def test_a_sender_must_be_one_address(tmp_path: Path, sender: str) -> None:
    error = config_error(write(tmp_path, SMTP.replace("digest@example.org", sender) + FEED))
    assert error.key == "smtp.from"


# --- feed URLs, as the HTTP client takes them; secrets never shown -------------------------

BAD_URLS = {
    "unclosed bracket": "http://[::1",
    "port too big": "https://example.org:70000/feed",
    "carriage return": "https://example.org/feed\\r",
    "nul": "https://example.org/\\u0000feed",
    "space": "https://example.org/a feed",
    "no host": "https:///feed",
    "too long": "https://example.org/" + "a" * 70_000,
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_feed_url_the_http_client_cannot_take_is_refused(tmp_path: Path, url: str) -> None:
    error = config_error(write(tmp_path, f'[[feeds]]\nname = "p"\nurl = "{url}"\n'))
    assert error.key == "feeds[0].url"
    assert len(str(error)) < 400


def test_an_upper_case_scheme_is_a_web_feed(tmp_path: Path) -> None:
    text = '[[feeds]]\nname = "p"\nurl = "HTTPS://Example.org/feed?date={date}"\n'
    (feed,) = load_config(write(tmp_path, text)).feeds
    assert feed.url == "HTTPS://Example.org/feed?date={date}"
    assert feed.source == "https://Example.org/feed?date={date}"
    assert feed.is_http


SECRET_URL = "https://reader:s3cr3tpass@example.org:99999/feed?token=abcdef0123456789abcd"


def test_a_refused_feed_url_is_shown_without_its_secrets(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, f'[[feeds]]\nname = "p"\nurl = "{SECRET_URL}"\n'))
    assert error.key == "feeds[0].url"
    assert "s3cr3tpass" not in str(error) and "abcdef0123456789abcd" not in str(error)
    assert "***" in str(error)


def test_check_config_summary_masks_feed_credentials(tmp_path: Path, run_digest: RunDigest) -> None:
    url = "https://reader:s3cr3tpass@example.org/feed?token=abcdef0123456789abcd&page=2"
    path = write(tmp_path, f'[[feeds]]\nname = "p"\nurl = "{url}"\n')
    result = run_digest("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "s3cr3tpass" not in result.stdout and "abcdef0123456789abcd" not in result.stdout
    assert "https://***@example.org/feed?token=***&page=2" in result.stdout


@pytest.mark.parametrize("value", ["hunter2!secret", "p4ss word", "9LIVES", "Tr0ub4dor&3"])
def test_a_password_given_as_password_env_is_refused_without_echoing_it(
    tmp_path: Path, run_digest: RunDigest, value: str
) -> None:
    text = SMTP + f'username = "d"\npassword_env = "{value}"\n' + FEED
    path = write(tmp_path, text)
    error = config_error(path)
    assert error.key == "smtp.password_env"
    assert value not in str(error)
    result = run_digest("check-config", str(path))
    assert result.returncode == 2
    assert value not in result.stderr + result.stdout


# --- templates: loaded and compiled as render will ------------------------------------------


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("<p>{{ digest.title }}</p>\n<ul>\n{% for p in picks %}\n<li>{{ p }}</li>\n", 4),
        ("line one\n{{ digest.title | no_such_filter }}\n", 2),
        ("{% if %}\n", 1),
    ],
    ids=["unclosed for", "unknown filter", "empty if"],
)
def test_a_broken_user_template_names_its_file_and_line(
    tmp_path: Path, run_digest: RunDigest, source: str, line: int
) -> None:
    templates = tmp_path / "mine"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text(source)
    path = write(tmp_path, '[digest]\ntemplates = "mine"\n' + FEED)
    error = config_error(path)
    assert error.key == "digest.templates"
    assert "digest.txt.j2" in error.reason
    if line:
        assert f"line {line}" in error.reason
    result = run_digest("check-config", str(path))
    assert result.returncode == 2
    (only,) = result.stderr.splitlines()
    assert "digest.txt.j2" in only


def test_a_template_directory_that_compiles_is_accepted(tmp_path: Path) -> None:
    templates = tmp_path / "mine"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text("{{ digest.title }}\n{% for p in [] %}{% endfor %}\n")
    config = load_config(write(tmp_path, '[digest]\ntemplates = "mine"\n' + FEED))
    assert config.settings.templates == templates.resolve()


def test_a_non_utf8_template_is_one_line(tmp_path: Path) -> None:
    templates = tmp_path / "mine"
    templates.mkdir()
    (templates / "extra.j2").write_bytes("caf\u00e9 {{ x }}".encode("latin-1"))
    error = config_error(write(tmp_path, '[digest]\ntemplates = "mine"\n' + FEED))
    assert error.key == "digest.templates"
    assert "extra.j2" in error.reason


# --- through the command: one line on stderr, exit 2 -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[digest]\nmin_score = inf\n" + FEED,
        "[digest]\nkeep_days = 1000000\n" + FEED,
        '[digest]\ncatch_up = "99999999999999999999h"\n' + FEED,
        FEED + "x = " + "[" * 3000 + "]" * 3000 + "\n",
        '[digest]\nstate = "a\\u0000b"\n' + FEED,
        FEED + PROFILE + SUBSCRIBER.replace("ada@example.org", "Ada <ada@example.org>"),
        '[[feeds]]\nname = "p"\nurl = "http://[::1"\n',
    ],
    ids=["inf", "keep_days", "duration", "nested", "nul", "address", "url"],
)
def test_check_config_refuses_each_with_one_line(
    tmp_path: Path, run_digest: RunDigest, text: str
) -> None:
    path = write(tmp_path, text)
    result = run_digest("check-config", str(path))
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.splitlines()
    assert str(path) in line
    assert "Traceback" not in result.stderr
