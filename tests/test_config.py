"""load_config: a valid file becomes a Config; every problem is one line naming file and key."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest
from conftest import RunDigest

from digest.config import load_config
from digest.errors import ConfigError
from digest.rank.terms import compile_term, term_problem

FEED = '[[feeds]]\nname = "papers"\nurl = "papers.rss"\n'
PROFILE = "[profiles.rl]\nkeywords = { RLHF = 2 }\n"
SUBSCRIBER = '[[subscribers]]\nname = "ada"\nemail = "ada@example.org"\nprofile = "rl"\n'
SMTP = '[smtp]\nhost = "smtp.example.org"\nfrom = "digest@example.org"\n'

FULL = """
[digest]
title = "Morning papers"
state = "state/digest.sqlite"
output = "out"
timezone = "Europe/Berlin"
max_entries = 7
min_score = 1.5

[smtp]
host = "smtp.example.org"
port = 2525
security = "tls"
username = "digest@example.org"
password_env = "DIGEST_SMTP_PASSWORD"
from = "Morning papers <digest@example.org>"
ca_file = "ca.pem"
timeout = 12.5

[[feeds]]
name = "papers"
url = "feeds/papers.rss"
weight = 1.5

[[feeds]]
name = "blog"
url = "https://blog.example.org/feed.xml"

[profiles.rl]
keywords = { "reinforcement learning" = 3, RLHF = 2.5 }
exclude = ["survey", "position paper"]
max_entries = 3
min_score = 0.5

[profiles.agents]
keywords = { agent = 1 }

[[subscribers]]
name = "ada"
email = "ada@example.org"
profile = "rl"
send_at = "06:30"
timezone = "Europe/London"

[[subscribers]]
name = "grace"
email = "grace@example.org"
profile = "agents"

[[markdown]]
profile = "agents"
path = "wiki/{date}.md"
index = "wiki/index.md"
"""


def write(directory: Path, text: str, name: str = "digest.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_full(directory: Path) -> Path:
    """FULL, with the CA file it names (ca_file must exist)."""
    path = write(directory, FULL)
    (directory / "ca.pem").write_text("")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert str(path) in message
    return info.value


# --- valid files ---------------------------------------------------------------------------


def test_full_config_resolves_paths_against_its_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = (tmp_path / "conf").resolve()
    path = write_full(conf)
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on where digest runs

    config = load_config(path)

    assert config.settings.title == "Morning papers"
    assert config.settings.state == conf / "state" / "digest.sqlite"
    assert config.settings.output == conf / "out"
    assert config.settings.timezone == "Europe/Berlin"
    assert config.settings.max_entries == 7
    assert config.settings.min_score == 1.5
    smtp = config.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.example.org", 2525, "tls")
    assert (smtp.username, smtp.password_env) == ("digest@example.org", "DIGEST_SMTP_PASSWORD")
    assert smtp.sender == "Morning papers <digest@example.org>"
    assert smtp.ca_file == conf / "ca.pem"
    assert smtp.timeout == 12.5
    papers, blog = config.feeds
    assert (papers.name, papers.url, papers.weight) == ("papers", "feeds/papers.rss", 1.5)
    assert papers.source == str(conf / "feeds" / "papers.rss")
    assert (blog.source, blog.weight, blog.is_http) == (blog.url, 1.0, True)
    rl = config.profiles["rl"]
    assert rl.keywords == (("reinforcement learning", 3.0), ("RLHF", 2.5))
    assert rl.exclude == ("survey", "position paper")
    assert (rl.max_entries, rl.min_score) == (3, 0.5)
    ada, grace = config.subscribers
    assert (ada.email, ada.profile, ada.send_at, ada.timezone) == (
        "ada@example.org",
        "rl",
        time(6, 30),
        "Europe/London",
    )
    (page,) = config.markdown
    assert page.path == str(conf / "wiki" / "{date}.md")
    assert page.index == conf / "wiki" / "index.md"


def test_omitted_keys_inherit_from_digest_table(tmp_path: Path) -> None:
    config = load_config(write_full(tmp_path))
    grace = config.subscribers[1]
    assert grace.timezone == "Europe/Berlin"
    assert grace.send_at == time(7, 0)
    agents = config.profiles["agents"]
    assert (agents.max_entries, agents.min_score) == (7, 1.5)
    assert agents.exclude == ()


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FEED))
    s = config.settings
    assert (s.title, s.timezone, s.max_entries, s.min_score) == ("Digest", "UTC", 20, 1.0)
    assert s.state == tmp_path.resolve() / "digest.sqlite"
    assert s.output == tmp_path.resolve() / "out"
    assert config.smtp is None
    assert (config.profiles, config.subscribers, config.markdown) == ({}, (), ())
    assert (config.fetch.concurrency, config.fetch.per_host, config.fetch.timeout) == (16, 4, 30)


def test_fetch_table_and_date_feed_urls_are_read(tmp_path: Path) -> None:
    text = (
        "[fetch]\nconcurrency = 32\nper_host = 2\ntimeout = 12.5\n"
        '[[feeds]]\nname = "daily"\nurl = "https://hf.example/api/daily_papers?date={date}"\n'
    )
    config = load_config(write(tmp_path, text))
    assert (config.fetch.concurrency, config.fetch.per_host, config.fetch.timeout) == (32, 2, 12.5)
    assert config.feeds[0].source == "https://hf.example/api/daily_papers?date={date}"


@pytest.mark.parametrize(
    ("security", "port"), [("starttls", 587), ("tls", 465)], ids=["starttls", "tls"]
)
def test_smtp_port_defaults_from_security(tmp_path: Path, security: str, port: int) -> None:
    config = load_config(write(tmp_path, f'{SMTP}security = "{security}"\n{FEED}'))
    assert config.smtp is not None
    assert config.smtp.port == port


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_plaintext_smtp_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    text = f'[smtp]\nhost = "{host}"\nsecurity = "none"\nfrom = "d@example.org"\n{FEED}'
    config = load_config(write(tmp_path, text))
    assert config.smtp is not None
    assert (config.smtp.security, config.smtp.port) == ("none", 25)


# --- invalid files: one line, the file and the key -----------------------------------------

INVALID = {
    "unknown top-level key": ('titel = "x"\n' + FEED, "titel", "unknown key"),
    "unknown key in [digest]": ('[digest]\ntimezon = "UTC"\n' + FEED, "digest.timezon", "unknown"),
    "unknown key in a feed": (
        '[[feeds]]\nname = "papers"\nurll = "papers.rss"\n',
        "feeds[0].urll",
        "unknown key",
    ),
    "missing feed url": ('[[feeds]]\nname = "papers"\n', "feeds[0].url", "missing"),
    "subscriber profile not defined": (
        FEED + PROFILE + SUBSCRIBER.replace('"rl"', '"vision"'),
        "subscribers[0].profile",
        "vision",
    ),
    "bad digest timezone": (
        '[digest]\ntimezone = "Mars/Olympus_Mons"\n' + FEED,
        "digest.timezone",
        "Mars/Olympus_Mons",
    ),
    "bad subscriber timezone": (
        FEED + PROFILE + SUBSCRIBER + 'timezone = "Europe/Berln"\n',
        "subscribers[0].timezone",
        "Europe/Berln",
    ),
    "bad subscriber email": (
        FEED + PROFILE + SUBSCRIBER.replace("ada@example.org", "ada at example.org"),
        "subscribers[0].email",
        "ada at example.org",
    ),
    "bad sender address": (
        SMTP.replace("digest@example.org", "digest.example.org") + FEED,
        "smtp.from",
        "digest.example.org",
    ),
    "max_entries not a number": (
        '[digest]\nmax_entries = "ten"\n' + FEED,
        "digest.max_entries",
        "integer",
    ),
    "feed weight a boolean": (FEED + "weight = true\n", "feeds[0].weight", "boolean"),
    "unknown feed type": (
        FEED + 'type = "rdf"\n',
        "feeds[0].type",
        "unknown feed type 'rdf' (one of: rss, atom, json, daily-papers, arxiv)",
    ),
    "keep_days too short": ("[digest]\nkeep_days = 3\n" + FEED, "digest.keep_days", "at least 7"),
    "keyword weight a boolean": (
        FEED + "[profiles.rl]\nkeywords = { RLHF = true }\n",
        "profiles.rl.keywords.RLHF",
        "boolean",
    ),
    "password in the file": (
        SMTP + 'password = "hunter2"\n' + FEED,
        "smtp.password",
        "password_env",
    ),
    "plaintext smtp to a remote host": (
        SMTP + 'security = "none"\n' + FEED,
        "smtp.security",
        "smtp.example.org",
    ),
    "unknown key in [fetch]": ("[fetch]\nworkers = 4\n" + FEED, "fetch.workers", "per_host"),
    "per_host zero": ("[fetch]\nper_host = 0\n" + FEED, "fetch.per_host", "between 1 and 64"),
    "fetch timeout negative": ("[fetch]\ntimeout = -1\n" + FEED, "fetch.timeout", "more than 0"),
    "feed url with another placeholder": (
        '[[feeds]]\nname = "daily"\nurl = "https://x.example/{day}.json"\n',
        "feeds[0].url",
        "{date} is the only placeholder",
    ),
    "markdown path without date": (
        FEED + PROFILE + '[[markdown]]\nprofile = "rl"\npath = "wiki/today.md"\n',
        "markdown[0].path",
        "{date}",
    ),
}


@pytest.mark.parametrize(("text", "key", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    error = config_error(write(tmp_path, text))
    assert error.key == key
    assert f": {key}: " in str(error)
    assert reason in error.reason


def test_feed_type_and_keep_days_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[digest]\nkeep_days = 365\n" + FEED + 'type = "arxiv"\n'))
    assert (config.feeds[0].type, config.settings.keep_days) == ("arxiv", 365)
    plain = load_config(write(tmp_path, FEED))
    assert (plain.feeds[0].type, plain.settings.keep_days) == (None, 180)


def test_password_in_file_is_never_echoed(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, SMTP + 'password = "hunter2"\n' + FEED))
    assert "hunter2" not in str(error)


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, FEED + "weight = \n"))
    assert "TOML" in str(error)
    assert "line 4" in str(error)


def test_config_not_in_utf8_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_bytes('[digest]\ntitle = "Müller"\n'.encode("latin-1") + FEED.encode())
    config_error(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    error = config_error(tmp_path / "nowhere.toml")
    assert "no such file" in str(error)


# --- through the real command --------------------------------------------------------------

CLI_INVALID = ["unknown key in a feed", "bad subscriber timezone", "password in the file"]


@pytest.mark.parametrize("case", CLI_INVALID)
def test_check_config_prints_one_line_and_exits_2(
    tmp_path: Path, run_digest: RunDigest, case: str
) -> None:
    text, key, _ = INVALID[case]
    path = write(tmp_path, text)
    result = run_digest("check-config", str(path))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert str(path) in line
    assert key in line
    assert result.stdout == ""


def test_check_config_accepts_a_valid_file(tmp_path: Path, run_digest: RunDigest) -> None:
    path = write_full(tmp_path)
    result = run_digest("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout
    assert "SMTP smtp.example.org:2525 (tls)" in result.stdout


# --- the profile language ------------------------------------------------------------------


def test_a_profile_reads_every_key_of_the_profile_language(tmp_path: Path) -> None:
    text = (
        FEED
        + """
[profiles.rl]
keywords = { "reward model" = 2, "transformer*" = 1, DPO = 3 }
exclude = ["survey"]
require = ["reward model", "DPO"]
fields = { title = 3, authors = 0.5 }
authors = ["Yann LeCun", "Ada  Lovelace"]
organisations = { NVIDIA = 2.5 }
popularity = 1
freshness = 0.5
max_per_feed = 3
"""
    )
    prof = load_config(write(tmp_path, text)).profiles["rl"]
    assert prof.require == ("reward model", "DPO")
    assert dict(prof.fields) == {
        "title": 3.0,
        "summary": 1.0,
        "authors": 0.5,
        "organisation": 0.0,
        "categories": 1.0,
    }
    assert prof.authors == (("Yann LeCun", 4.0), ("Ada Lovelace", 4.0))
    assert prof.organisations == (("NVIDIA", 2.5),)
    assert (prof.popularity, prof.freshness, prof.max_per_feed) == (1.0, 0.5, 3)


def test_an_old_profile_gets_the_defaults_of_the_new_keys(tmp_path: Path) -> None:
    prof = load_config(write(tmp_path, FEED + PROFILE)).profiles["rl"]
    assert prof.require == () and prof.authors == () and prof.organisations == ()
    assert dict(prof.fields)["title"] == 2 and dict(prof.fields)["summary"] == 1
    assert (prof.popularity, prof.freshness, prof.max_per_feed) == (0.0, 0.0, None)
    assert (prof.sections, prof.tags) == ("", ())


def test_sections_per_feed_and_per_tag(tmp_path: Path) -> None:
    text = FEED + (
        '[profiles.rl]\nkeywords = { RL = 1, RLHF = 2, "reward model" = 1, agent = 1 }\n'
        'organisations = ["NVIDIA"]\nsections = "tag"\n'
        '[profiles.rl.tags]\nalignment = ["RLHF", " reward model"]\nlabs = ["NVIDIA", "RL"]\n'
        '[profiles.feeds]\nkeywords = { RL = 1 }\nsections = "feed"\n'
    )
    profiles = load_config(write(tmp_path, text)).profiles
    assert profiles["rl"].sections == "tag"
    assert profiles["rl"].tags == (
        ("alignment", ("RLHF", "reward model")),
        ("labs", ("NVIDIA", "RL")),
    )
    assert (profiles["feeds"].sections, profiles["feeds"].tags) == ("feed", ())


def test_check_config_names_the_sections(tmp_path: Path, run_digest: RunDigest) -> None:
    text = FEED + (
        '[profiles.rl]\nkeywords = { RL = 1, RLHF = 2 }\nsections = "tag"\n'
        '[profiles.rl.tags]\nalignment = ["RLHF"]\nplanning = ["RL"]\n'
        '[profiles.feeds]\nkeywords = { RL = 1 }\nsections = "feed"\n'
        "[profiles.plain]\nkeywords = { RL = 1 }\n"
    )
    result = run_digest("check-config", str(write(tmp_path, text)))
    assert result.returncode == 0, result.stderr
    assert (
        "rl: RL, RLHF; max 20, min score 1; sections by tag: alignment, planning" in result.stdout
    )
    assert "feeds: RL; max 20, min score 1; sections by feed" in result.stdout
    assert "plain: RL; max 20, min score 1\n" in result.stdout


PROFILE_ERRORS = {
    "star inside a term": ('keywords = { "trans*former" = 1 }', "keywords", "'*' may only end"),
    "short prefix": ('keywords = { "tr*" = 1 }', "keywords", "at least 3 characters"),
    "no letters": ('keywords = { "--" = 1 }', "keywords", "no letters or digits"),
    "unknown field": (
        "keywords = { RL = 1 }\nfields = { abstract = 1 }",
        "fields.abstract",
        "unknown",
    ),
    "negative field": (
        "keywords = { RL = 1 }\nfields = { title = -1 }",
        "fields.title",
        "negative",
    ),
    "no field counts": (
        "keywords = { RL = 1 }\nfields = { title = 0, summary = 0, categories = 0 }",
        "fields",
        "at least one field",
    ),
    "author not a string": ("keywords = { RL = 1 }\nauthors = [3]", "authors[0]", "a name"),
    "author points": ("keywords = { RL = 1 }\nauthors = { Ada = 0 }", "authors.Ada", "positive"),
    "require empty": ('keywords = { RL = 1 }\nrequire = [" "]', "require[0]", "non-empty"),
    "max_per_feed zero": ("keywords = { RL = 1 }\nmax_per_feed = 0", "max_per_feed", "at least 1"),
    "negative popularity": ("keywords = { RL = 1 }\npopularity = -1", "popularity", "negative"),
    "unknown sections": (
        'keywords = { RL = 1 }\nsections = "topic"',
        "sections",
        'must be "feed" or "tag", not \'topic\'',
    ),
    "sections not a string": ("keywords = { RL = 1 }\nsections = true", "sections", "a string"),
    "tag sections without tags": ('keywords = { RL = 1 }\nsections = "tag"', "tags", "missing"),
    "tags without tag sections": (
        'keywords = { RL = 1 }\nsections = "feed"\ntags = { rl = ["RL"] }',
        "tags",
        'only used with sections = "tag"',
    ),
    "tag term not a keyword": (
        'keywords = { RL = 1 }\nsections = "tag"\ntags = { rl = ["RL", "DPO"] }',
        "tags.rl[1]",
        "'DPO' is not one of the profile's keywords",
    ),
    "tag not a list": (
        'keywords = { RL = 1 }\nsections = "tag"\ntags = { rl = "RL" }',
        "tags.rl",
        "non-empty list",
    ),
}


@pytest.mark.parametrize(
    ("body", "key", "reason"), PROFILE_ERRORS.values(), ids=PROFILE_ERRORS.keys()
)
def test_a_bad_profile_key_is_one_line_naming_it(
    tmp_path: Path, body: str, key: str, reason: str
) -> None:
    error = config_error(write(tmp_path, FEED + "[profiles.rl]\n" + body + "\n"))
    assert error.key is not None and error.key.startswith(f"profiles.rl.{key}")
    assert reason in error.reason


TERMS = ["RLHF", "trans*former", "tr*", "tra*", "--", "reward model*", "a*", "x", " * ", "µ-law"]


@pytest.mark.parametrize("term", TERMS)
def test_the_config_refuses_a_term_exactly_as_the_term_language_does(
    tmp_path: Path, term: str
) -> None:
    """One place for the term language: rank/terms.py's rules, not a copy of them here."""
    text = FEED + "[profiles.rl]\nkeywords = { " + json.dumps(term) + " = 1 }\n"
    problem = term_problem(term)
    if problem is None:
        (profile,) = load_config(write(tmp_path, text)).profiles.values()
        assert profile.keywords == ((term.strip(), 1.0),)
        assert compile_term(term.strip())[0].strip()  # a key to look for
    else:
        assert config_error(write(tmp_path, text)).reason == problem
