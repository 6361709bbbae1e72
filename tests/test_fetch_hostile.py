"""A feed server (or a config) that answers in every way it should not: each case costs that
one feed, reported in one line, and the feeds beside it are fetched and stored.

Every case runs against a real server on 127.0.0.1: tests/servers.py's HTTPServer where an
ordinary server can say it, and RawServer below where the bytes themselves are the hostility
(a NUL in a header, a status line that never ends)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DATA, RunDigest
from servers import HTTPServer

from digest.config import load_config
from digest.fetch import MAX_WAIT, fetch_all, parse_retry_after, read_retry_after
from digest.models import Config, FeedConfig, FeedStatus, FetchResult, FetchSettings
from digest.pipeline import FeedReport, collect
from digest.state import open_store

GOOD = (DATA / "feeds" / "rss2.xml").read_bytes()
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
DAY = T0 + MAX_WAIT


def feed(url: str, name: str = "f") -> FeedConfig:
    return FeedConfig(name=name, url=url, source=url)


def fetch(*feeds: FeedConfig, known: dict[str, FeedStatus] | None = None) -> list[FetchResult]:
    settings = FetchSettings(timeout=2.0)
    return asyncio.run(fetch_all(feeds, known or {}, T0, settings=settings))


def one_line(error: str | None) -> str:
    assert error, "the feed must fail with a reason"
    assert "\n" not in error and "\r" not in error and "\x00" not in error, repr(error)
    assert len(error) < 400, f"{len(error)} characters"
    return error


def make_config(tmp_path: Path, feeds: dict[str, str]) -> Config:
    listed = "".join(f"[[feeds]]\nname = '{n}'\nurl = '{u}'\n" for n, u in feeds.items())
    (tmp_path / "digest.toml").write_text(
        f"[digest]\nstate = 'state.sqlite'\n{listed}\n[profiles.p]\nkeywords = {{ learning = 1 }}\n"
    )
    return load_config(tmp_path / "digest.toml")


def run(config: Config, now: datetime = T0) -> dict[str, FeedReport]:
    with open_store(config.settings.state) as store:
        return {r.name: r for r in asyncio.run(collect(config, store, now))}


def stored_entries(config: Config) -> int:
    with open_store(config.settings.state) as store:
        return store.count_entries()


# ----------------------------------------------------------------- a server of raw bytes


Answer = Callable[[socket.socket, threading.Event], None]
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """A TCP server on 127.0.0.1 that answers each request path with exactly the bytes it
    was given, or hands the socket to a function (to trickle bytes, say)."""

    def __init__(self) -> None:
        self.answers: dict[str, bytes | Answer] = {}
        self.closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, head: bytes, body: bytes = b"") -> None:
        """Answer `path` with the status line and headers in `head` (CRLF-separated, without
        the blank line), then `body`; the connection is closed after it."""
        self.answers[path] = head + b"\r\n\r\n" + body

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with closing(conn):
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                path = request.split(b" ", 2)[1].decode("ascii", "replace")
                answer = self.answers.get(path, NOT_FOUND)
                if callable(answer):
                    answer(conn, self.closing)
                else:
                    conn.sendall(answer)
            except OSError:
                return

    def close(self) -> None:
        self.closing.set()
        self._accepting.join()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def trickle(data: bytes, interval: float = 0.05) -> Answer:
    """Send `data` one byte every `interval`, then keep sending spaces: it never ends."""

    def send(conn: socket.socket, closing_: threading.Event) -> None:
        i = 0
        while not closing_.wait(interval):
            conn.sendall(data[i : i + 1] if i < len(data) else b" ")
            i += 1

    return send


# ------------------------------------------------------------------ 1. Retry-After


@pytest.mark.parametrize(
    ("value", "until", "note"),
    [
        ("7200", T0 + timedelta(hours=2), None),
        ("9" * 20, DAY, "Retry-After of 99999999999999999999 s capped at 24 h"),
        ("9" * 21, DAY, "Retry-After of 21 digits capped at 24 h"),
        ("9" * 5000, DAY, "Retry-After of 5000 digits capped at 24 h"),
        ("86401", DAY, "Retry-After of 86401 s capped at 24 h"),
        ("x" * 5000, None, "Retry-After of 5000 characters ignored"),
        ("-5", None, "Retry-After '-5' ignored (neither seconds nor a date)"),
        ("1e9", None, "Retry-After '1e9' ignored (neither seconds nor a date)"),
        ("٧", None, "Retry-After '٧' ignored (neither seconds nor a date)"),
        ("²", None, "Retry-After '²' ignored (neither seconds nor a date)"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", DAY, "capped at 24 h"),
        ("Fri, 31 Dec 9999 23:59:59 +2359", DAY, "capped at 24 h"),
        ("Mon, 23 Nov 2026 09:00:00 GMT", T0 + timedelta(hours=3), None),
        ("Mon, 23 Nov 2026 09:00:00 -0000", None, "ignored"),  # RFC 5322: zone unknown
        ("", None, None),
    ],
)
def test_any_retry_after_is_an_instant_within_a_day_or_ignored_with_a_note(
    value: str, until: datetime | None, note: str | None
) -> None:
    got, said = read_retry_after(value, T0)
    assert got == until and parse_retry_after(value, T0) == until
    if note is None:
        assert said is None
    else:
        assert said is not None and note in one_line(said)


@pytest.mark.parametrize("value", ["9" * 20, "9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_retry_after_waits_one_day_and_says_so_in_the_report(
    http_server: HTTPServer, tmp_path: Path, value: str
) -> None:
    http_server.set("/good.rss", GOOD)
    http_server.set("/busy.rss", GOOD)
    http_server.set_status("/busy.rss", 503, {"Retry-After": value})
    config = make_config(
        tmp_path, {"busy": http_server.url("/busy.rss"), "good": http_server.url("/good.rss")}
    )
    reports = run(config)
    busy = reports["busy"]
    assert busy.status == "error" and busy.until == DAY
    assert one_line(busy.error).startswith("HTTP 503 Service Unavailable; Retry-After ")
    assert one_line(busy.error).endswith("capped at 24 h")
    assert reports["good"].status == "ok" and stored_entries(config) == reports["good"].new > 0
    assert run(config, T0 + timedelta(hours=23))["busy"].status == "skipped"
    assert run(config, DAY)["busy"].status == "error", "asked again after a day"


# ------------------------------------------------------------------------ 2. redirects


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("mailto:feeds@example.org", "redirected to a non-HTTP URL: mailto:feeds@example.org"),
        ("javascript:alert(1)", "redirected to a non-HTTP URL: javascript:alert(1)"),
        ("ftp://example.org/feed.xml", "redirected to a non-HTTP URL: ftp://example.org/feed.xml"),
        ("file:///etc/passwd", "redirected to a non-HTTP URL: file:///etc/passwd"),
        (
            "http://127.0.0.1:99999/feed",
            "redirected to an unusable URL (the port is not a number in 1–65535): "
            "http://127.0.0.1:99999/feed",
        ),
        (
            "http://127.0.0.1:0/feed",
            "redirected to an unusable URL (port 0 is outside 1–65535): http://127.0.0.1:0/feed",
        ),
        ("http://[::1", "redirected to a malformed URL (malformed IPv6 address)"),
        ("http://[::1/feed", "redirected to a malformed URL (malformed IPv6 address)"),
        ("//[zz]/", "redirected to a malformed URL (malformed IPv6 address)"),
        ("http://[fe80::1%25eth0/", "redirected to a malformed URL (malformed IPv6 address)"),
        ("http://exa mple.org/", "redirected to an unusable URL (malformed host 'exa%20mple.org')"),
        ("http://user:hunter2@example.org:99999/", "http://***@example.org:99999/"),
        ("https://example.org/" + "a" * 9000, "(longer than 8192 characters): https://example."),
    ],
)
def test_a_redirect_nowhere_fetchable_costs_that_feed_only(
    http_server: HTTPServer, location: str, error: str
) -> None:
    http_server.set("/good.rss", GOOD)
    http_server.set_status("/bad.rss", 302, {"Location": location})
    bad, good = fetch(feed(http_server.url("/bad.rss"), "bad"), feed(http_server.url("/good.rss")))
    assert error in one_line(bad.error) and bad.status == 302 and bad.body is None
    assert "hunter2" not in one_line(bad.error)
    assert good.body == GOOD and good.error is None


@pytest.mark.parametrize(
    ("location", "error"),
    [
        (b"http://127.0.0.1/\x00feed", "cannot fetch: malformed response (illegal header line)"),
        (b"http://127.0.0.1/\rfeed", "cannot fetch: malformed response (illegal header line)"),
        (
            b"http://127.0.0.1/\x1bfeed",
            "redirected to an unusable URL (holds the control "
            "character '\\x1b'): http://127.0.0.1/\\x1bfeed",
        ),
        (
            b"http://127.0.0.1/" + b"a" * 70_000,
            "redirected to an unusable URL (longer than 8192 characters): http://127.0.0.1/aaaa",
        ),
        (b"http://ex\xe4\x80mple.org/", "redirected to an unusable URL (malformed host "),
    ],
)
def test_a_location_of_raw_bytes_costs_that_feed_only(
    raw_server: RawServer, http_server: HTTPServer, location: bytes, error: str
) -> None:
    head = b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\nLocation: " + location
    raw_server.answer("/bad.rss", head)
    http_server.set("/good.rss", GOOD)
    bad, good = fetch(feed(raw_server.url("/bad.rss"), "bad"), feed(http_server.url("/good.rss")))
    assert one_line(bad.error).startswith(error), bad.error
    assert good.body == GOOD


def test_a_broken_answer_is_named_without_quoting_what_the_server_sent(
    raw_server: RawServer, http_server: HTTPServer
) -> None:
    raw_server.answers["/silent.rss"] = b""
    raw_server.answer("/garbage.rss", b"\x00\x01 hunter2 \xff")
    raw_server.answer("/length.rss", b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000)
    raw_server.answer("/short.rss", b"HTTP/1.1 200 OK\r\nContent-Length: 100", b"<rss>")
    http_server.set("/good.rss", GOOD)
    *broken, good = fetch(
        *(feed(raw_server.url(f"/{n}.rss"), n) for n in ("silent", "garbage", "length", "short")),
        feed(http_server.url("/good.rss")),
    )
    errors = {r.feed.name: one_line(r.error) for r in broken}
    assert errors == {
        "silent": "cannot fetch: Server disconnected without sending a response.",
        "garbage": "cannot fetch: malformed response (illegal status line)",
        "length": "cannot fetch: bad Content-Length",
        "short": "cannot fetch: peer closed connection without sending complete message body"
        " (received 5 bytes, expected 100)",
    }
    assert good.body == GOOD


def test_a_location_with_a_space_is_followed_as_a_browser_would(http_server: HTTPServer) -> None:
    http_server.set("/new%20feed.rss", GOOD)
    http_server.set_status("/old.rss", 302, {"Location": "/new feed.rss"})
    (result,) = fetch(feed(http_server.url("/old.rss")))
    assert result.error is None and result.body == GOOD
    assert result.final_url == http_server.url("/new%20feed.rss")


def test_an_upper_case_scheme_is_followed_too(http_server: HTTPServer) -> None:
    http_server.set("/new.rss", GOOD)
    http_server.set_status("/old.rss", 301, {"Location": http_server.url("/new.rss").upper()})
    (result,) = fetch(feed(http_server.url("/old.rss")))
    # the host and scheme are case-insensitive, the path is not: /NEW.RSS is another file
    assert result.error == "HTTP 404 Not Found"
    assert http_server.requests_for("/NEW.RSS")


# ----------------------------------------------------------------------------- 3. 304


def test_a_304_to_a_request_without_validators_is_an_error_not_an_empty_feed(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/f.rss", GOOD)
    http_server.set_status("/f.rss", 304)
    config = make_config(tmp_path, {"f": http_server.url("/f.rss")})
    report = run(config)["f"]
    assert report.status == "error"
    assert one_line(report.error) == "HTTP 304 Not Modified to a request without validators"
    (result,) = fetch(config.feeds[0])
    assert not result.not_modified and result.status == 304
    # it is asked again on the next run, and the feed arrives once the server behaves
    http_server.set_status("/f.rss", None)
    report = run(config, T0 + timedelta(minutes=5))["f"]
    assert report.status == "ok" and report.new > 0


def test_a_validator_that_cannot_be_sent_back_is_not_kept(
    raw_server: RawServer, http_server: HTTPServer
) -> None:
    raw_server.answer(
        "/f.rss",
        b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "caf\xc3\xa9"\r\n'
        b"Last-Modified: " + b"x" * 2000,
        b"<rss>",
    )
    (result,) = fetch(feed(raw_server.url("/f.rss")))
    assert result.body == b"<rss>" and result.etag is None and result.last_modified is None
    # a state file written before this check may still hold one: it is not sent
    http_server.set("/g.rss", GOOD)
    url = http_server.url("/g.rss")
    known = {url: FeedStatus(url, etag='"café"', last_modified="Mon\x00")}
    (result,) = fetch(feed(url), known=known)
    assert result.body == GOOD
    sent = http_server.requests_for("/g.rss")[0].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent


# ----------------------------------------------------------- 4. malformed feed URLs


MALFORMED = {
    "v6": ("http://[::1", "unusable URL: malformed IPv6 address"),
    "v6-path": ("http://[::1/feed.xml", "unusable URL: malformed IPv6 address"),
    "port": ("http://127.0.0.1:99999/feed.xml", "unusable URL: the port is not a number"),
    "cr": ("http://127.0.0.1/a\rb", "unusable URL: holds the control character '\\r'"),
    "nul": ("http://127.0.0.1/a\x00b", "unusable URL: holds the control character '\\x00'"),
    "long": ("http://127.0.0.1/" + "a" * 70_000, "unusable URL: longer than 8192 characters"),
    "no-host": ("http:///feed.xml", "unusable URL: has no host"),
}


def test_a_malformed_feed_url_costs_that_feed_at_fetch_time(http_server: HTTPServer) -> None:
    # check-config refuses these; a Config built otherwise (the library API) must not crash
    http_server.set("/good.rss", GOOD)
    feeds = [feed(url, name) for name, (url, _) in MALFORMED.items()]
    results = fetch(*feeds, feed(http_server.url("/good.rss"), "good"))
    for result in results[:-1]:
        assert one_line(result.error).startswith(MALFORMED[result.feed.name][1]), result.error
    assert results[-1].body == GOOD


def test_malformed_feed_urls_beside_a_good_one_through_collect(
    http_server: HTTPServer, tmp_path: Path
) -> None:
    http_server.set("/good.rss", GOOD)
    config = make_config(tmp_path, {"good": http_server.url("/good.rss")})
    config = replace(
        config, feeds=(*(feed(url, name) for name, (url, _) in MALFORMED.items()), *config.feeds)
    )
    reports = run(config)
    for name, (_, error) in MALFORMED.items():
        assert reports[name].status == "error" and one_line(reports[name].error).startswith(error)
    assert reports["good"].status == "ok" and stored_entries(config) == reports["good"].new > 0


def test_an_upper_case_scheme_is_an_http_feed(http_server: HTTPServer) -> None:
    http_server.set("/f.rss", GOOD)
    url = http_server.url("/f.rss").replace("http://", "HTTP://")
    (result,) = fetch(feed(url))
    assert result.error is None and result.body == GOOD
    assert http_server.requests_for("/f.rss")


# ------------------------------------------------------- 5. what the parser is given


def test_the_final_url_content_type_and_content_location_reach_the_result(
    http_server: HTTPServer,
) -> None:
    http_server.set(
        "/feeds/real.xml",
        GOOD,
        "application/rss+xml; charset=iso-8859-1",
        headers={"Content-Location": "canonical.xml"},
    )
    http_server.set_status("/feed", 302, {"Location": "/feeds/real.xml"})
    http_server.set("/plain.rss", GOOD, headers={"Content-Location": "javascript:alert(1)"})
    moved, plain = fetch(feed(http_server.url("/feed")), feed(http_server.url("/plain.rss")))
    assert moved.url == http_server.url("/feed"), "the validators belong to the URL asked"
    assert moved.final_url == http_server.url("/feeds/real.xml")
    assert moved.content_location == http_server.url("/feeds/canonical.xml")
    assert moved.content_type == "application/rss+xml; charset=iso-8859-1"
    assert plain.final_url == http_server.url("/plain.rss") and plain.content_location is None


# -------------------------------------------------------------------- 6. deadlines


def test_a_server_that_trickles_its_headers_forever_is_cut_at_the_deadline(
    raw_server: RawServer, http_server: HTTPServer
) -> None:
    raw_server.answers["/head.rss"] = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    raw_server.answers["/body.rss"] = trickle(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n" * 1
    )
    http_server.set("/good.rss", GOOD)
    start = time.monotonic()
    head, body, good = fetch(
        feed(raw_server.url("/head.rss"), "head"),
        feed(raw_server.url("/body.rss"), "body"),
        feed(http_server.url("/good.rss")),
    )
    elapsed = time.monotonic() - start
    assert head.error == "timed out after 2 s" and body.error == "timed out after 2 s"
    assert good.body == GOOD
    assert elapsed < 4, f"the deadline was stretched to {elapsed:.1f} s"


def test_a_local_feed_that_is_no_regular_file_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    good = tmp_path / "good.rss"
    good.write_bytes(GOOD)
    start = time.monotonic()
    results = fetch(
        FeedConfig("fifo", "feed.fifo", str(fifo)),
        FeedConfig("zero", "/dev/zero", "/dev/zero"),
        FeedConfig("dir", "feeds", str(tmp_path)),
        FeedConfig("good", "good.rss", str(good)),
    )
    assert time.monotonic() - start < 2
    assert [r.error for r in results] == [
        f"not a regular file: {fifo}",
        "not a regular file: /dev/zero",
        f"not a regular file: {tmp_path}",
        None,
    ]
    assert results[-1].body == GOOD


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e300, -1.0])
def test_a_timeout_no_config_would_accept_still_fetches_within_bounds(
    http_server: HTTPServer, seconds: float
) -> None:
    # the library API takes FetchSettings as given; the deadline is bounded all the same
    http_server.set("/f.rss", GOOD)
    url = http_server.url("/f.rss")
    settings = FetchSettings(timeout=seconds)
    (result,) = asyncio.run(fetch_all([feed(url)], {}, T0, settings=settings))
    assert result.error is None and result.body == GOOD


# ------------------------------------------------------------- through the command


def test_digest_collect_with_hostile_feeds_beside_a_good_one(
    http_server: HTTPServer, raw_server: RawServer, tmp_path: Path, run_digest: RunDigest
) -> None:
    http_server.set("/good.rss", GOOD)
    http_server.set_status("/mailto", 302, {"Location": "mailto:x@example.org"})
    http_server.set_status("/port", 301, {"Location": "http://127.0.0.1:70000/"})
    http_server.set_status("/v6", 307, {"Location": "http://[::1"})
    http_server.set_status("/loop", 301, {"Location": "/loop"})
    for i in range(7):
        http_server.set_status(f"/chain{i}", 302, {"Location": f"/chain{i + 1}"})
    http_server.set_status("/busy", 429, {"Retry-After": "9" * 5000})
    http_server.set_status("/empty", 304)
    raw_server.answer("/nul", b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: /a\x00b")
    hostile = {
        "mailto": http_server.url("/mailto"),
        "port": http_server.url("/port"),
        "v6": http_server.url("/v6"),
        "loop": http_server.url("/loop"),
        "chain": http_server.url("/chain0"),
        "busy": http_server.url("/busy"),
        "empty": http_server.url("/empty"),
        "nul": raw_server.url("/nul"),
    }
    listed = "".join(
        f'[[feeds]]\nname = "{n}"\nurl = "{u}"\n'
        for n, u in {**hostile, "good": http_server.url("/good.rss")}.items()
    )
    config = tmp_path / "digest.toml"
    config.write_text(f'[digest]\nstate = "state.sqlite"\n{listed}')
    result = run_digest("collect", "--config", str(config), "--now", "2026-11-23T06:00:00Z")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"collected 9 feeds: {GOOD.count(b'<item>')} new entries, 8 failed"
    for name in hostile:
        (line,) = [line for line in lines if line.startswith(f"  feed {name!r} failed: ")]
        assert len(line) < 300, line
    assert "redirected to a non-HTTP URL: mailto:x@example.org" in result.stderr
    assert f"redirect loop at {http_server.url('/loop')}" in result.stderr
    assert "feed 'chain' failed: more than 5 redirects\n" in result.stderr, "no backoff"
    assert "Retry-After of 5000 digits capped at 24 h; next try 2026-11-24 06:00Z" in (
        result.stderr
    )
    with closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        (count,) = db.execute("SELECT count(*) FROM entries").fetchone()
    assert count == GOOD.count(b"<item>") > 0
