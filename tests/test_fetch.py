"""Fetching against a real HTTP server on 127.0.0.1: fetch_all on its own, and the feed
health kept across runs (pipeline.collect on a real SQLite file, time driven by `now`)."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import brotli
from conftest import DATA
from servers import HTTPServer

from digest import __version__
from digest.config import load_config
from digest.fetch import (
    BACKOFF_START,
    MAX_WAIT,
    USER_AGENT,
    fetch_all,
    parse_retry_after,
    retry_at,
)
from digest.models import Config, FeedConfig, FeedStatus, FetchResult, FetchSettings
from digest.pipeline import FeedReport, collect, feed_problems
from digest.state import open_store

RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"
GOOD = (DATA / "feeds" / "rss2.xml").read_bytes()
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def feed(url: str, name: str = "f") -> FeedConfig:
    return FeedConfig(name=name, url=url, source=url)


def fetch(
    *feeds: FeedConfig, known: dict[str, FeedStatus] | None = None, **kw: object
) -> list[FetchResult]:
    return asyncio.run(fetch_all(feeds, known or {}, T0, **kw))  # type: ignore[arg-type]


def make_config(tmp_path: Path, feeds: dict[str, str], extra: str = "") -> Config:
    listed = "".join(f"[[feeds]]\nname = '{n}'\nurl = '{u}'\n" for n, u in feeds.items())
    (tmp_path / "digest.toml").write_text(
        f"[digest]\nstate = 'state.sqlite'\n{extra}\n{listed}\n"
        "[profiles.p]\nkeywords = { learning = 1 }\n"
    )
    return load_config(tmp_path / "digest.toml")


def run(config: Config, now: datetime) -> dict[str, FeedReport]:
    with open_store(config.settings.state) as store:
        return {r.name: r for r in asyncio.run(collect(config, store, now))}


def statuses(config: Config) -> dict[str, FeedStatus]:
    with open_store(config.settings.state) as store:
        return store.feed_statuses()


# --------------------------------------------------------------------------- fetch_all


def test_conditional_get_sends_validators_back_and_304_has_no_body(
    http_server: HTTPServer,
) -> None:
    http_server.set("/f.rss", RSS, "application/rss+xml")
    f = feed(http_server.url("/f.rss"))
    (first,) = fetch(f)
    assert first.status == 200 and first.body == RSS and first.etag
    known = {f.url: FeedStatus(f.url, etag=first.etag, last_modified=first.last_modified)}
    (second,) = fetch(f, known=known)
    assert second.not_modified and second.body is None and second.error is None
    sent = http_server.requests_for("/f.rss")[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified
    assert sent["user-agent"] == USER_AGENT and f"digest/{__version__}" in USER_AGENT
    assert [e.strip() for e in sent["accept-encoding"].split(",")] == ["gzip", "deflate", "br"]


def test_each_failure_is_a_result_and_never_stops_the_others(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/ok.rss", RSS)
    http_server.set("/slow.rss", RSS)
    http_server.delay("/slow.rss", 5)
    http_server.set_status("/down.rss", 503)
    for i in range(7):
        http_server.set_status(f"/loop{i}", 302, {"Location": f"/loop{i + 1}"})
    local = tmp_path / "local.rss"
    local.write_bytes(RSS)
    feeds = [
        feed(http_server.url("/slow.rss"), "slow"),
        feed(http_server.url("/missing.rss"), "missing"),
        feed(http_server.url("/down.rss"), "down"),
        feed(http_server.url("/loop0"), "chain"),
        feed("http://127.0.0.1:9/refused.rss", "refused"),
        FeedConfig("nofile", "nofile.rss", str(tmp_path / "nofile.rss")),
        FeedConfig("local", "local.rss", str(local)),
        feed(http_server.url("/ok.rss"), "ok"),
    ]
    got = fetch(*feeds, settings=FetchSettings(timeout=1.0))
    results = {r.feed.name: r for r in got}
    assert list(results) == [f.name for f in feeds], "results keep the config's order"
    assert results["slow"].error == "timed out after 1 s"
    assert results["missing"].error == "HTTP 404 Not Found"
    assert results["down"].status == 503 and "503" in (results["down"].error or "")
    assert results["chain"].error == "more than 5 redirects"
    assert len(http_server.requests_for("/loop5")) == 1 and not http_server.requests_for("/loop6")
    assert (results["refused"].error or "").startswith("cannot fetch")
    assert "no such file" in (results["nofile"].error or "")
    assert results["local"].body == RSS
    assert results["ok"].body == RSS and results["ok"].error is None


def test_a_redirect_loop_stops_as_soon_as_a_url_comes_round_again(
    http_server: HTTPServer,
) -> None:
    http_server.set_status("/a", 301, {"Location": "/b"})
    http_server.set_status("/b", 308, {"Location": http_server.url("/a")})
    (result,) = fetch(feed(http_server.url("/a")))
    assert result.error == f"redirect loop at {http_server.url('/a')}"
    assert result.moved_to is None, "permanent hops that loop are no move to remember"
    assert len(http_server.requests_for("/a")) == 1 and len(http_server.requests_for("/b")) == 1


def test_a_slow_drip_server_cannot_stretch_the_deadline(http_server: HTTPServer) -> None:
    # every byte comes well within the read timeout, but the whole body would take 20 s
    http_server.set("/drip.rss", GOOD[:400])
    http_server.drip("/drip.rss", 0.05)
    start = time.monotonic()
    (result,) = fetch(feed(http_server.url("/drip.rss")), settings=FetchSettings(timeout=1.0))
    elapsed = time.monotonic() - start
    assert result.error == "timed out after 1 s" and result.body is None
    assert elapsed < 3, f"the deadline was stretched to {elapsed:.1f} s"


def test_a_gzip_bomb_is_stopped_at_the_cap_not_inflated(http_server: HTTPServer) -> None:
    inflated = b"<rss>" + b" " * 50_000_000
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 100_000
    http_server.set("/bomb.rss", bomb, "application/rss+xml", headers={"Content-Encoding": "gzip"})
    (result,) = fetch(feed(http_server.url("/bomb.rss")))
    assert result.body is None and result.error == "body larger than 10 MiB, not read"


def test_a_brotli_bomb_is_stopped_at_the_cap_too(http_server: HTTPServer) -> None:
    bomb = brotli.compress(b"<rss>" + b" " * 200_000_000)
    assert len(bomb) < 1_000, "brotli packs this 200 MB into a few hundred bytes"
    http_server.set("/bomb.rss", bomb, headers={"Content-Encoding": "br"})
    (result,) = fetch(feed(http_server.url("/bomb.rss")))
    assert result.body is None and result.error == "body larger than 10 MiB, not read"


def test_each_content_encoding_under_the_cap_arrives_decoded(http_server: HTTPServer) -> None:
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encoded = {
        "gzip": gzip.compress(GOOD),
        "deflate": zlib.compress(GOOD),
        "br": brotli.compress(GOOD),
        "identity": GOOD,
    }
    feeds = []
    for coding, body in encoded.items():
        http_server.set(f"/{coding}.rss", body, headers={"Content-Encoding": coding})
        feeds.append(feed(http_server.url(f"/{coding}.rss"), coding))
    # some servers send raw deflate without the zlib wrapper
    http_server.set(
        "/raw.rss",
        raw_deflate.compress(GOOD) + raw_deflate.flush(),
        headers={"Content-Encoding": "deflate"},
    )
    http_server.set("/bad.rss", b"not gzip at all", headers={"Content-Encoding": "gzip"})
    feeds += [feed(http_server.url("/raw.rss"), "raw"), feed(http_server.url("/bad.rss"), "bad")]
    results = {r.feed.name: r for r in fetch(*feeds)}
    for coding in [*encoded, "raw"]:
        assert results[coding].body == GOOD, coding
    assert results["bad"].body is None and results["bad"].error == "cannot decode the gzip body"


def test_requests_to_one_host_stay_within_its_limit(http_server: HTTPServer) -> None:
    for i in range(6):
        http_server.set(f"/{i}.rss", RSS)
        http_server.delay(f"/{i}.rss", 0.3)
    feeds = [feed(http_server.url(f"/{i}.rss"), str(i)) for i in range(6)]
    start = time.monotonic()
    results = fetch(*feeds, settings=FetchSettings(concurrency=16, per_host=2, timeout=0.5))
    elapsed = time.monotonic() - start
    # two at a time: three rounds of 0.3 s; none timed out, as queueing is not fetching
    assert all(r.body == RSS for r in results)
    assert elapsed >= 0.9
    start = time.monotonic()
    fetch(*feeds, settings=FetchSettings(per_host=6))
    assert time.monotonic() - start < 0.9, "with room for all six they go at once"


def test_one_connection_carries_many_feeds_and_their_304s(http11_server: HTTPServer) -> None:
    for i in range(5):
        http11_server.set(f"/{i}.rss", GOOD)
    http11_server.set_status("/moved.rss", 301, {"Location": "/0.rss"})
    feeds = [feed(http11_server.url(f"/{i}.rss"), str(i)) for i in range(5)]
    feeds.append(feed(http11_server.url("/moved.rss"), "moved"))
    first = fetch(*feeds, settings=FetchSettings(per_host=1))
    known = {r.feed.url: FeedStatus(r.feed.url, etag=r.etag) for r in first}
    again = fetch(*feeds, known=known, settings=FetchSettings(per_host=1))
    assert all(r.body == GOOD for r in first) and all(r.not_modified for r in again)
    ports = {r.client_port for r in http11_server.requests}
    assert len(http11_server.requests) == 14 and len(ports) == 2, "one connection per run"


# ------------------------------------------------------------- politeness rules (pure)


def test_retry_after_is_read_as_seconds_or_a_date_and_capped_at_a_day() -> None:
    assert parse_retry_after("120", T0) == T0 + timedelta(seconds=120)
    later = T0 + timedelta(hours=3)
    assert parse_retry_after(format_datetime(later, usegmt=True), T0) == later
    assert parse_retry_after("999999", T0) == T0 + MAX_WAIT
    assert parse_retry_after("soon", T0) is None
    down = FetchResult(
        feed("http://x/"), status=503, error="HTTP 503", retry_after=T0 + timedelta(days=9)
    )
    assert retry_at(down, 1, T0) == T0 + MAX_WAIT


def test_transient_failures_back_off_exponentially_up_to_a_day() -> None:
    failed = FetchResult(feed("http://x/"), status=500, error="HTTP 500")
    waits = [retry_at(failed, n, T0) for n in range(1, 8)]
    assert waits == [T0 + min(BACKOFF_START * 2**i, MAX_WAIT) for i in range(7)]
    refused = FetchResult(feed("http://x/"), error="cannot fetch: refused")
    assert retry_at(refused, 1, T0) == T0 + BACKOFF_START
    for permanent in (404, 403):
        assert retry_at(FetchResult(feed("http://x/"), status=permanent, error="no"), 3, T0) is None


# --------------------------------------------------------------- across runs (state)


def test_a_304_after_an_etag_costs_no_parse_and_no_new_entries(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/f.rss", GOOD, "application/rss+xml")
    config = make_config(tmp_path, {"f": http_server.url("/f.rss")})
    first = run(config, T0)["f"]
    assert first.status == "ok" and first.new > 0
    second = run(config, T0 + timedelta(hours=1))["f"]
    assert second.status == "not modified" and second.new == 0 and second.error is None
    assert http_server.requests_for("/f.rss")[1].status == 304
    assert statuses(config)[config.feeds[0].url].last_success == T0 + timedelta(hours=1)


def test_a_permanent_redirect_is_recorded_and_used_next_run(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/new.rss", GOOD)
    http_server.set_status("/old.rss", 301, {"Location": "/new.rss"})
    config = make_config(tmp_path, {"f": http_server.url("/old.rss")})
    first = run(config, T0)["f"]
    assert first.status == "ok" and first.moved_to == http_server.url("/new.rss")
    assert statuses(config)[config.feeds[0].url].moved_to == http_server.url("/new.rss")
    second = run(config, T0 + timedelta(hours=1))["f"]
    assert second.status == "not modified"
    assert len(http_server.requests_for("/old.rss")) == 1, "the old URL is not asked again"
    assert http_server.requests_for("/new.rss")[1].headers["if-none-match"]


def test_a_temporary_redirect_is_followed_but_not_recorded(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/new.rss", GOOD)
    http_server.set_status("/old.rss", 301, {"Location": "/tmp.rss"})
    http_server.set_status("/tmp.rss", 307, {"Location": "/new.rss"})
    config = make_config(tmp_path, {"f": http_server.url("/old.rss")})
    first = run(config, T0)["f"]
    # only the permanent leading hop is remembered
    assert first.status == "ok" and first.moved_to == http_server.url("/tmp.rss")
    run(config, T0 + timedelta(hours=1))
    assert len(http_server.requests_for("/old.rss")) == 1
    assert len(http_server.requests_for("/tmp.rss")) == 2


def test_410_gone_stops_fetching_until_the_config_url_changes(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set_status("/gone.rss", 410)
    http_server.set("/ok.rss", GOOD)
    config = make_config(
        tmp_path, {"gone": http_server.url("/gone.rss"), "ok": http_server.url("/ok.rss")}
    )
    first = run(config, T0)
    assert first["gone"].status == "gone" and first["ok"].status == "ok"
    later = T0 + timedelta(days=3)
    assert run(config, later)["gone"].status == "gone"
    assert len(http_server.requests_for("/gone.rss")) == 1
    problems = feed_problems(config, statuses(config), later)
    assert problems == ["gone: gone (HTTP 410 Gone) since 2026-11-23; no longer fetched"]
    http_server.set("/gone.rss", GOOD)
    http_server.set_status("/gone.rss", None)
    moved = make_config(
        tmp_path, {"gone": http_server.url("/gone.rss?v=2"), "ok": http_server.url("/ok.rss")}
    )
    assert run(moved, later)["gone"].status == "ok"


def test_429_with_retry_after_waits_across_runs(http_server: HTTPServer, tmp_path: Path) -> None:
    http_server.set("/busy.rss", GOOD)
    http_server.set_status("/busy.rss", 429, {"Retry-After": "7200"})
    config = make_config(tmp_path, {"busy": http_server.url("/busy.rss")})
    first = run(config, T0)["busy"]
    assert first.status == "error" and first.until == T0 + timedelta(hours=2)
    inside = run(config, T0 + timedelta(hours=1))["busy"]
    assert inside.status == "skipped" and inside.until == T0 + timedelta(hours=2)
    assert len(http_server.requests_for("/busy.rss")) == 1, "nothing is fetched inside the window"
    http_server.set_status("/busy.rss", None)
    after = run(config, T0 + timedelta(hours=2))["busy"]
    assert after.status == "ok" and after.new > 0
    status = statuses(config)[config.feeds[0].url]
    assert status.failures == 0 and status.next_fetch is None


def test_5xx_backs_off_across_runs_and_is_reported(http_server: HTTPServer, tmp_path: Path) -> None:
    http_server.set_status("/down.rss", 500)
    config = make_config(tmp_path, {"down": http_server.url("/down.rss")})
    hour = timedelta(hours=1)
    assert run(config, T0)["down"].until == T0 + hour
    assert run(config, T0 + hour / 2)["down"].status == "skipped"
    second = run(config, T0 + hour)["down"]
    assert second.status == "error" and second.until == T0 + 3 * hour
    assert run(config, T0 + 2 * hour)["down"].status == "skipped"
    assert run(config, T0 + 3 * hour)["down"].until == T0 + 7 * hour
    assert len(http_server.requests_for("/down.rss")) == 3
    (problem,) = feed_problems(config, statuses(config), T0 + 4 * hour)
    assert (
        problem
        == "down: HTTP 500 Internal Server Error (never worked; next try 2026-11-23 13:00 UTC)"
    )


def test_a_date_feed_asks_for_the_local_days_page_under_one_state_key(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    # 06:00 UTC on the 23rd is still the 22nd in Pago Pago (UTC-11)
    http_server.set("/papers/2026-11-22.rss", GOOD)
    http_server.set("/papers/2026-11-23.rss", GOOD)
    url = http_server.url("/papers/{date}.rss")
    config = make_config(tmp_path, {"daily": url}, "timezone = 'Pacific/Pago_Pago'")
    first = run(config, T0)["daily"]
    assert first.status == "ok", first.error
    assert run(config, T0 + timedelta(days=1))["daily"].status == "ok"
    assert "if-none-match" not in http_server.requests_for("/papers/2026-11-23.rss")[0].headers
    assert list(statuses(config)) == [url]


def test_broken_feeds_are_reported_while_the_good_ones_land(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    latin1 = (
        b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        b"<item><title>caf\xe9 na\xefve</title><guid>urn:x:1</guid></item></channel></rss>"
    )
    http_server.set("/good.rss", GOOD)
    http_server.set("/malformed.xml", (DATA / "feeds" / "malformed.xml").read_bytes())
    http_server.set("/latin1.rss", latin1)
    http_server.set("/empty.rss", b"")
    http_server.set("/atom.xml", (DATA / "feeds" / "atom.xml").read_bytes())
    names = ["good", "malformed", "latin1", "empty", "atom"]
    paths = ["/good.rss", "/malformed.xml", "/latin1.rss", "/empty.rss", "/atom.xml"]
    config = make_config(
        tmp_path, {n: http_server.url(p) for n, p in zip(names, paths, strict=True)}
    )
    reports = run(config, T0)
    assert reports["good"].new > 0 and reports["atom"].new > 0
    for broken in ("malformed", "latin1", "empty"):
        assert reports[broken].error or reports[broken].warning, broken
    assert reports["malformed"].status == "error" and reports["empty"].status == "error"
    with open_store(config.settings.state) as store:
        assert (
            store.count_entries()
            == reports["good"].new + reports["atom"].new + reports["latin1"].new
        )
