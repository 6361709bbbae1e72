"""`[[webhooks]]`: parsed into Config.webhooks; every problem one line; secrets never shown."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from conftest import RunDigest
from test_config import FEED, PROFILE, SUBSCRIBER, config_error, write

from digest.config import load_config

SECRET = "T000/B000/XXXXsecretXXXX"
HOOK = f'[[webhooks]]\nname = "team-chat"\nurl = "https://hooks.example.org/{SECRET}"\n'
HOOK += 'profile = "rl"\nformat = "slack"\n'


def test_a_webhook_is_read_with_its_defaults(tmp_path: Path) -> None:
    text = '[digest]\ntimezone = "Europe/Berlin"\n' + FEED + PROFILE + HOOK
    (hook,) = load_config(write(tmp_path, text)).webhooks
    assert (hook.name, hook.profile, hook.format) == ("team-chat", "rl", "slack")
    assert hook.url == f"https://hooks.example.org/{SECRET}"
    assert (hook.send_at, hook.timezone) == (time(7, 0), "Europe/Berlin")


def test_a_webhook_reads_every_key(tmp_path: Path) -> None:
    text = FEED + PROFILE + HOOK.replace('"slack"', '"json"')
    text += 'send_at = "06:45:30"\ntimezone = "Asia/Tokyo"\n'
    text += '[[webhooks]]\nname = "local"\nurl = "http://127.0.0.1:8080/hook"\n'
    text += 'profile = "rl"\nformat = "json"\n'
    first, local = load_config(write(tmp_path, text)).webhooks
    assert (first.format, first.send_at, first.timezone) == ("json", time(6, 45, 30), "Asia/Tokyo")
    assert local.url == "http://127.0.0.1:8080/hook"


def test_no_webhooks_is_an_empty_tuple(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, FEED)).webhooks == ()


MARKDOWN = '[[markdown]]\nprofile = "rl"\npath = "wiki/{date}.md"\n'
INVALID = {
    "missing url": (
        HOOK.replace(f'url = "https://hooks.example.org/{SECRET}"\n', ""),
        "url",
        "missing",
    ),
    "plain http to a remote host": (HOOK.replace("https://", "http://"), "url", "https"),
    "ftp": (HOOK.replace("https://", "ftp://"), "url", "http"),
    "malformed url": (HOOK.replace("hooks.example.org", "[::1"), "url", "IPv6"),
    "unknown profile": (HOOK.replace('profile = "rl"', 'profile = "cv"'), "profile", "'cv'"),
    "unknown format": (
        HOOK.replace('"slack"', '"teams"'),
        "format",
        "must be one of slack, json, not 'teams'",
    ),
    "missing format": (HOOK.replace('format = "slack"\n', ""), "format", "missing"),
    "bad send_at": (HOOK + 'send_at = "7am"\n', "send_at", "HH:MM"),
    "bad timezone": (HOOK + 'timezone = "Mars/Base"\n', "timezone", "Mars/Base"),
    "unknown key": (HOOK + "retries = 3\n", "retries", "unknown key"),
    "twice the same name": (HOOK + HOOK.replace(f"/{SECRET}", "/other"), "name", "duplicate"),
}


@pytest.mark.parametrize(("hooks", "key", "reason"), INVALID.values(), ids=INVALID.keys())
def test_a_bad_webhook_is_one_line_naming_the_key(
    tmp_path: Path, hooks: str, key: str, reason: str
) -> None:
    error = config_error(write(tmp_path, FEED + PROFILE + hooks))
    assert error.key is not None
    assert error.key.startswith("webhooks[") and error.key.endswith(f".{key}"), error.key
    assert reason in error.reason, error.reason
    assert "secret" not in str(error)


def test_a_webhook_may_not_take_a_subscribers_name(tmp_path: Path) -> None:
    text = FEED + PROFILE + SUBSCRIBER + HOOK.replace('"team-chat"', '"ada"')
    error = config_error(write(tmp_path, text))
    assert error.key == "webhooks[0].name"
    assert "subscriber" in error.reason


def test_two_markdown_outputs_may_not_share_a_page(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, FEED + PROFILE + MARKDOWN + MARKDOWN))
    assert error.key == "markdown[1].path"


def test_a_refused_webhook_url_never_shows_its_secret_path(tmp_path: Path) -> None:
    text = FEED + PROFILE + HOOK.replace("https://hooks.example.org", "http://hooks.example.org")
    error = config_error(write(tmp_path, text))
    assert SECRET not in str(error) and "XXXX" not in str(error)
    assert "http://hooks.example.org/T000/…" in str(error)


def test_check_config_lists_webhooks_without_their_secrets(
    tmp_path: Path, run_digest: RunDigest
) -> None:
    path = write(tmp_path, FEED + PROFILE + HOOK)
    result = run_digest("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        "webhook team-chat: https://hooks.example.org/T000/… (slack, profile rl, at 07:00 UTC)"
        in result.stdout
    )
    assert "XXXX" not in result.stdout
