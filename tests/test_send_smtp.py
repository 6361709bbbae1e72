"""The reply to the end of DATA: a late one is waited for, a lost one is retried.

A real aiosmtpd server on 127.0.0.1 whose DATA handler queues the message and then either
sleeps before answering (a content filter scanning it) or drops the connection without
answering. The runs go through `pipeline.run` with the bundled example's two subscribers,
so the outbox's retries are the real ones.

- Slower than `[smtp] timeout` but within `data_timeout`: each subscriber gets exactly one
  copy (with one timeout for every command, the client gave up, retried, and sent two).
- Lost after the final dot: the server may have queued it, so it is a temporary failure and
  is retried: a possible duplicate is better than a lost digest (RFC 5321 §4.5.3.2.6, §6.1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from servers import HOST, _Controller, free_port

from digest import pipeline
from digest.config import load_config
from digest.models import Config, SmtpSettings

NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
#: seconds every other command may take
TIMEOUT = 0.5


class SlowFilter:
    """aiosmtpd handler: queues each message, then waits `delay` seconds before the 250, or
    drops the connection unanswered for the first `drop` messages."""

    def __init__(self, delay: float = 0.0, drop: int = 0) -> None:
        self.delay = delay
        self.drop = drop
        #: the recipients of each message queued, in order
        self.queued: list[tuple[str, ...]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.queued.append(tuple(envelope.rcpt_tos))
        if len(self.queued) <= self.drop:
            assert server.transport is not None
            server.transport.abort()  # queued, but the 250 never leaves
            return "250 2.0.0 queued (never sent)"
        await asyncio.sleep(self.delay)
        return "250 2.0.0 queued"


@pytest.fixture
def smtp_filter() -> Iterator[tuple[SlowFilter, int]]:
    handler = SlowFilter()
    port = free_port()
    controller = _Controller(
        handler, hostname=HOST, port=port, server_hostname="localhost", ready_timeout=5.0
    )
    controller.start()
    yield handler, port
    controller.stop()


def config_for(example_dir: Path, port: int, **smtp: float) -> Config:
    """The bundled example, sending over plain SMTP to the local server."""
    path = example_dir / "config.example.toml"
    path.write_text(
        path.read_text().replace(
            "# To send by email",
            f'[smtp]\nhost = "{HOST}"\nport = {port}\nsecurity = "none"\n'
            'from = "Morning papers <digest@example.org>"\n\n# To send by email',
        )
    )
    config = load_config(path)
    assert config.smtp is not None
    settings: SmtpSettings = replace(config.smtp, timeout=TIMEOUT, backoff=0.0, **smtp)
    return replace(config, smtp=settings)


def emailed(report: pipeline.RunReport) -> dict[str, str]:
    """Each subscriber's outcome (the example's Markdown page is a delivery too)."""
    return {d.reader: d.outcome for d in report.deliveries if d.outcome != "written"}


def test_a_reply_slower_than_timeout_but_within_data_timeout_gives_one_copy(
    example_dir: Path, smtp_filter: tuple[SlowFilter, int]
) -> None:
    handler, port = smtp_filter
    handler.delay = TIMEOUT * 3
    config = config_for(example_dir, port, data_timeout=TIMEOUT * 10)
    started = time.monotonic()
    report = pipeline.run(config, NOW)
    assert emailed(report) == {"ada": "sent", "grace": "sent"}
    assert sorted(handler.queued) == [("ada@example.org",), ("grace@example.org",)]
    assert time.monotonic() - started >= TIMEOUT * 3  # the reply really was that late


def test_a_reply_later_than_data_timeout_is_a_temporary_failure(
    example_dir: Path, smtp_filter: tuple[SlowFilter, int]
) -> None:
    """The other side of the line: past data_timeout the client gives up and retries. (This
    is what happened at `timeout`, before the end of DATA had its own.)"""
    handler, port = smtp_filter
    handler.delay = TIMEOUT * 3
    config = config_for(example_dir, port, data_timeout=TIMEOUT, attempts=2)
    report = pipeline.run(config, NOW)
    assert emailed(report) == {"ada": "failed", "grace": "failed"}
    errors = [d.error or "" for d in report.deliveries if d.outcome == "failed"]
    assert len(errors) == 2 and all("Timed out" in e for e in errors), errors
    assert len(handler.queued) == 4  # two copies each: why data_timeout must be long


def test_a_connection_lost_after_the_final_dot_is_retried(
    example_dir: Path, smtp_filter: tuple[SlowFilter, int]
) -> None:
    handler, port = smtp_filter
    handler.drop = 1
    config = config_for(example_dir, port, data_timeout=TIMEOUT * 10, attempts=3)
    report = pipeline.run(config, NOW)
    assert emailed(report) == {"ada": "sent", "grace": "sent"}
    # the first message was queued, its reply lost, and it was sent again: one duplicate,
    # never a lost digest
    assert len(handler.queued) == 3
    assert handler.queued.count(handler.queued[0]) == 2
