"""TOML → validated `Config`. Every problem is one line naming the file and the key.

The parts: `tables` reads a table whose keys, types and defaults are its record's fields
(models.py); `checks` holds the value checks, keyed by table and key; `profiles` reads the
profile language. This module reads the document: which tables there are, what is checked
across them (names unique, profiles defined, plaintext SMTP only to a loopback host).

A new option of an existing table is one field in models.py and, if its value needs more
than its type, one entry in checks.CHECKS.
"""

from __future__ import annotations

import gc
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..models import (
    FEED_TYPES,
    Config,
    FeedConfig,
    FeedType,
    FetchSettings,
    MarkdownOutput,
    Profile,
    Settings,
    SmtpSettings,
    Subscriber,
    SubscriberList,
    WebhookOutput,
)
from ..urls import url_problem
from .checks import (
    MAX_KEEP_DAYS,
    MAX_SMTP_TIMEOUT,
    address_problem,
    is_loopback,
    one_line,
    sender_problem,
    shown_url,
)
from .lists import MAX_LIST_BYTES, read_list, shown_list
from .profiles import ProfileReader
from .tables import Spec

__all__ = [
    "MAX_KEEP_DAYS",
    "MAX_LIST_BYTES",
    "MAX_SMTP_TIMEOUT",
    "address_problem",
    "is_loopback",
    "load_config",
    "sender_problem",
]

_TOP_KEYS = {
    "digest",
    "smtp",
    "fetch",
    "feeds",
    "profiles",
    "subscribers",
    "subscriber_lists",
    "markdown",
    "webhooks",
}
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
_SEND_AT = time(7, 0)
#: a state that is a URL (a database) rather than a path: `scheme://`
_STORE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

# the file's defaults for what the records leave without one; every other default is the
# record's own (models.py)
SETTINGS = Spec(
    Settings,
    "digest",
    custom=frozenset({"state"}),
    defaults={
        "title": "Digest",
        "state": "digest.sqlite",
        "output": "out",
        "timezone": "UTC",
        "max_entries": 20,
        "min_score": 1.0,
    },
)
SMTP = Spec(SmtpSettings, "smtp", toml_names={"sender": "from"}, defaults={"security": "starttls"})
FETCH = Spec(FetchSettings, "fetch")
FEED = Spec(FeedConfig, "feeds", derived=frozenset({"source"}), custom=frozenset({"type"}))
SUBSCRIBER = Spec(Subscriber, "subscribers", defaults={"send_at": _SEND_AT})
SUBSCRIBER_LIST = Spec(SubscriberList, "subscriber_lists", derived=frozenset({"count"}))
MARKDOWN = Spec(MarkdownOutput, "markdown", custom=frozenset({"path"}))
WEBHOOK = Spec(WebhookOutput, "webhooks", defaults={"send_at": _SEND_AT})


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise ConfigError on the first problem."""
    path = Path(path)
    shown = one_line(str(path))
    if "\0" in str(path):
        raise ConfigError(shown, None, "the file name holds a NUL character")
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except RecursionError as e:
        raise ConfigError(shown, None, "not usable TOML: tables or arrays nested too deeply") from e
    except FileNotFoundError as e:
        raise ConfigError(shown, None, "no such file") from e
    except OSError as e:
        raise ConfigError(shown, None, f"cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(shown, None, f"not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(shown, None, f"not UTF-8 text (byte {e.start + 1})") from e
    resolved = path.resolve()
    return _Document(shown, resolved.parent).config(raw, resolved)


class _Document(ProfileReader):
    """The whole file: its tables, and what is checked across them."""

    def config(self, raw: Mapping[str, Any], path: Path) -> Config:
        self.table(raw, "", _TOP_KEYS)
        fields = self.record_fields(SETTINGS, raw.get("digest", {}), "digest")
        settings = Settings(**fields, state=self.state(raw.get("digest", {})))
        smtp = self.smtp(raw["smtp"]) if "smtp" in raw else None
        fetch = FetchSettings(**self.record_fields(FETCH, raw.get("fetch", {}), "fetch"))
        feeds = self.items(raw, "feeds", self.feed)
        names = [f.name for f in feeds]
        for i, name in enumerate(names):
            self.check(names.index(name) == i, f"feeds[{i}].name", f"duplicate feed name {name!r}")
        self.check(bool(feeds), "feeds", "at least one [[feeds]] entry is needed")
        profiles_raw = raw.get("profiles", {})
        self.check(isinstance(profiles_raw, dict), "profiles", "must be a table of profiles")
        profiles = {
            name: self.profile(name, value, settings) for name, value in profiles_raw.items()
        }
        zone = {"timezone": settings.timezone}
        subscribers = self.items(
            raw,
            "subscribers",
            lambda v, k: Subscriber(**self.record_fields(SUBSCRIBER, v, k, defaults=zone)),
        )
        markdown = self.items(raw, "markdown", self.markdown)
        webhooks = self.items(
            raw,
            "webhooks",
            lambda v, k: WebhookOutput(**self.record_fields(WEBHOOK, v, k, defaults=zone)),
        )
        readers = _Names(profiles)
        for i, sub in enumerate(subscribers):
            readers.claim(sub.name, "subscriber", sub.profile, self.shown, f"subscribers[{i}]")
        lists = self.subscriber_lists(raw, zone, readers, subscribers)
        for i, page in enumerate(markdown):
            name = _markdown_name(page.path, path)
            readers.claim(name, "markdown page", page.profile, self.shown, f"markdown[{i}]", "path")
        for i, hook in enumerate(webhooks):
            readers.claim(hook.name, "webhook", hook.profile, self.shown, f"webhooks[{i}]")
        return Config(
            path=path,
            settings=settings,
            smtp=smtp,
            feeds=tuple(feeds),
            profiles=profiles,
            subscribers=tuple(subscribers),
            markdown=tuple(markdown),
            fetch=fetch,
            webhooks=tuple(webhooks),
            subscriber_lists=tuple(lists),
        )

    def subscriber_lists(
        self,
        raw: Mapping[str, Any],
        zone: Mapping[str, str],
        names: _Names,
        subscribers: list[Subscriber],
    ) -> list[SubscriberList]:
        """Each `[[subscriber_lists]]` file's rows, appended to `subscribers` in order."""
        tables = self.items(raw, "subscriber_lists", self.list_table)
        lists = []
        for i, (listed, written) in enumerate(tables):
            key = f"subscriber_lists[{i}]"
            same = [j for j, (other, _) in enumerate(tables[:i]) if other.path == listed.path]
            if same:
                raise self.fail(f"{key}.path", f"the same file as subscriber_lists[{same[0]}]")
            shown = shown_list(self.shown, written)
            before = len(subscribers)
            seen, profiles = names.seen, names.profiles
            with _no_collection():
                for line, sub in read_list(self, SUBSCRIBER, listed.path, shown, zone, key=key):
                    if sub.name in seen or sub.profile not in profiles:
                        names.claim(sub.name, "subscriber", sub.profile, shown, line)  # raises
                    seen[sub.name] = ("subscriber", shown, line)  # names.claim, inlined
                    subscribers.append(sub)
            lists.append(SubscriberList(path=listed.path, count=len(subscribers) - before))
        return lists

    def list_table(self, value: object, key: str) -> tuple[SubscriberList, str]:
        """A `[[subscriber_lists]]` table: its file, resolved, and as written."""
        listed = SubscriberList(**self.record_fields(SUBSCRIBER_LIST, value, key))
        return listed, cast(Mapping[str, Any], value)["path"]

    def smtp(self, value: object) -> SmtpSettings:
        if isinstance(value, dict) and "password" in value:
            raise self.fail(
                "smtp.password",
                "passwords do not belong in the config file; put it in an environment "
                "variable and name that variable with password_env",
            )
        security = value.get("security") if isinstance(value, dict) else None
        port = _DEFAULT_PORTS.get(security if isinstance(security, str) else "starttls", 587)
        fields = self.record_fields(SMTP, value, "smtp", defaults={"port": port})
        smtp = SmtpSettings(**fields)
        self.check(
            smtp.security != "none" or is_loopback(smtp.host),
            "smtp.security",
            f"'none' sends mail and passwords in clear text; it is only allowed for a "
            f"loopback host, not {smtp.host!r}",
        )
        self.check(
            smtp.username is None or smtp.password_env is not None,
            "smtp.password_env",
            "missing: with a username, name the environment variable holding the password",
        )
        return smtp

    def feed(self, value: object, key: str) -> FeedConfig:
        fields = self.record_fields(FEED, value, key)
        t = cast(Mapping[str, Any], value)
        url: str = fields["url"]
        kind = self.get(t, key, "type", str, None)
        self.check(
            kind is None or kind in FEED_TYPES,
            f"{key}.type",
            f"unknown feed type {kind!r} (one of: {', '.join(FEED_TYPES)})",
        )
        self.check(
            not re.search(r"[{}]", url.replace("{date}", "")),
            f"{key}.url",
            f"{{date}} is the only placeholder a feed URL may hold: {shown_url(url)}",
        )
        scheme, sep, rest = url.partition("://")
        if sep and scheme.lower() in ("http", "https"):
            problem = url_problem(url.replace("{date}", "2000-01-01"))
            self.check(problem is None, f"{key}.url", f"{shown_url(url)}: {problem}")
            source = scheme.lower() + sep + rest  # "HTTP://" is valid; fetch compares lower case
        elif sep and scheme.lower() == "file":
            source = str(self.path(rest, f"{key}.url"))
        else:
            self.check(
                "://" not in url, f"{key}.url", f"unsupported URL scheme in {shown_url(url)}"
            )
            source = str(self.path(url, f"{key}.url"))
        return FeedConfig(**fields, source=source, type=cast(FeedType | None, kind))

    def state(self, table: Mapping[str, Any]) -> Path | str:
        """`[digest] state`: a path (an SQLite file, relative like this file) or the URL of
        a database, kept as written: the store checks its kind when it opens it. A password
        in it is refused here, unechoed (libpq's PGPASSWORD or ~/.pgpass hold one)."""
        value: str = self.get(table, "digest", "state", str, SETTINGS.defaults["state"])
        if not _STORE_URL.match(value):
            return self.path(value, "digest.state")
        try:
            parts = urlsplit(value)
            secret = parts.password is not None or "password=" in parts.query.lower()
        except ValueError:
            secret = False
        self.check(
            not secret,
            "digest.state",
            "a password in the state's URL is refused (it would show in logs and process "
            "lists): put it in PGPASSWORD or ~/.pgpass",
        )
        return value

    def markdown(self, value: object, key: str) -> MarkdownOutput:
        fields = self.record_fields(MARKDOWN, value, key)
        path = self.get(cast(Mapping[str, Any], value), key, "path", str, required=True)
        self.check(
            "{date}" in path,
            f"{key}.path",
            "must contain {date}, or every day would overwrite the same page",
        )
        return MarkdownOutput(**fields, path=str(self.path(path, f"{key}.path")))


@contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused: a list's rows make no cycles, and its passes
    over the growing list of subscribers were a quarter of the time to read 100,000."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Names:
    """Every reader's name is unique (reports, `--only` and the ledger name them) and its
    profile is defined; a duplicate's error names both places."""

    def __init__(self, profiles: Mapping[str, Profile]) -> None:
        self.profiles = profiles
        #: name → (kind, file, key or line) where it was first given
        self.seen: dict[str, tuple[str, str, str | int]] = {}

    def claim(
        self, name: str, kind: str, profile: str, shown: str, at: str | int, field: str = "name"
    ) -> None:
        """`at` is a key of the config file (`subscribers[3]`) or a line of a list."""
        earlier = self.seen.get(name)
        if earlier is not None:
            first_kind, first_file, first_at = earlier
            place = (
                f"{first_file}:{first_at}"
                if isinstance(first_at, int)
                else f"{first_at} in {first_file}"
            )
            raise _error(
                shown, at, field, f"duplicate {kind} {name!r} (the {first_kind} at {place})"
            )
        self.seen[name] = (kind, shown, at)
        if profile not in self.profiles:
            reason = f"no profile named {profile!r} (defined: {_names(self.profiles)})"
            raise _error(shown, at, "profile", reason)


def _error(shown: str, at: str | int, field: str, reason: str) -> ConfigError:
    if isinstance(at, int):
        return ConfigError(f"{shown}:{at}", field, one_line(reason))
    return ConfigError(shown, f"{at}.{field}", one_line(reason))


def _markdown_name(page: str, config_path: Path) -> str:
    """The name a Markdown output goes by in reports and the ledger (as the pipeline
    names it: its path relative to the config file's directory)."""
    return os.path.relpath(page, config_path.parent)


def _names(profiles: Mapping[str, Profile]) -> str:
    return ", ".join(sorted(profiles)) or "none"
