"""fetch_all against a real HTTP server on 127.0.0.1 and real files."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

from servers import HTTPServer

from digest.fetch import USER_AGENT, fetch_all
from digest.models import FeedConfig, FeedStatus

RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def feed(url: str, name: str = "f") -> FeedConfig:
    return FeedConfig(name=name, url=url, source=url)


def test_conditional_get_sends_validators_back_and_304_has_no_body(
    http_server: HTTPServer,
) -> None:
    http_server.set("/f.rss", RSS, "application/rss+xml")
    f = feed(http_server.url("/f.rss"))
    (first,) = asyncio.run(fetch_all([f], {}))
    assert first.status == 200 and first.body == RSS and first.etag
    known = {f.url: FeedStatus(f.url, etag=first.etag, last_modified=first.last_modified)}
    (second,) = asyncio.run(fetch_all([f], known))
    assert second.not_modified and second.body is None and second.error is None
    sent = http_server.requests_for("/f.rss")[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified
    assert sent["user-agent"] == USER_AGENT


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
        feed(http_server.url("/loop0"), "loop"),
        feed("http://127.0.0.1:9/refused.rss", "refused"),
        FeedConfig("nofile", "nofile.rss", str(tmp_path / "nofile.rss")),
        FeedConfig("local", "local.rss", str(local)),
        feed(http_server.url("/ok.rss"), "ok"),
    ]
    results = {r.feed.name: r for r in asyncio.run(fetch_all(feeds, {}, timeout=1.0))}
    assert list(results) == [f.name for f in feeds], "results keep the config's order"
    assert results["slow"].error == "timed out after 1 s"
    assert results["missing"].error == "HTTP 404 Not Found"
    assert results["down"].status == 503 and "503" in (results["down"].error or "")
    assert results["loop"].error == "more than 5 redirects"
    assert (results["refused"].error or "").startswith("cannot fetch")
    assert "no such file" in (results["nofile"].error or "")
    assert results["local"].body == RSS
    assert results["ok"].body == RSS and results["ok"].error is None


def test_a_gzip_bomb_is_stopped_at_the_cap_not_inflated(http_server: HTTPServer) -> None:
    inflated = b"<rss>" + b" " * 50_000_000
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 100_000
    http_server.set("/bomb.rss", bomb, "application/rss+xml", headers={"Content-Encoding": "gzip"})
    (result,) = asyncio.run(fetch_all([feed(http_server.url("/bomb.rss"))], {}))
    assert result.body is None and result.error == "body larger than 10 MiB, not read"


def test_a_compressed_feed_under_the_cap_arrives_inflated(http_server: HTTPServer) -> None:
    http_server.set("/z.rss", gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    (result,) = asyncio.run(fetch_all([feed(http_server.url("/z.rss"))], {}))
    assert result.body == RSS
