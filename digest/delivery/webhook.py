"""The webhook channel: one JSON POST per reader and local date, to a chat (a Slack
incoming webhook, or anything that takes Slack's body) or to any HTTP endpoint.

`format = "json"`: {"title", "date", "profile", "picks": [{"title", "url", "score", "why",
"section"}]}. `format = "slack"`: {"text": <fallback>, "blocks": [...]}: a header block and
one mrkdwn section per pick, within Slack's limits (50 blocks, 3,000 characters a text).
2xx is delivered; 429 and 5xx are retried within the run (a Retry-After of up to 60 s is
honoured), then stay pending for the next run; any other answer fails the delivery. The
URL's path is its credential: reports and logs show only `urls.endpoint(url)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

import httpx

from ..errors import DeliveryError
from ..models import Config, Digest, Pick, Reader, WebhookOutput
from ..typeset import plain
from ..urls import endpoint
from .channel import Parcel, Recipient, Sender

#: Slack's limits for one message: blocks, and characters in one text field
SLACK_BLOCKS = 50
SLACK_TEXT = 3000
#: a Retry-After longer than this is not waited for within the run: the digest stays pending
RETRY_AFTER_MAX = 60.0
#: characters of an error answer's body shown in the report
ERROR_BODY = 200
TIMEOUT = 30.0


def webhook_reader(config: Config, webhook: WebhookOutput) -> Reader:
    return Reader(
        key=f"webhook:{webhook.name}",
        name=webhook.name,
        profile=config.profiles[webhook.profile],
        timezone=webhook.timezone,
    )


class WebhookChannel:
    """Every [[webhooks]] entry's digest, POSTed as JSON."""

    kind = "webhook"
    empty_too = False
    delivered: Literal["sent", "written"] = "sent"

    def __init__(self, config: Config) -> None:
        self._config = config
        self._hooks = {w.name: w for w in config.webhooks}
        smtp = config.smtp
        self.attempts = smtp.attempts if smtp else 3
        self.backoff = smtp.backoff if smtp else 2.0

    def recipients(self) -> Sequence[Recipient]:
        return [Recipient(webhook_reader(self._config, w)) for w in self._config.webhooks]

    def prepare(self, digest: Digest, recipient: Recipient, now: datetime) -> Parcel:
        hook = self._hooks[recipient.reader.name]
        body = slack_body(digest) if hook.format == "slack" else json_body(digest, hook.profile)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self.resume(recipient, raw, digest.local_date, len(digest.picks))

    def resume(self, recipient: Recipient, body: bytes, day: date, picks: int) -> Parcel:
        reader = recipient.reader
        where = endpoint(self._hooks[reader.name].url)
        return Parcel(reader.key, reader.name, day, body, picks, target=where)

    def senders(self, parcels: int) -> list[Sender]:
        return [_Poster(self._hooks) for _ in range(max(1, min(4, parcels)))]

    def finish(self, delivered: Sequence[Recipient]) -> None:
        return None


def json_body(digest: Digest, profile: str) -> dict[str, Any]:
    return {
        "title": _inert(digest.title),
        "date": digest.local_date.isoformat(),
        "profile": profile,
        "picks": [
            {
                "title": _inert(p.entry.title),
                "url": _inert(p.entry.link or ""),
                "score": p.score,
                "why": _why(p),
                "section": _inert(p.section or ""),
            }
            for p in digest.picks
        ],
    }


def slack_body(digest: Digest) -> dict[str, Any]:
    """Slack's incoming-webhook body: the fallback text, a header, a section per pick; cut
    to Slack's limits with a last line saying how many picks were left out."""
    heading = _cut(f"{_inert(digest.title)} — {digest.local_date.isoformat()}", 150)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading}}
    ]
    room = SLACK_BLOCKS - 2  # the header, and a possible "n more" line
    shown = digest.picks[:room] if len(digest.picks) > SLACK_BLOCKS - 1 else digest.picks
    for pick in shown:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_pick(pick)}})
    left = len(digest.picks) - len(shown)
    if left:
        more = f"{left} more in today's digest"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    count = len(digest.picks)
    text = _cut(f"{heading}: {count} new pick{'s' if count != 1 else ''}", SLACK_TEXT)
    return {"text": text, "blocks": blocks}


def _slack_pick(pick: Pick) -> str:
    title = _mrkdwn(pick.entry.title)
    link = pick.entry.link or ""
    line = f"*<{_slack_url(link)}|{title}>*" if _linkable(link) else f"*{title}*"
    why = _why(pick)
    return _cut(f"{line}\n{_mrkdwn(why)}" if why else line, SLACK_TEXT)


def _why(pick: Pick) -> str:
    from ..rank import why

    return _inert(why(pick))


def _inert(text: str) -> str:
    """Feed text as every output shows it: no control or bidi characters (typeset.plain)."""
    return plain(text)


def _mrkdwn(text: str) -> str:
    """Text for Slack's mrkdwn: its three control characters escaped, as Slack asks."""
    return _inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _linkable(url: str) -> bool:
    return url.startswith(("https://", "http://")) and not any(c in url for c in " |<>")


def _slack_url(url: str) -> str:
    return _inert(url).replace("&", "&amp;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Poster:
    """One HTTP client POSTing parcels to their webhooks (no redirects followed: a moved
    webhook is an error to fix in the config, not a place to send the digest)."""

    def __init__(self, hooks: dict[str, WebhookOutput]) -> None:
        self._hooks = hooks
        self._client: httpx.AsyncClient | None = None

    async def send(self, parcel: Parcel) -> str:
        hook = self._hooks[parcel.name]
        where = endpoint(hook.url)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        try:
            response = await self._client.post(
                hook.url,
                content=parcel.body,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.HTTPError as e:
            # never str(e) of a request error: it holds the whole URL, whose path is secret
            raise DeliveryError(hook.name, f"POST to {where} failed: {type(e).__name__}") from e
        status = response.status_code
        if 200 <= status < 300:
            return f"{where} ({status})"
        start = _inert(response.text[:ERROR_BODY]).strip()
        reason = f"{where} answered {status}" + (f": {start}" if start else "")
        if status == 429 or status >= 500:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise DeliveryError(hook.name, reason, transient=True, retry_after=wait)
        raise DeliveryError(hook.name, reason, transient=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After of seconds; an HTTP date, or anything longer than
    RETRY_AFTER_MAX, is not waited for in this run (inf: try again at the next run)."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return float("inf")
    seconds = float(int(text))
    return seconds if seconds <= RETRY_AFTER_MAX else float("inf")
