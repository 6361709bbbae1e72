"""A feed URL's credentials and tokens never reach the state file in clear: its key there is
the URL redacted with a digest of it, and a state an earlier digest keyed by the raw URL is
rekeyed (the secret overwritten) at the next collect, its validators kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from servers import HTTPServer

from digest.config import load_config
from digest.pipeline import collect_only
from digest.state import open_store
from digest.urls import state_key

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RSS = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
    b"<item><title>A paper</title><link>https://p.example/1</link><guid>urn:1</guid></item>"
    b"</channel></rss>"
)
TOKEN = "s3cr3tT0ken9f8e7d"


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(
        f'[digest]\nstate = "state.sqlite"\n[[feeds]]\nname = "private"\nurl = "{url}"\n'
        '[profiles.p]\nkeywords = { "paper" = 1 }\n'
    )
    return path


def state_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))


def test_a_token_in_a_feed_url_is_never_stored_in_clear(
    tmp_path: Path, http_server: HTTPServer
) -> None:
    http_server.set("/feed.xml", RSS, "application/rss+xml")
    url = http_server.url("/feed.xml") + f"?token={TOKEN}"
    config = load_config(write_config(tmp_path, url))
    (report,) = collect_only(config, T0)
    assert report.status == "ok" and report.new == 1
    # fetched again: the validators stored under the secret-free key are sent back
    (again,) = collect_only(config, T0 + timedelta(hours=2))
    assert again.status == "not modified"
    assert TOKEN.encode() not in state_bytes(tmp_path)
    with open_store(config.settings.state, "read") as store:
        assert set(store.feed_statuses()) == {state_key(url)}
    assert "***" in state_key(url) and TOKEN not in state_key(url)


def test_a_state_keyed_by_the_raw_url_is_rekeyed_and_keeps_its_validators(
    tmp_path: Path, http_server: HTTPServer
) -> None:
    http_server.set("/feed.xml", RSS, "application/rss+xml")
    url = http_server.url("/feed.xml") + f"?token={TOKEN}"
    config = load_config(write_config(tmp_path, url))
    (first,) = collect_only(config, T0)
    with open_store(config.settings.state) as store:  # as an earlier digest left it
        status = store.feed_statuses()[state_key(url)]
        store.rekey_feed(state_key(url), url, fetched_url=url, moved_to=None, last_error=None)
    assert TOKEN.encode() in state_bytes(tmp_path)
    (again,) = collect_only(config, T0 + timedelta(hours=2))
    assert again.status == "not modified", "the validators moved with the row"
    with open_store(config.settings.state, "read") as store:
        statuses = store.feed_statuses()
    assert set(statuses) == {state_key(url)}
    assert statuses[state_key(url)].etag == status.etag
    assert TOKEN.encode() not in state_bytes(tmp_path)
    assert first.status == "ok"


def test_two_feeds_that_differ_only_in_their_token_stay_two_feeds() -> None:
    a = state_key("https://feeds.example/f?token=aaaaaaaaaaaaaaaa")
    b = state_key("https://feeds.example/f?token=bbbbbbbbbbbbbbbb")
    assert a != b and "aaaa" not in a and "bbbb" not in b
    assert state_key("https://feeds.example/f?page=2") == "https://feeds.example/f?page=2"
    assert "pass" not in state_key("https://user:pass@feeds.example/f")
