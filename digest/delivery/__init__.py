"""Delivery: every channel's digests through one outbox.

CHANNELS names the ways a digest can leave (email, Markdown pages, webhooks); each is a
Channel (channel.py) and all of them share the outbox's rules (outbox.py): pending before the
first try, delivered exactly once per reader and local date, retried, an earlier undelivered
digest folded into today's. A new channel is one module and one entry in CHANNELS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime

from ..models import Config
from ..state import Store
from .channel import Channel, DeliveryReport, Outcome, Parcel, Progress, Recipient, Sender
from .outbox import Build, deliver_channel

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelFactory",
    "DeliveryReport",
    "Outcome",
    "Parcel",
    "Progress",
    "Recipient",
    "Sender",
    "deliver_all",
]

#: a channel for one run, from the config and the run's store
ChannelFactory = Callable[[Config, Store], Channel]


def _email(config: Config, store: Store) -> Channel:
    from .email import EmailChannel

    return EmailChannel(config)


def _markdown(config: Config, store: Store) -> Channel:
    from .markdown import MarkdownChannel

    return MarkdownChannel(config, store)


def _webhook(config: Config, store: Store) -> Channel:
    from .webhook import WebhookChannel

    return WebhookChannel(config)


#: every channel, in the order a run delivers them
CHANNELS: dict[str, ChannelFactory] = {
    "email": _email,
    "markdown": _markdown,
    "webhook": _webhook,
}


async def deliver_all(
    config: Config,
    store: Store,
    now: datetime,
    build: Build,
    *,
    dry_run: bool = False,
    only: Mapping[str, date] | None = None,
    progress: Progress | None = None,
) -> list[DeliveryReport]:
    """Every channel's due digests, channel after channel; see outbox.deliver_channel."""
    from ..render import clear_caches

    reports: list[DeliveryReport] = []
    try:
        for make in CHANNELS.values():
            channel = make(config, store)
            reports += await deliver_channel(
                channel, store, now, build, dry_run=dry_run, only=only, progress=progress
            )
    finally:
        clear_caches()  # what the run's digests shared is not kept until the next run
    return reports
