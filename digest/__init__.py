"""digest: one short, well-ranked digest a day from many feeds.

The library behind the `digest` command. Every function takes a loaded Config and the
instant to act at (`now`, timezone-aware), so a run can be replayed at any time:

    from datetime import UTC, datetime
    import digest

    config = digest.load_config("config.example.toml")
    report = digest.run(config, now=datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    for delivery in report.deliveries:
        print(delivery.reader, delivery.outcome, delivery.target)

Errors are DigestError's subclasses: ConfigError (the file, the key and why), StateError
(the state file), DeliveryError (one reader's digest), FeedError (one feed). The records
(Config, Entry, Pick, Digest, the reports) are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import load_config
from .errors import ConfigError, DeliveryError, DigestError, FeedError, StateError
from .models import Config, Delivery, Digest, Entry, Match, Pick, Profile, Ranking, Reader

if TYPE_CHECKING:
    from .delivery import DeliveryReport
    from .feeds import FeedReport
    from .pipeline import Explanation, RunReport

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "Delivery",
    "DeliveryError",
    "DeliveryReport",
    "Digest",
    "DigestError",
    "Entry",
    "Explanation",
    "FeedError",
    "FeedReport",
    "Match",
    "Pick",
    "Profile",
    "Ranking",
    "Reader",
    "RunReport",
    "StateError",
    "__version__",
    "collect",
    "deliver",
    "explain",
    "load_config",
    "preview",
    "run",
]


def run(config: Config, now: datetime, *, dry_run: bool = False) -> RunReport:
    """Collect every due feed, then deliver today's digest to every reader who has not had
    it (email, Markdown pages, webhooks), exactly once per reader and local date.

    `dry_run`: work on a scratch copy of the state; nothing is sent, written or recorded.
    Returns a RunReport: one FeedReport per feed, one DeliveryReport per reader; `failed`
    is True when a delivery failed (it is retried by the next run).
    Raises ConfigError when a secret the config names is missing from the environment,
    StateError when the state file is in use by another run or unusable."""
    from . import pipeline

    return pipeline.run(config, now, dry_run=dry_run)


def collect(config: Config, now: datetime) -> list[FeedReport]:
    """Fetch every due feed and store its new entries; deliver nothing.

    Returns one FeedReport per configured feed (a failing feed is reported, never raised).
    Raises StateError when the state file is in use or unusable."""
    from . import pipeline

    return pipeline.collect_only(config, now)


def deliver(config: Config, now: datetime, *, dry_run: bool = False) -> list[DeliveryReport]:
    """Deliver today's digests from what is already stored, without fetching anything.

    Returns one DeliveryReport per reader. Raises as `run` does."""
    from . import pipeline

    return pipeline.deliver_only(config, now, dry_run=dry_run)


def preview(config: Config, subscriber: str, now: datetime) -> Path:
    """Render what the subscriber named `subscriber` would get at `now`, on a scratch copy
    of the state (feeds are fetched into the copy); nothing is sent or recorded.

    Returns the path of the HTML file written under the config's output folder.
    Raises ConfigError when no subscriber has that name."""
    from . import pipeline

    return pipeline.preview(config, subscriber, now)


def explain(
    config: Config, subscriber: str, now: datetime, entries: Sequence[str] = ()
) -> Explanation:
    """Why the subscriber's digest (today's if it went out, else the one that would go out
    at `now`) holds what it holds: every entry ranked, picked or left out, with every
    contribution to its score. `entries`: ids or URLs to explain even if outside it.

    Reads the state as it is, without a lock; fetches nothing.
    Returns an Explanation: the scope explained, the Ranking (picks and left-out entries,
    each with its breakdown) and the collection statistics the scores used.
    Raises ConfigError when no subscriber has that name."""
    from . import pipeline

    return pipeline.explain(config, subscriber, now, entries)


def __getattr__(name: str) -> Any:
    # the reports live beside the stages that make them, which import httpx and friends:
    # `import digest` stays light until they are asked for
    if name == "FeedReport":
        from .feeds import FeedReport

        return FeedReport
    if name == "DeliveryReport":
        from .delivery import DeliveryReport

        return DeliveryReport
    if name in ("RunReport", "Explanation"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
