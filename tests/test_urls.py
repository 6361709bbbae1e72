"""urls: a URL is refused unless the HTTP client can request it; secrets never shown."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.urls import endpoint, has_secret, redacted, url_problem

GOOD = [
    "https://example.org/feed.xml",
    "HTTP://Example.org/Feed",  # the scheme and host are case-insensitive
    "http://127.0.0.1:8080/rss?x=1",
    "http://[::1]:8080/x",
    "https://xn--bcher-kva.example/",
    "https://bücher.example/feed",
    "http://h:/x",  # an empty port means the default one, as httpx takes it
    "https://export.arxiv.org/api/query?search_query=cat:cs.LG&start=0",
]

BAD = {
    "http://[::1": "malformed IPv6 address",
    "http://[nothex]/": "malformed IPv6 address",
    "http://h:70000/x": "the port is not a number in 1–65535",
    "http://h:0/x": "port 0 is outside 1–65535",
    "http://h:abc/x": "the port is not a number in 1–65535",
    "http://h/a\rb": "holds the control character '\\r'",
    "http://h/a\x00b": "holds the control character '\\x00'",
    "http://h/a b": "holds a space",
    "http://h/" + "a" * 70_000: "longer than 8192 characters",
    "mailto:ada@example.org": "not an http(s) URL",
    "javascript:alert(1)": "not an http(s) URL",
    "ftp://example.org/feed": "not an http(s) URL",
    "example.org/feed": "not a URL (no http:// or https://)",
    "http:///x": "has no host",
    "http://-bad-/x": "malformed host '-bad-'",
    "http://a..b/x": "malformed host 'a..b'",
}


@pytest.mark.parametrize("url", GOOD)
def test_valid_urls_are_accepted_and_httpx_can_request_them(url: str) -> None:
    assert url_problem(url) is None
    httpx.Request("GET", url)


@pytest.mark.parametrize(("url", "reason"), BAD.items(), ids=[u[:30] for u in BAD])
def test_urls_the_client_cannot_request_are_refused_with_a_reason(url: str, reason: str) -> None:
    assert url_problem(url) == reason


@given(st.text(max_size=60))
def test_whatever_is_accepted_httpx_requests_at_the_same_host(tail: str) -> None:
    for url in (f"http://{tail}", f"https://example.org/{tail}", f"http://h{tail}/x"):
        if url_problem(url) is None:
            request = httpx.Request("GET", url)
            assert request.url.scheme in {"http", "https"}
            assert request.url.host
            assert request.url.port is None or 1 <= request.url.port <= 65535


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ada:hunter2@example.org/feed", "https://***@example.org/feed"),
        ("https://example.org/feed?token=abc&page=2", "https://example.org/feed?token=***&page=2"),
        ("https://example.org/f?api_key=k1", "https://example.org/f?api_key=***"),
        ("https://example.org/f?u=ada&x=9f8e7d6c5b4a39281716", "https://example.org/f?u=ada&x=***"),
        ("https://example.org/feed.xml?page=2", "https://example.org/feed.xml?page=2"),
        (
            "https://example.org/api?search_query=cat:cs.LG",
            "https://example.org/api?search_query=cat:cs.LG",
        ),
        ("http://[::1", "<malformed URL ***>"),
    ],
)
def test_redacted_urls_hide_user_info_and_secret_looking_values(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert has_secret(url) == (shown != url and "malformed" not in shown)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.example.org/services/T000/B000/XXXX",
            "https://hooks.example.org/services/…",
        ),
        ("https://hooks.example.org/T000", "https://hooks.example.org/T000"),
        ("https://chat.example.org/hook?key=secret", "https://chat.example.org/hook/…"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://[::1]:9/x/y", "http://[::1]:9/x/…"),
    ],
)
def test_an_endpoint_is_shown_by_host_and_first_path_segment(url: str, shown: str) -> None:
    assert endpoint(url) == shown
