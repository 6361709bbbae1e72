"""Feeds → bytes: HTTP with conditional GET, or a local file. Nothing here parses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from . import __version__
from .models import FeedConfig, FeedStatus, FetchResult

USER_AGENT = f"digest/{__version__} (feed digest; +https://pypi.org/project/digest/)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5


async def fetch_all(
    feeds: Sequence[FeedConfig],
    known: Mapping[str, FeedStatus],
    *,
    timeout: float = 30.0,
    concurrency: int = 8,
    max_bytes: int = MAX_BYTES,
    on_done: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every feed at once (up to `concurrency`), in config order; errors are results."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    ) as client:

        async def one(feed: FeedConfig) -> FetchResult:
            async with limit:
                try:
                    async with asyncio.timeout(timeout):
                        if feed.is_http:
                            result = await _fetch_http(client, feed, known.get(feed.url), max_bytes)
                        else:
                            result = _read_file(feed, max_bytes)
                except TimeoutError:
                    result = FetchResult(feed, error=f"timed out after {timeout:g} s")
            if on_done is not None:
                on_done(result)
            return result

        return list(await asyncio.gather(*(one(feed) for feed in feeds)))


async def _fetch_http(
    client: httpx.AsyncClient, feed: FeedConfig, status: FeedStatus | None, max_bytes: int
) -> FetchResult:
    headers: dict[str, str] = {}
    if status is not None:
        if status.etag:
            headers["If-None-Match"] = status.etag
        if status.last_modified:
            headers["If-Modified-Since"] = status.last_modified
    try:
        async with client.stream("GET", feed.source, headers=headers) as response:
            if response.status_code == 304:
                return FetchResult(
                    feed,
                    status=304,
                    etag=response.headers.get("ETag") or (status.etag if status else None),
                    last_modified=response.headers.get("Last-Modified")
                    or (status.last_modified if status else None),
                )
            if response.status_code >= 400:
                return FetchResult(
                    feed,
                    status=response.status_code,
                    error=f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    return FetchResult(
                        feed,
                        status=response.status_code,
                        error=f"body larger than {max_bytes // (1024 * 1024)} MiB, not read",
                    )
            return FetchResult(
                feed,
                status=response.status_code,
                body=bytes(body),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                content_type=response.headers.get("Content-Type"),
            )
    except httpx.TooManyRedirects:
        return FetchResult(feed, error=f"more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException:
        return FetchResult(feed, error="timed out")
    except httpx.HTTPError as e:
        return FetchResult(feed, error=f"cannot fetch: {e or type(e).__name__}")


def _read_file(feed: FeedConfig, max_bytes: int) -> FetchResult:
    path = Path(feed.source)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return FetchResult(feed, error=f"file larger than {max_bytes // (1024 * 1024)} MiB")
        return FetchResult(feed, body=path.read_bytes())
    except FileNotFoundError:
        return FetchResult(feed, error=f"no such file: {path}")
    except OSError as e:
        return FetchResult(feed, error=f"cannot read {path}: {e.strerror}")
