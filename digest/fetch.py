"""Feeds → bytes: HTTP with conditional GET, or a local file. Nothing here parses.

Also the politeness rules that decide, from what a fetch gave, when a feed may be fetched
again (Retry-After, exponential backoff): pure functions of the result and `now`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

# Two imports that httpx and httpcore attempt and we do not want, made to fail at once
# with a None entry in sys.modules (the way Python provides for):
# - httpx's __init__ imports its command-line client (rich, pygments …) whenever they are
#   installed, about 40 ms of start-up for a `digest collect` where nothing is new;
# - httpcore tries `import sniffio` on every lock it sets up, several times per request;
#   since anyio 4 no longer brings sniffio, each try is a failed search of sys.path, which
#   made 200 conditional GETs take three times as long.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx  # noqa: E402

from . import __version__  # noqa: E402
from .models import FeedConfig, FeedStatus, FetchResult, FetchSettings  # noqa: E402

USER_AGENT = f"digest/{__version__} (feed digest; +https://pypi.org/project/digest/)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
#: the placeholder a `[[feeds]] url` may hold for sources that publish one page per day
DATE_PLACEHOLDER = "{date}"
#: the first wait after a transient failure; doubled for each further one in a row
BACKOFF_START = timedelta(hours=1)
#: no feed is left alone longer than this, whatever it answers
MAX_WAIT = timedelta(hours=24)
#: error and redirect bodies up to this size are read, to keep their connection alive
_DRAIN_BYTES = 64 * 1024
#: every coding _decoder reads, offered to servers in this order
_ENCODINGS = "gzip, deflate, br"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def fetch_all(
    feeds: Sequence[FeedConfig],
    known: Mapping[str, FeedStatus],
    now: datetime,
    *,
    day: date | None = None,
    settings: FetchSettings | None = None,
    max_bytes: int = MAX_BYTES,
    on_done: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every feed at once within the global and per-host limits, in config order;
    errors are results. `day` fills `{date}` in feed URLs (default: `now`'s date)."""
    day = day or now.date()
    settings = settings or FetchSettings()
    limit = asyncio.Semaphore(settings.concurrency)
    async with httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": _ACCEPT, "Accept-Encoding": _ENCODINGS},
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        transport=_Transport(
            httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            )
        ),
        follow_redirects=False,
    ) as client:
        fetcher = _Fetcher(client, settings.per_host, max_bytes, now)

        async def one(feed: FeedConfig) -> FetchResult:
            status = known.get(feed.url)
            url = request_url(feed, status, day)
            if not feed.is_http:
                result = _read_file(feed, url, max_bytes)
            else:
                # the deadline starts once the feed's host has a free slot: queueing behind
                # other feeds of the same host must not time a feed out
                async with fetcher.host_slot(url), limit:
                    try:
                        async with asyncio.timeout(settings.timeout):
                            result = await fetcher.fetch(feed, url, status)
                    except TimeoutError:
                        result = FetchResult(
                            feed, url=url, error=f"timed out after {settings.timeout:g} s"
                        )
            if on_done is not None:
                on_done(result)
            return result

        return list(await asyncio.gather(*(one(feed) for feed in feeds)))


def request_url(feed: FeedConfig, status: FeedStatus | None, day: date) -> str:
    """What to read this run: the day's page of a `{date}` feed, else where the feed moved
    permanently, else the configured source."""
    if DATE_PLACEHOLDER in feed.source:
        return feed.source.replace(DATE_PLACEHOLDER, day.isoformat())
    if feed.is_http and status is not None and status.moved_to:
        return status.moved_to
    return feed.source


def is_transient(result: FetchResult) -> bool:
    """A failure worth trying again later rather than a problem with the feed itself:
    a 5xx, a 429, a timeout or a network error."""
    if result.error is None or not result.feed.is_http:
        return False
    return result.status is None or result.status == 429 or result.status >= 500


def retry_at(result: FetchResult, failures: int, now: datetime) -> datetime | None:
    """When the feed may be fetched again after `result` (None: on the next run).

    `failures` counts the transient failures in a row, this one included. A Retry-After is
    honoured as given; otherwise the wait starts at BACKOFF_START and doubles; both are
    capped at MAX_WAIT."""
    if not is_transient(result):
        return None
    if result.retry_after is not None:
        return min(result.retry_after, now + MAX_WAIT) if result.retry_after > now else None
    wait = BACKOFF_START * (1 << min(max(failures - 1, 0), 16))
    return now + min(wait, MAX_WAIT)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as an instant."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + min(timedelta(seconds=int(value)), MAX_WAIT)
    try:
        when: datetime = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


class _Transport(httpx.AsyncBaseTransport):
    """Plain http over a pool that never sets up TLS; https over a verifying pool made on
    the first https request. Loading the CA certificates takes 20–50 ms, which a run over
    http feeds only (or over a local mirror) need not pay."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        # a context that trusts no certificate: this pool only ever carries http://
        self._plain = httpx.AsyncHTTPTransport(
            verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), limits=limits
        )
        self._tls: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            return await self._plain.handle_async_request(request)
        if self._tls is None:
            self._tls = httpx.AsyncHTTPTransport(limits=self._limits)
        return await self._tls.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()
        if self._tls is not None:
            await self._tls.aclose()


class _Fetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        per_host: int,
        max_bytes: int,
        now: datetime,
    ) -> None:
        self.client = client
        self.hosts: dict[str, asyncio.Semaphore] = {}
        self.per_host = per_host
        self.max_bytes = max_bytes
        self.now = now

    def host_slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        slot = self.hosts.get(host)
        if slot is None:
            slot = self.hosts[host] = asyncio.Semaphore(self.per_host)
        return slot

    async def fetch(self, feed: FeedConfig, url: str, status: FeedStatus | None) -> FetchResult:
        """GET `url`, following up to MAX_REDIRECTS redirects ourselves so that a permanent
        one can be remembered and a loop stopped at once."""
        headers: dict[str, str] = {}
        if status is not None and status.fetched_url in (None, url):
            if status.etag:
                headers["If-None-Match"] = status.etag
            if status.last_modified:
                headers["If-Modified-Since"] = status.last_modified
        # a dated page moving is no news about tomorrow's page
        remember = DATE_PLACEHOLDER not in feed.source
        seen = {url}
        held = {self.host_slot(url)}
        current = url
        moved: str | None = None
        permanent = True
        async with AsyncExitStack() as stack:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    result, location = await self._get(feed, url, current, headers, stack, held)
                except httpx.TimeoutException:
                    return FetchResult(feed, url=url, moved_to=moved, error="timed out")
                except httpx.HTTPError as e:
                    reason = f"cannot fetch: {e or type(e).__name__}"
                    return FetchResult(feed, url=url, moved_to=moved, error=reason)
                if location is None:
                    assert result is not None
                    return _with_move(result, moved)
                assert result is not None and result.status is not None
                permanent = permanent and result.status in _PERMANENT
                if permanent and remember:
                    moved = location
                if location in seen:
                    # a loop moved nowhere, even when each of its hops claims it is permanent
                    return FetchResult(
                        feed, status=result.status, url=url,
                        error=f"redirect loop at {location}",
                    )  # fmt: skip
                if not location.startswith(("http://", "https://")):
                    return FetchResult(
                        feed, status=result.status, url=url, moved_to=None,
                        error=f"redirected to a non-HTTP URL: {location}",
                    )  # fmt: skip
                seen.add(location)
                current = location
        return FetchResult(
            feed, url=url, moved_to=moved, error=f"more than {MAX_REDIRECTS} redirects"
        )

    async def _get(
        self,
        feed: FeedConfig,
        url: str,
        current: str,
        headers: dict[str, str],
        stack: AsyncExitStack,
        held: set[asyncio.Semaphore],
    ) -> tuple[FetchResult | None, str | None]:
        """One request: (result, None), or (the redirect's status, its absolute Location).
        A hop to another host waits for a slot there too, kept until the feed is done."""
        slot = self.host_slot(current)
        if slot not in held:
            await stack.enter_async_context(slot)
            held.add(slot)
        async with self.client.stream("GET", current, headers=headers) as response:
            code = response.status_code
            if code < 200 or code >= 300:
                await _drain(response)
            if code in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    error = f"HTTP {code} without a Location"
                    return FetchResult(feed, status=code, url=url, error=error), None
                return FetchResult(feed, status=code, url=url), urljoin(current, location.strip())
            if code == 304:
                etag = response.headers.get("ETag") or headers.get("If-None-Match")
                modified = response.headers.get("Last-Modified") or headers.get("If-Modified-Since")
                return FetchResult(
                    feed, status=304, url=url, etag=etag, last_modified=modified
                ), None
            if code >= 300 or code < 200:
                retry = parse_retry_after(response.headers.get("Retry-After"), self.now)
                return FetchResult(
                    feed,
                    status=code,
                    url=url,
                    error=f"HTTP {code} {response.reason_phrase}".strip(),
                    retry_after=retry if code in (429, 503) else None,
                ), None
            body, problem = await _read_body(response, self.max_bytes)
            return FetchResult(
                feed,
                status=code,
                url=url,
                body=body,
                error=problem,
                etag=response.headers.get("ETag") if problem is None else None,
                last_modified=response.headers.get("Last-Modified") if problem is None else None,
                content_type=response.headers.get("Content-Type"),
            ), None


def _with_move(result: FetchResult, moved: str | None) -> FetchResult:
    return result if moved is None else replace(result, moved_to=moved)


class _TooLarge(Exception):
    pass


class _Corrupt(Exception):
    pass


class _Decoder(Protocol):
    def decode(self, data: bytes, room: int) -> bytes: ...


class _Identity:
    def decode(self, data: bytes, room: int) -> bytes:
        if len(data) > room:
            raise _TooLarge
        return data


class _Zlib:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), inflated no further
    than the room left: a bomb stops at the cap instead of filling memory first."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            try:
                out = self._inflate.decompress(data, room + 1)
            except zlib.error:
                if self._started or self._wbits != zlib.MAX_WBITS:
                    raise
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._inflate.decompress(data, room + 1)
        except zlib.error as e:
            raise _Corrupt from e
        self._started = True
        if len(out) > room:
            raise _TooLarge
        return out


class _Brotli:
    def __init__(self) -> None:
        import brotli  # only feeds served with br need it

        self._error = brotli.error
        self._inflate = brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out: bytes = self._inflate.process(data, output_buffer_limit=room + 1)
        except self._error as e:
            raise _Corrupt from e
        if len(out) > room:
            raise _TooLarge
        return out


def _decoder(content_encoding: str) -> _Decoder:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
    match codings[0]:
        case "gzip" | "x-gzip":
            return _Zlib(16 + zlib.MAX_WBITS)
        case "deflate":
            return _Zlib(zlib.MAX_WBITS)
        case "br":
            return _Brotli()
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")


async def _drain(response: httpx.Response) -> None:
    """Read a short error or redirect body to its end, so that the connection goes back to
    the pool (kept alive) instead of being closed; a long one is not worth it."""
    declared = response.headers.get("Content-Length", "")
    if response.status_code == 304 or (declared.isdigit() and int(declared) <= _DRAIN_BYTES):
        async for _ in response.aiter_raw():
            pass


async def _read_body(response: httpx.Response, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The body decoded by us, never more than max_bytes of it: (body, None) or (None, why)."""
    too_large = f"body larger than {max_bytes // (1024 * 1024)} MiB, not read"
    try:
        decoder = _decoder(response.headers.get("Content-Encoding", ""))
    except ValueError as e:
        return None, str(e)
    declared = response.headers.get("Content-Length", "")
    if isinstance(decoder, _Identity) and declared.isdigit() and int(declared) > max_bytes:
        return None, too_large
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += decoder.decode(chunk, max_bytes - len(body))
    except _TooLarge:
        return None, too_large
    except _Corrupt:
        return None, f"cannot decode the {response.headers.get('Content-Encoding')} body"
    return bytes(body), None


def _read_file(feed: FeedConfig, path_name: str, max_bytes: int) -> FetchResult:
    path = Path(path_name)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return FetchResult(feed, error=f"file larger than {max_bytes // (1024 * 1024)} MiB")
        return FetchResult(feed, body=path.read_bytes())
    except FileNotFoundError:
        return FetchResult(feed, error=f"no such file: {path}")
    except OSError as e:
        return FetchResult(feed, error=f"cannot read {path}: {e.strerror}")
