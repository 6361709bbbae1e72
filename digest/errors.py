"""The exceptions `digest` raises on purpose; every message is meant for the user."""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error `digest` raises on purpose; its message is for the user."""


class ConfigError(DigestError):
    """The configuration file is unreadable or invalid; nothing was fetched or sent."""

    def __init__(self, path: str, key: str | None, reason: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


class FeedError(DigestError):
    """One feed could not be fetched or parsed; the other feeds are unaffected."""

    def __init__(self, feed: str, reason: str) -> None:
        super().__init__(f"feed {feed!r}: {reason}")
        self.feed = feed
        self.reason = reason


class StateError(DigestError):
    """The state file cannot be opened, migrated or written."""


class StateLockedError(StateError):
    """Another `digest` process holds the state file."""


class StateRowError(StateError):
    """One row of the state file cannot be read back (edited by hand, or damaged): it costs
    the entry, feed or reader it belongs to, not the run."""


class TemplateError(DigestError):
    """A template cannot be loaded or rendered."""


class DeliveryError(DigestError):
    """A digest could not be delivered; it stays in the outbox.

    `transient` errors (4xx replies, connection problems) are worth retrying; permanent
    ones (5xx, a refused login) are not.
    """

    def __init__(
        self,
        recipient: str,
        reason: str,
        *,
        transient: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"delivery to {recipient}: {reason}")
        self.recipient = recipient
        self.reason = reason
        self.transient = transient
        #: seconds the far end asked to wait before trying again (inf: not in this run)
        self.retry_after = retry_after
