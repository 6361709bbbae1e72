"""Feeds → bytes: HTTP with conditional GET, or a local file. Nothing here parses.

Also the politeness rules that decide, from what a fetch gave, when a feed may be fetched
again (Retry-After, exponential backoff): pure functions of the result and `now`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import stat
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
from .urls import redacted, state_key, url_problem  # noqa: E402

USER_AGENT = f"digest/{__version__} (feed digest; +https://pypi.org/project/digest/)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
#: seconds one feed may take at most, whatever FetchSettings.timeout says (as config allows)
MAX_TIMEOUT = 600.0
#: the placeholder a `[[feeds]] url` may hold for sources that publish one page per day
DATE_PLACEHOLDER = "{date}"
#: the first wait after a transient failure; doubled for each further one in a row
BACKOFF_START = timedelta(hours=1)
#: no feed is left alone longer than this, whatever it answers
MAX_WAIT = timedelta(hours=24)
#: a URL a server sent is shown in a report up to this many characters
_SHOWN_URL = 200
#: a validator (ETag, Last-Modified) longer than this, or not printable ASCII, is not kept:
#: sent back, it could not be encoded or would swell every request
_MAX_VALIDATOR = 1024
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
#: sent with every request
_HEADERS = {"User-Agent": USER_AGENT, "Accept": _ACCEPT, "Accept-Encoding": _ENCODINGS}


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
    # The transport, not an httpx.AsyncClient: the client builds the request for every
    # redirect's Location as soon as the response arrives, even when told not to follow it,
    # and raises there (mailto:, a port past 65535, a malformed IPv6 host …) outside any
    # handling of ours. Redirects are followed by _Fetcher, each target checked first.
    transport = _Transport(
        httpx.Limits(
            max_connections=settings.concurrency,
            max_keepalive_connections=settings.concurrency,
        )
    )
    deadline = _deadline(settings.timeout)
    timeout = httpx.Timeout(deadline, connect=min(deadline, 10.0))
    async with transport:
        fetcher = _Fetcher(transport, timeout, settings.per_host, max_bytes, now)

        async def one(feed: FeedConfig) -> FetchResult:
            try:
                result = await attempt(feed)
            except Exception as e:  # whatever it is, it costs this feed only
                result = FetchResult(feed, error=_unexpected(e))
            if on_done is not None:
                on_done(result)
            return result

        async def attempt(feed: FeedConfig) -> FetchResult:
            status = known.get(feed.key)
            url = request_url(feed, status, day)
            if not feed.is_http:
                return _read_file(feed, url, max_bytes)
            if (problem := url_problem(url)) is not None:
                return FetchResult(feed, url=url, error=f"unusable URL: {problem}")
            # the deadline starts once the feed's host has a free slot: queueing behind
            # other feeds of the same host must not time a feed out
            async with fetcher.host_slot(url), limit:
                try:
                    async with asyncio.timeout(deadline):
                        return await fetcher.fetch(feed, url, status)
                except TimeoutError:
                    error = f"timed out after {deadline:g} s"
                    return FetchResult(feed, url=url, error=error)

        return list(await asyncio.gather(*(one(feed) for feed in feeds)))


def _deadline(seconds: float) -> float:
    """The per-feed deadline: what `[fetch] timeout` says, never more than MAX_TIMEOUT (a
    library caller's inf or nan included), so that no server can hold a run for ever."""
    return seconds if 0 < seconds <= MAX_TIMEOUT else MAX_TIMEOUT


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
    """A Retry-After header (delay in seconds, or an HTTP date) as an instant, never more
    than MAX_WAIT after `now`; None when there is none or it makes no sense."""
    return read_retry_after(value, now)[0]


def read_retry_after(value: str | None, now: datetime) -> tuple[datetime | None, str | None]:
    """A Retry-After header as (instant or None, a note for the feed's report or None).

    Any value a server sends is an answer, never an exception: a delay of any number of
    digits, or a date as far ahead as datetime holds, is capped at MAX_WAIT (noted); a
    negative number, a non-ASCII digit or anything that is neither seconds nor an HTTP date
    is ignored (noted)."""
    if not value or not value.strip():
        return None, None
    value = value.strip()
    cap = f"capped at {MAX_WAIT.total_seconds() / 3600:g} h"
    if value.isascii() and value.isdigit():
        # int() of 5,000 digits raises, and timedelta overflows long before that
        if len(value) > 9 or int(value) > MAX_WAIT.total_seconds():
            shown = f"{value} s" if len(value) <= 20 else f"{len(value)} digits"
            return now + MAX_WAIT, f"Retry-After of {shown} {cap}"
        return now + timedelta(seconds=int(value)), None
    when: datetime | None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is None or when.tzinfo is None:
        return None, f"Retry-After {_shown_value(value)} ignored (neither seconds nor a date)"
    if when > now + MAX_WAIT:
        return now + MAX_WAIT, f"Retry-After {_shown_value(value)} {cap}"
    return when, None


def _shown_value(value: str) -> str:
    """A header value as a report may quote it: short, control characters escaped."""
    if len(value) > 40:
        return f"of {len(value)} characters"
    return repr("".join(c if c.isprintable() else "?" for c in value))


def _shown(url: str) -> str:
    """A URL a server sent, as a report may show it: secrets masked, control characters
    escaped, cut to _SHOWN_URL characters."""
    text = redacted(url)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= _SHOWN_URL else text[: _SHOWN_URL - 1] + "…"


def _unexpected(error: BaseException) -> str:
    """One line for an exception no branch foresaw (it still costs only its feed)."""
    first = str(error).splitlines()[0] if str(error) else ""
    text = "".join(c if c.isprintable() else " " for c in first)[:200]
    return f"cannot fetch: {type(error).__name__}" + (f": {text}" if text else "")


def _http_problem(error: httpx.HTTPError | httpx.InvalidURL) -> str:
    """One line for what the HTTP client raised. A protocol error's detail often quotes the
    raw bytes a server sent (a header line with a NUL, say): only its first clause is kept."""
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.ProtocolError) and ":" in text:
        text = f"malformed response ({text.split(':')[0]})"
    text = "".join(c if c.isprintable() else " " for c in text.splitlines()[0])[:200]
    return f"cannot fetch: {text}"


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified worth keeping and sending back, else None."""
    if value is None or len(value) > _MAX_VALIDATOR or not value.isascii():
        return None
    return value if value.isprintable() and value.strip() else None


def _redirect_target(current: str, location: str) -> tuple[str | None, str | None]:
    """Where a Location leads from `current`: (absolute URL, None), or (None, the error)."""
    # a space is a sloppy server's, and is what browsers percent-encode; anything else
    # that is not a URL character is refused by url_problem
    location = location.strip().replace(" ", "%20")
    try:
        target = urljoin(current, location)
    except ValueError:  # urlsplit cannot take it apart, so it cannot be shown either
        return None, f"redirected to a malformed URL ({url_problem(location) or 'unparseable'})"
    problem = url_problem(target)
    if problem is None:
        return target, None
    if problem.startswith("not "):
        return None, f"redirected to a non-HTTP URL: {_shown(target)}"
    return None, f"redirected to an unusable URL ({problem}): {_shown(target)}"


def _content_location(base: str, value: str | None) -> str | None:
    """The Content-Location header made absolute, when it is a usable http(s) URL."""
    if not value:
        return None
    target, problem = _redirect_target(base, value)
    return target if problem is None else None


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
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout,
        per_host: int,
        max_bytes: int,
        now: datetime,
    ) -> None:
        self.transport = transport
        self.timeout = timeout.as_dict()
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
        one can be remembered, a loop stopped at once, and every target checked before it
        is requested. Whatever the server or the HTTP client does is a result."""
        headers: dict[str, str] = {}
        if status is not None and status.fetched_url in (None, url, state_key(url)):
            if etag := _validator(status.etag):
                headers["If-None-Match"] = etag
            if modified := _validator(status.last_modified):
                headers["If-Modified-Since"] = modified
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
                    return FetchResult(feed, url=url, error="timed out")
                except (httpx.HTTPError, httpx.InvalidURL) as e:
                    return FetchResult(feed, url=url, error=_http_problem(e))
                if location is None:
                    # a move is remembered once the new place answers: a 301 to a host
                    # that does not exist must not take the feed there for good
                    return _with_move(result, moved) if result.error is None else result
                target, problem = _redirect_target(current, location)
                if target is None:
                    return FetchResult(feed, status=result.status, url=url, error=problem)
                if target in seen:
                    # a loop moved nowhere, even when each of its hops claims it is permanent
                    return FetchResult(
                        feed, status=result.status, url=url,
                        error=f"redirect loop at {_shown(target)}",
                    )  # fmt: skip
                permanent = permanent and result.status in _PERMANENT
                if permanent and remember:
                    moved = target
                seen.add(target)
                current = target
        # the last redirect's status: a chain too long is the server's doing, not the
        # network's, and is not backed off as a transient failure
        too_many = f"more than {MAX_REDIRECTS} redirects"
        return FetchResult(feed, status=result.status, url=url, error=too_many)

    async def _get(
        self,
        feed: FeedConfig,
        url: str,
        current: str,
        headers: dict[str, str],
        stack: AsyncExitStack,
        held: set[asyncio.Semaphore],
    ) -> tuple[FetchResult, str | None]:
        """One request: (result, None), or (the redirect's status, its Location as sent).
        A hop to another host waits for a slot there too, kept until the feed is done."""
        slot = self.host_slot(current)
        if slot not in held:
            await stack.enter_async_context(slot)
            held.add(slot)
        request = httpx.Request(
            "GET", current, headers={**_HEADERS, **headers}, extensions={"timeout": self.timeout}
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            return await self._answer(feed, url, current, headers, response)
        finally:
            await response.aclose()

    async def _answer(
        self,
        feed: FeedConfig,
        url: str,
        current: str,
        headers: dict[str, str],
        response: httpx.Response,
    ) -> tuple[FetchResult, str | None]:
        code = response.status_code
        if code < 200 or code >= 300:
            await _drain(response)
        if code in _REDIRECTS:
            location = response.headers.get("Location")
            if not location or not location.strip():
                error = f"HTTP {code} without a Location"
                return FetchResult(feed, status=code, url=url, error=error), None
            return FetchResult(feed, status=code, url=url), location
        if code == 304:
            if not headers:
                # nothing was asked conditionally: taking this as "not modified" would
                # leave the feed empty for as long as the server answers so
                error = "HTTP 304 Not Modified to a request without validators"
                return FetchResult(feed, status=304, url=url, error=error), None
            etag = _validator(response.headers.get("ETag")) or headers.get("If-None-Match")
            modified = _validator(response.headers.get("Last-Modified")) or headers.get(
                "If-Modified-Since"
            )
            return FetchResult(
                feed, status=304, url=url, etag=etag, last_modified=modified, final_url=current
            ), None
        if code >= 300 or code < 200:
            error = f"HTTP {code} {response.reason_phrase}".strip()
            retry: datetime | None = None
            if code in (429, 503):
                retry, note = read_retry_after(response.headers.get("Retry-After"), self.now)
                error = f"{error}; {note}" if note else error
            return FetchResult(feed, status=code, url=url, error=error, retry_after=retry), None
        body, problem = await _read_body(response, self.max_bytes)
        return FetchResult(
            feed,
            status=code,
            url=url,
            body=body,
            error=problem,
            etag=_validator(response.headers.get("ETag")) if problem is None else None,
            last_modified=(
                _validator(response.headers.get("Last-Modified")) if problem is None else None
            ),
            content_type=response.headers.get("Content-Type"),
            final_url=current,
            content_location=_content_location(current, response.headers.get("Content-Location")),
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
    declared = _declared_length(response)
    if response.status_code == 304 or (declared is not None and declared <= _DRAIN_BYTES):
        async for _ in response.aiter_raw():
            pass


def _declared_length(response: httpx.Response) -> int | None:
    """Content-Length as a number, None when absent or not plain ASCII digits (a length of
    more than 18 digits is no length a body will reach: taken as "very large")."""
    declared = response.headers.get("Content-Length", "").strip()
    if not (declared.isascii() and declared.isdigit()):
        return None
    return int(declared) if len(declared) <= 18 else 10**18


async def _read_body(response: httpx.Response, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The body decoded by us, never more than max_bytes of it: (body, None) or (None, why)."""
    too_large = f"body larger than {max_bytes // (1024 * 1024)} MiB, not read"
    try:
        decoder = _decoder(response.headers.get("Content-Encoding", ""))
    except ValueError as e:
        return None, str(e)
    declared = _declared_length(response)
    if isinstance(decoder, _Identity) and declared is not None and declared > max_bytes:
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
    """A local feed file, never more than max_bytes of it; a FIFO, a device or a directory
    is refused rather than read (/dev/zero would never end, a FIFO would block the run)."""
    path = Path(path_name)
    too_large = f"file larger than {max_bytes // (1024 * 1024)} MiB"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return FetchResult(feed, error=f"not a regular file: {path}")
        if info.st_size > max_bytes:
            return FetchResult(feed, error=too_large)
        with path.open("rb") as file:
            body = file.read(max_bytes + 1)
        if len(body) > max_bytes:  # it grew since stat
            return FetchResult(feed, error=too_large)
        return FetchResult(feed, body=body)
    except FileNotFoundError:
        return FetchResult(feed, error=f"no such file: {path}")
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) else str(e)
        return FetchResult(feed, error=f"cannot read {path}: {reason}")
