"""The `digest` command: parses arguments, calls the pipeline, prints short results."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from . import __version__, pipeline
from .config import load_config
from .errors import ConfigError, DigestError
from .models import Config, FetchResult
from .urls import endpoint, redacted

EXIT_FAILED = 1
EXIT_CONFIG = 2


def _parse_now(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 date and time") from None
    # a time without an offset is read as UTC, so --now means the same on every machine
    return when if when.tzinfo else when.replace(tzinfo=UTC)


NOW = click.option(
    "--now",
    callback=_parse_now,
    metavar="ISO-8601",
    help="Act as if it were this instant (ISO-8601; UTC unless an offset is given).",
)
CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The TOML configuration file.",
)


@click.group()
@click.version_option(__version__, prog_name="digest")
@click.option("-v", "--verbose", is_flag=True, help="Print more detail to stderr.")
def cli(verbose: bool) -> None:
    """One short, well-ranked digest a day from many feeds."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("digest")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False


@cli.command()
@CONFIG
@NOW
@click.option("--dry-run", is_flag=True, help="Render and report; send, write and record nothing.")
def run(config_path: str, now: datetime | None, dry_run: bool) -> None:
    """Collect every feed, then deliver today's digests."""
    config = _load(config_path)
    with _failures_exit(), _run_progress(config) as (on_feed, progress):
        report = pipeline.run(
            config, now or _now(), dry_run=dry_run, on_feed=on_feed, progress=progress
        )
    _print_feeds(report.feeds)
    _print_deliveries(report.deliveries)
    if report.failed:
        _err("some deliveries failed; they will be retried on the next run")
    if report.state_problems:
        _err(f"{len(report.state_problems)} rows of the state file could not be read (above)")
    failed_feeds = [f for f in report.feeds if f.status == "error"]
    if failed_feeds:
        n = len(failed_feeds)
        _err(f"{n} feed{'s' if n != 1 else ''} failed (above); the others were read")
    if report.failed or report.state_problems or failed_feeds:
        sys.exit(EXIT_FAILED)


@cli.command()
@CONFIG
@NOW
def collect(config_path: str, now: datetime | None) -> None:
    """Fetch every feed and store new entries; deliver nothing."""
    config = _load(config_path)
    with _failures_exit(), _progress(config) as on_feed:
        feeds = pipeline.collect_only(config, now or _now(), on_feed)
    _print_feeds(feeds)
    if any(f.status == "error" for f in feeds):
        sys.exit(EXIT_FAILED)  # the rest is stored; a failed feed is still worth a status


@cli.command()
@CONFIG
@click.option("--subscriber", required=True, help="The subscriber's name.")
@NOW
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in your browser.")
def preview(config_path: str, subscriber: str, now: datetime | None, open_browser: bool) -> None:
    """Render a subscriber's digest as of now without sending or recording; print its path."""
    config = _load(config_path)
    with _failures_exit(), _progress(config) as on_feed:
        path = pipeline.preview(config, subscriber, now or _now(), on_feed)
    click.echo(str(path))
    if open_browser:
        click.launch(str(path))


@cli.command()
@CONFIG
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="The folder to write the HTML archive into.",
)
def archive(config_path: str, out: str) -> None:
    """Render every Markdown digest written so far into a static HTML archive."""
    config = _load(config_path)
    with _failures_exit():
        pages = pipeline.archive(config, Path(out))
    _err(f"archived {len(pages)} pages; open {Path(out) / 'index.html'}")


@cli.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def check_config(config_path: str) -> None:
    """Validate a configuration file and summarise it."""
    config = _load(config_path)
    s = config.settings
    click.echo(f"{config_path}: OK")
    click.echo(f"  title: {s.title}; state: {s.state}; timezone: {s.timezone}")
    click.echo(f"  feeds ({len(config.feeds)}):")
    for feed in config.feeds:
        weight = f" ×{feed.weight:g}" if feed.weight != 1.0 else ""
        click.echo(f"    {feed.name}: {redacted(feed.url)}{weight}")
    many = len(config.profiles) > LIST_AT_MOST
    more = f": more than {LIST_AT_MOST}, so not listed one by one" if many else ":"
    click.echo(f"  profiles ({len(config.profiles):,}){more}")
    for profile in () if many else config.profiles.values():
        terms = ", ".join(term for term, _ in profile.keywords)
        limits = f"max {profile.max_entries}, min score {profile.min_score:g}"
        if profile.sections == "feed":
            limits += "; sections by feed"
        elif profile.sections == "tag":
            limits += "; sections by tag: " + ", ".join(tag for tag, _ in profile.tags)
        click.echo(f"    {profile.name}: {terms}; {limits}")
    _print_subscribers(config)
    delivery = (
        f"SMTP {config.smtp.host}:{config.smtp.port} ({config.smtp.security})"
        if config.smtp
        else f"files in {s.output}"
    )
    click.echo(f"  email delivery: {delivery}")
    for out in config.markdown:
        index = f", index {out.index}" if out.index else ""
        click.echo(f"  markdown: {out.path} (profile {out.profile}{index})")
    for hook in config.webhooks:
        click.echo(
            f"  webhook {hook.name}: {endpoint(hook.url)} ({hook.format}, profile "
            f"{hook.profile}, at {hook.send_at:%H:%M} {hook.timezone})"
        )


#: subscribers check-config lists one by one; beyond, it gives their counts only
LIST_AT_MOST = 20


def _print_subscribers(config: Config) -> None:
    """Counts, by where they came from; each subscriber only when there are few."""
    total = len(config.subscribers)
    listed = sum(x.count for x in config.subscriber_lists)
    sources = [f"{total - listed:,} in the config"] + [
        f"{x.count:,} from {os.path.relpath(x.path, config.path.parent)}"
        for x in config.subscriber_lists
    ]
    origin = f" ({', '.join(sources)})" if config.subscriber_lists else ""
    few = total <= LIST_AT_MOST
    more = "" if few else f"; more than {LIST_AT_MOST}, so not listed one by one"
    click.echo(f"  subscribers: {total:,}{origin}{more}")
    for sub in config.subscribers if few else ():
        click.echo(
            f"    {sub.name} <{sub.email}>: profile {sub.profile}, "
            f"at {sub.send_at:%H:%M} {sub.timezone}"
        )


@cli.command()
@CONFIG
@NOW
def feeds(config_path: str, now: datetime | None) -> None:
    """Show each feed's health: last success, status, entries, next fetch, problems."""
    config = _load(config_path)
    now = now or _now()
    with _failures_exit():
        health = pipeline.feed_health(config)
    rows = [("feed", "last success", "status", "entries", "next fetch", "notes", "last error")]
    moved: list[tuple[str, str]] = []
    for feed, st in health:
        if st is None:
            rows.append((feed.name, "never", "-", "-", "now", "not fetched yet", ""))
            continue
        notes = []
        if st.gone is not None:
            notes.append(f"gone since {st.gone:%Y-%m-%d}")
            next_fetch = "never"
        elif st.next_fetch is not None and st.next_fetch > now:
            failures = f"{st.failures} failure{'s' if st.failures != 1 else ''} in a row"
            notes.append(f"backing off ({failures})")
            next_fetch = _when(st.next_fetch)
        else:
            next_fetch = "now"
        if st.moved_to:
            notes.append(f"moved to {st.moved_to}")
            moved.append((feed.name, st.moved_to))
        rows.append(
            (
                feed.name,
                _when(st.last_success) if st.last_success else "never",
                st.last_status or "-",
                str(st.entries_seen),
                next_fetch,
                "; ".join(notes),
                " ".join((st.last_error or "").split()),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    for name, url in moved:
        click.echo(
            f"\nfeed {name!r} moved permanently; it is read from the new address, but "
            f'please set url = "{url}" in {config_path}'
        )


@cli.command()
@CONFIG
def serve(config_path: str) -> None:
    """Run the scheduler: each digest at its subscriber's send_at, in their time zone.

    Stops cleanly on SIGTERM or SIGINT (the delivery in progress finishes first) and reloads
    the configuration on SIGHUP.
    """
    from . import schedule  # only the commands that need APScheduler import it

    config = _load(config_path)
    logger = logging.getLogger("digest")
    logger.setLevel(min(logger.level, logging.INFO))
    stamped = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    for handler in logger.handlers:
        handler.setFormatter(stamped)
    apscheduler = logging.getLogger("apscheduler")
    apscheduler.handlers[:] = logger.handlers
    apscheduler.setLevel(logging.WARNING)
    apscheduler.propagate = False
    with _failures_exit():
        schedule.serve(Path(config_path), config)


@cli.command()
@CONFIG
@NOW
def status(config_path: str, now: datetime | None) -> None:
    """Show each subscriber's next delivery (local and UTC) and last result."""
    from . import schedule

    config = _load(config_path)
    with _failures_exit():
        pid, subscribers = schedule.status(config, now or _now())
    running = f"running (pid {pid})" if pid and pid > 0 else "running (pid unknown)"
    click.echo(f"digest serve: {running}" if pid else "digest serve: not running")
    for s in subscribers:
        click.echo(
            f"{s.name}: next {s.next.local.isoformat(timespec='minutes')} "
            f"({s.next.at:%Y-%m-%dT%H:%MZ}); last: {s.last_result}"
        )


@cli.command("schedule")
@CONFIG
@click.option(
    "--from",
    "start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First local date (default: today in [digest] timezone).",
)
@click.option("--days", type=click.IntRange(1, 3660), default=7, show_default=True)
def schedule_command(config_path: str, start: datetime | None, days: int) -> None:
    """Print every planned delivery: subscriber, UTC time, local time (tab-separated)."""
    from . import schedule

    config = _load(config_path)
    first = start.date() if start else _now().astimezone(ZoneInfo(config.settings.timezone)).date()
    for planned in schedule.calendar(schedule.scheduled(config), first, days):
        click.echo(schedule.calendar_line(planned))


@cli.command()
@CONFIG
@click.option("--subscriber", required=True, help="The subscriber's name.")
@click.option(
    "--entry",
    "entries",
    multiple=True,
    metavar="ID|URL",
    help="Explain only this entry (repeatable); also entries outside the digest's window.",
)
@NOW
def explain(
    config_path: str, subscriber: str, entries: tuple[str, ...], now: datetime | None
) -> None:
    """Print why each entry was picked or left out of a subscriber's digest, term by term."""
    from .rank import breakdown
    from .typeset import plain  # feed text reaches a terminal: no escape sequences, no bidi

    config = _load(config_path)
    with _failures_exit():
        found = pipeline.explain(config, subscriber, now or _now(), entries)
    profile = found.reader.profile
    ranking = found.ranking
    click.echo(f"{found.reader.name}, profile {profile.name!r}: {found.scope}")
    click.echo(
        f"{len(ranking.picks)} picked, {len(ranking.left_out)} left out; field lengths from "
        f"{found.collection.documents} entries in the state file"
    )
    blocks = [
        (p, f"{i}. picked" + (f", in section {p.section!r}" if p.section else ""))
        for i, p in enumerate(ranking.picks, 1)
    ]
    blocks += [(x.pick, f"left out: {x.reason}") for x in ranking.left_out]
    blocks += list(found.elsewhere)
    unmatched = 0
    for pick, status in blocks:
        entry = pick.entry
        if entries and entry.id not in entries and entry.link not in entries:
            continue
        if not entries and not pick.matches:
            unmatched += 1
            continue
        where = plain(entry.link or entry.id)
        click.echo(f"\n{plain(entry.title)}\n  {where}\n  {plain(status)}")
        for line in breakdown(pick, profile):
            click.echo(f"    {plain(line)}")
    if unmatched:
        click.echo(f"\n…and {unmatched} entries that matched no term of the profile")
    known = {p.entry.id for p, _ in blocks} | {p.entry.link for p, _ in blocks}
    missing = [e for e in entries if e not in known]
    if missing:
        days = pipeline.COLLECTION_WINDOW.days
        _err(f"not found in the state file's last {days} days: {', '.join(missing)}")
        sys.exit(EXIT_FAILED)


def main() -> None:
    cli()


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        _err(f"error: {e}")
        sys.exit(EXIT_CONFIG)


@contextmanager
def _failures_exit() -> Iterator[None]:
    try:
        yield
    except ConfigError as e:
        _err(f"error: {e}")
        sys.exit(EXIT_CONFIG)
    except DigestError as e:
        _err(f"error: {e}")
        sys.exit(EXIT_FAILED)


@contextmanager
def _progress(config: Config) -> Iterator[Callable[[FetchResult], None] | None]:
    """A progress bar over the feeds when stderr is a terminal; nothing otherwise."""
    if not sys.stderr.isatty() or len(config.feeds) < 2:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("fetching feeds", total=len(config.feeds))
        yield lambda _result: progress.advance(task)


class _DeliveryBar:
    """A rich progress bar over a run's deliveries: built, delivered, failed."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._built = progress.add_task("ranked and rendered", total=0)
        self._done = progress.add_task("delivered", total=0)
        self._failed = 0

    def due(self, readers: int) -> None:
        for task in (self._built, self._done):
            total = self._progress.tasks[task].total or 0
            self._progress.update(task, total=total + readers)

    def built(self, readers: int) -> None:
        self._progress.advance(self._built, readers)

    def done(self, report: pipeline.DeliveryReport) -> None:
        if report.outcome == "failed":
            self._failed += 1
            self._progress.update(self._done, description=f"delivered ({self._failed} failed)")
        self._progress.advance(self._done)


@contextmanager
def _run_progress(
    config: Config,
) -> Iterator[tuple[Callable[[FetchResult], None] | None, _DeliveryBar | None]]:
    """One progress display for a run when stderr is a terminal: the feeds fetched, the
    digests ranked and rendered, delivered and failed. Nothing otherwise."""
    if not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("fetching feeds", total=len(config.feeds))
        yield (lambda _result: progress.advance(task)), _DeliveryBar(progress)


#: up to this many deliveries, a run prints one line each; past it, the failed ones and a
#: summary (a morning of 100,000 readers is not 100,000 lines of a cron mail or journal)
DELIVERY_LINES = 100


def _print_deliveries(deliveries: Sequence[pipeline.DeliveryReport]) -> None:
    verbose = logging.getLogger("digest").isEnabledFor(logging.DEBUG)
    every = verbose or len(deliveries) <= DELIVERY_LINES
    for d in deliveries:
        if every or d.outcome == "failed":
            _err(_delivery_line(d))
    if not every:
        counts = Counter(d.outcome for d in deliveries)
        parts = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(counts.items()))
        _err(f"{len(deliveries):,} deliveries: {parts}")


def _print_feeds(feeds: list[pipeline.FeedReport] | tuple[pipeline.FeedReport, ...]) -> None:
    new = sum(f.new for f in feeds)
    failed = [f for f in feeds if f.status == "error"]
    held = [f for f in feeds if f.status in ("gone", "skipped")]
    rest = f", {len(held)} skipped" if held else ""
    _err(f"collected {len(feeds)} feeds: {new} new entries, {len(failed)} failed{rest}")
    for f in feeds:
        if f.status == "gone":
            _err(f"  feed {f.name!r} is gone ({f.error}); not fetched until its url changes")
        elif f.status == "skipped":
            until = _when(f.until) if f.until else "later"
            _err(f"  feed {f.name!r} skipped until {until} (last error: {f.error})")
        elif f.error:
            retry = f"; next try {_when(f.until)}" if f.until else ""
            _err(f"  feed {f.name!r} failed: {f.error}{retry}")
        elif f.warning:
            _err(f"  feed {f.name!r}: {f.warning}")
        else:
            logging.getLogger("digest").debug("  feed %r: %s, %d new", f.name, f.status, f.new)
        if f.moved_to:
            _err(f"  feed {f.name!r} moved permanently to {f.moved_to}; update its url")


def _delivery_line(d: pipeline.DeliveryReport) -> str:
    day = d.local_date.isoformat()
    match d.outcome:
        case "sent" | "written":
            return f"{d.reader} {day}: {d.picks} picks → {d.target}"
        case "empty":
            return f"{d.reader} {day}: nothing new, no email"
        case "already":
            return f"{d.reader} {day}: already delivered, nothing sent"
        case "dry-run":
            target = f" → {d.target}" if d.target else ""
            return f"{d.reader} {day}: {d.picks} picks (dry run, not sent){target}"
        case "failed":
            return f"{d.reader} {day}: FAILED: {d.error}"


def _when(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%MZ}"


def _err(line: str) -> None:
    click.echo(line, err=True)


def _now() -> datetime:
    return datetime.now(UTC)
