"""TOML → validated `Config`. Every problem is one line naming the file and the key."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import time, timedelta
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna

from .errors import ConfigError, DigestError
from .models import (
    DEFAULT_FIELD_WEIGHTS,
    FEED_TYPES,
    FIELDS,
    WEBHOOK_FORMATS,
    Config,
    FeedConfig,
    FeedType,
    FetchSettings,
    Field,
    MarkdownOutput,
    Profile,
    Sections,
    Security,
    Settings,
    SmtpSettings,
    Subscriber,
    WebhookFormat,
    WebhookOutput,
)
from .urls import endpoint, redacted, url_problem

T = TypeVar("T")

_TOP_KEYS = {
    "digest",
    "smtp",
    "fetch",
    "feeds",
    "profiles",
    "subscribers",
    "markdown",
    "webhooks",
}
_FETCH_KEYS = {"concurrency", "per_host", "timeout"}
_DIGEST_KEYS = {
    "title",
    "state",
    "output",
    "timezone",
    "max_entries",
    "min_score",
    "collect_every",
    "catch_up",
    "unsubscribe_url",
    "templates",
    "keep_days",
}
_SMTP_KEYS = {
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "from",
    "ca_file",
    "timeout",
    "data_timeout",
    "connections",
    "attempts",
    "backoff",
}
_FEED_KEYS = {"name", "url", "weight", "type"}
_PROFILE_KEYS = {
    "keywords",
    "exclude",
    "require",
    "fields",
    "authors",
    "organisations",
    "popularity",
    "freshness",
    "max_per_feed",
    "max_entries",
    "min_score",
    "sections",
    "tags",
}
_SECTIONS: tuple[Sections, ...] = ("feed", "tag")
#: points a followed author or organisation gets when listed without a weight
_FOLLOW_POINTS = 4.0
_SUBSCRIBER_KEYS = {"name", "email", "profile", "send_at", "timezone"}
_MARKDOWN_KEYS = {"profile", "path", "index"}
_WEBHOOK_KEYS = {"name", "url", "profile", "format", "send_at", "timezone"}
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
# RFC 5322 dot-atom, ASCII only: what the email package composes and SMTP sends unextended
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ASCII digits only ("\d" takes "٧"), and fullmatch: "$" would take a trailing newline
_SEND_AT = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
#: durations are compared in seconds before a timedelta is made (a huge one overflows)
_MAX_DURATION_SECONDS = 366 * 24 * 3600
#: keep_days beyond this would push dates past what `datetime` holds; a century is plenty
MAX_KEEP_DAYS = 36500
#: seconds an SMTP timeout may be at most (a silent server must not hang a run forever)
MAX_SMTP_TIMEOUT = 3600.0
#: the templates `digest.render` loads by name; every *.j2 of a user's directory is compiled
TEMPLATE_NAMES = (
    "digest.html.j2",
    "digest.txt.j2",
    "digest.md.j2",
    "archive.html.j2",
    "index.md.j2",
)


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
    return _Parser(shown, resolved.parent).config(raw, resolved)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plaintext SMTP is acceptable."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Parser:
    def __init__(self, shown: str, base: Path) -> None:
        self.shown = shown
        self.base = base

    def fail(self, key: str | None, reason: str) -> ConfigError:
        return ConfigError(self.shown, one_line(key) if key else key, one_line(reason))

    def table(self, value: object, key: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {_kind(value)}")
        for name in value:
            if name not in allowed:
                full = f"{key}.{_quote(name)}" if key else _quote(name)
                hint = ", ".join(sorted(allowed))
                raise self.fail(full, f"unknown key (allowed here: {hint})")
        return cast(Mapping[str, Any], value)

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        kind: type[T] | tuple[type, ...],
        default: T | None = None,
        *,
        required: bool = False,
    ) -> T:
        full = f"{key}.{name}" if key else name
        if name not in table:
            if required:
                raise self.fail(full, "missing")
            return cast(T, default)
        value = table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python but never a number in a config file
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(full, f"must be {_kind_name(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.fail(full, f"must be {_kind_name(kinds)}, not {_kind(value)}")
        if isinstance(value, str) and not value.strip():
            raise self.fail(full, "must not be empty")
        if isinstance(value, str) and "\0" in value:
            raise self.fail(full, "must not hold a NUL character")
        return cast(T, value)

    def number(
        self, table: Mapping[str, Any], key: str, name: str, default: float | None = None
    ) -> float:
        """A finite float (an integer is taken as one); inf, nan and 1e400-sized
        integers are refused."""
        full = f"{key}.{name}" if key else name
        return self.finite(
            self.get(table, key, name, (int, float), default, required=default is None), full
        )

    def finite(self, value: object, full: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(full, f"must be a number, not {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(full, f"must be a finite number, not {_shown_number(value)}")
        return number

    def check(self, ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise self.fail(key, reason)

    def zone(self, value: str, key: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:
            reason = f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
            raise self.fail(key, reason) from e
        return value

    def path(self, value: str, key: str) -> Path:
        self.check("\0" not in value, key, "a path must not hold a NUL character")
        try:
            return (self.base / Path(value).expanduser()).resolve()
        except (RuntimeError, OSError, ValueError) as e:  # "~nobody/x", a loop of links
            raise self.fail(key, f"not a usable path {value!r}: {e}") from e

    def exists(self, path: Path, key: str, kind: str) -> None:
        try:
            found = path.is_dir() if kind == "directory" else path.is_file()
        except (OSError, ValueError):
            found = False
        self.check(found, key, f"no such {kind}: {path}")

    def config(self, raw: Mapping[str, Any], path: Path) -> Config:
        self.table(raw, "", _TOP_KEYS)
        settings = self.settings(raw.get("digest", {}))
        smtp = self.smtp(raw["smtp"]) if "smtp" in raw else None
        fetch = self.fetch(raw.get("fetch", {}))
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
        subscribers = self.items(raw, "subscribers", lambda v, k: self.subscriber(v, k, settings))
        markdown = self.items(raw, "markdown", self.markdown)
        webhooks = self.items(raw, "webhooks", lambda v, k: self.webhook(v, k, settings))
        # every reader's name is unique: reports, `--only` and the ledger name them
        seen: dict[str, str] = {}
        readers = [
            *(
                (f"subscribers[{i}]", "subscriber", s.name, s.profile)
                for i, s in enumerate(subscribers)
            ),
            *(
                (f"markdown[{i}]", "markdown page", _markdown_name(o.path, path), o.profile)
                for i, o in enumerate(markdown)
            ),
            *((f"webhooks[{i}]", "webhook", w.name, w.profile) for i, w in enumerate(webhooks)),
        ]
        for key, kind, name, profile in readers:
            field = "path" if kind == "markdown page" else "name"
            self.check(
                name not in seen,
                f"{key}.{field}",
                f"duplicate {kind} {name!r} (the name of an earlier {seen.get(name)})",
            )
            seen[name] = kind
            self.check(
                profile in profiles,
                f"{key}.profile",
                f"no profile named {profile!r} (defined: {_names(profiles)})",
            )
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
        )

    def items(self, raw: Mapping[str, Any], key: str, build: Callable[[Any, str], T]) -> list[T]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array of tables ([[{key}]]), not {_kind(value)}")
        return [build(item, f"{key}[{i}]") for i, item in enumerate(value)]

    def settings(self, value: object) -> Settings:
        t = self.table(value, "digest", _DIGEST_KEYS)
        max_entries = self.get(t, "digest", "max_entries", int, 20)
        self.check(max_entries > 0, "digest.max_entries", "must be at least 1")
        min_score = self.number(t, "digest", "min_score", 1.0)
        self.check(min_score >= 0, "digest.min_score", "must not be negative")
        collect_every = self.duration(t, "collect_every", timedelta(hours=1))
        self.check(
            timedelta(0) < collect_every <= timedelta(days=1),
            "digest.collect_every",
            "must be more than 0 and at most 24h",
        )
        catch_up = self.duration(t, "catch_up", timedelta(hours=4))
        self.check(catch_up < timedelta(days=1), "digest.catch_up", "must be under 24h")
        unsubscribe_url = self.get(t, "digest", "unsubscribe_url", str, None)
        if unsubscribe_url is not None:
            problem = url_problem(unsubscribe_url)
            self.check(
                problem is None,
                "digest.unsubscribe_url",
                f"must be an http(s) URL: {shown_url(unsubscribe_url)} {problem}",
            )
        templates = self.get(t, "digest", "templates", str, None)
        templates_dir = self.path(templates, "digest.templates") if templates else None
        if templates_dir is not None:
            self.exists(templates_dir, "digest.templates", "directory")
            self.templates(templates_dir)
        keep_days = self.get(t, "digest", "keep_days", int, 180)
        self.check(
            7 <= keep_days <= MAX_KEEP_DAYS,
            "digest.keep_days",
            f"must be at least 7 and at most {MAX_KEEP_DAYS} (a century)",
        )
        return Settings(
            title=self.get(t, "digest", "title", str, "Digest"),
            state=self.path(self.get(t, "digest", "state", str, "digest.sqlite"), "digest.state"),
            output=self.path(self.get(t, "digest", "output", str, "out"), "digest.output"),
            timezone=self.zone(self.get(t, "digest", "timezone", str, "UTC"), "digest.timezone"),
            max_entries=max_entries,
            min_score=min_score,
            collect_every=collect_every,
            catch_up=catch_up,
            unsubscribe_url=unsubscribe_url,
            templates=templates_dir,
            keep_days=keep_days,
        )

    def duration(self, t: Mapping[str, Any], name: str, default: timedelta) -> timedelta:
        value = self.get(t, "digest", name, str, None)
        if value is None:
            return default
        m = _DURATION.fullmatch(value)
        self.check(
            m is not None and any(m.groups()),
            f"digest.{name}",
            f'must be a duration such as "4h", "90m" or "1h30m", not {value!r}',
        )
        assert m is not None
        h, mins, secs = (int(g or 0) for g in m.groups())
        seconds = h * 3600 + mins * 60 + secs  # Python ints: no overflow before the check
        self.check(
            seconds <= _MAX_DURATION_SECONDS,
            f"digest.{name}",
            f"{value!r} is longer than a year",
        )
        return timedelta(seconds=seconds)

    def templates(self, directory: Path) -> None:
        """Load and compile every template a digest uses, as `digest.render` will."""
        import jinja2

        from .render import environment  # its filters and loader; only for a user's templates

        env = environment(directory)
        try:
            names = sorted({*TEMPLATE_NAMES, *(p.name for p in directory.glob("*.j2"))})
        except OSError as e:
            raise self.fail("digest.templates", f"cannot list {directory}: {e.strerror}") from e
        for name in names:
            try:
                env.get_template(name)
            except jinja2.TemplateSyntaxError as e:
                where = f"{e.filename or name}, line {e.lineno}"
                raise self.fail("digest.templates", f"{where}: {e.message}") from e
            except jinja2.TemplateError as e:
                raise self.fail(
                    "digest.templates", f"{name}: {e.message or type(e).__name__}"
                ) from e
            except DigestError as e:  # the CSS inliner's refusal
                raise self.fail("digest.templates", str(e)) from e
            except UnicodeDecodeError as e:
                raise self.fail("digest.templates", f"{name}: not UTF-8 text") from e
            except OSError as e:
                raise self.fail("digest.templates", f"{name}: cannot read: {e.strerror}") from e

    def smtp(self, value: object) -> SmtpSettings:
        if isinstance(value, dict) and "password" in value:
            raise self.fail(
                "smtp.password",
                "passwords do not belong in the config file; put it in an environment "
                "variable and name that variable with password_env",
            )
        t = self.table(value, "smtp", _SMTP_KEYS)
        host = self.get(t, "smtp", "host", str, required=True)
        security = self.get(t, "smtp", "security", str, "starttls")
        self.check(
            security in _DEFAULT_PORTS,
            "smtp.security",
            f"must be one of starttls, tls, none, not {security!r}",
        )
        self.check(
            security != "none" or is_loopback(host),
            "smtp.security",
            f"'none' sends mail and passwords in clear text; it is only allowed for a "
            f"loopback host, not {host!r}",
        )
        port = self.get(t, "smtp", "port", int, _DEFAULT_PORTS[security])
        self.check(0 < port < 65536, "smtp.port", f"not a port number: {port}")
        username = self.get(t, "smtp", "username", str, None)
        password_env = self.get(t, "smtp", "password_env", str, None)
        if password_env is not None:
            # never echoed: a password typed here by mistake must not reach a terminal or log
            self.check(
                bool(_ENV_NAME.fullmatch(password_env)) and len(password_env) <= 128,
                "smtp.password_env",
                "must be the name of an environment variable (letters, digits and _, not "
                "starting with a digit), not the password itself; the value is not shown",
            )
        self.check(
            username is None or password_env is not None,
            "smtp.password_env",
            "missing: with a username, name the environment variable holding the password",
        )
        sender = self.get(t, "smtp", "from", str, required=True)
        problem = sender_problem(sender)
        self.check(problem is None, "smtp.from", f"not an email address: {sender!r} ({problem})")
        ca_file = self.get(t, "smtp", "ca_file", str, None)
        ca_path = self.path(ca_file, "smtp.ca_file") if ca_file else None
        if ca_path is not None:
            self.exists(ca_path, "smtp.ca_file", "file")
        timeout = self.number(t, "smtp", "timeout", 30.0)
        self.check(
            0 < timeout <= MAX_SMTP_TIMEOUT,
            "smtp.timeout",
            f"must be more than 0 and at most {MAX_SMTP_TIMEOUT:g} seconds",
        )
        data_timeout = self.number(t, "smtp", "data_timeout", 600.0)
        self.check(
            0 < data_timeout <= MAX_SMTP_TIMEOUT,
            "smtp.data_timeout",
            f"must be more than 0 and at most {MAX_SMTP_TIMEOUT:g} seconds (RFC 5321 asks for 600)",
        )
        connections = self.get(t, "smtp", "connections", int, 4)
        self.check(1 <= connections <= 32, "smtp.connections", "must be between 1 and 32")
        attempts = self.get(t, "smtp", "attempts", int, 3)
        self.check(1 <= attempts <= 10, "smtp.attempts", "must be between 1 and 10")
        backoff = self.number(t, "smtp", "backoff", 2.0)
        self.check(0 <= backoff <= 300, "smtp.backoff", "must be between 0 and 300 seconds")
        return SmtpSettings(
            host=host,
            port=port,
            security=cast(Security, security),
            sender=sender,
            username=username,
            password_env=password_env,
            ca_file=ca_path,
            timeout=timeout,
            data_timeout=data_timeout,
            connections=connections,
            attempts=attempts,
            backoff=backoff,
        )

    def fetch(self, value: object) -> FetchSettings:
        t = self.table(value, "fetch", _FETCH_KEYS)
        concurrency = self.get(t, "fetch", "concurrency", int, 16)
        self.check(1 <= concurrency <= 256, "fetch.concurrency", "must be between 1 and 256")
        per_host = self.get(t, "fetch", "per_host", int, 4)
        self.check(1 <= per_host <= 64, "fetch.per_host", "must be between 1 and 64")
        timeout = self.number(t, "fetch", "timeout", 30.0)
        self.check(0 < timeout <= 600, "fetch.timeout", "must be more than 0 and at most 600 s")
        return FetchSettings(concurrency=concurrency, per_host=per_host, timeout=timeout)

    def feed(self, value: object, key: str) -> FeedConfig:
        t = self.table(value, key, _FEED_KEYS)
        name = self.get(t, key, "name", str, required=True)
        url = self.get(t, key, "url", str, required=True)
        weight = self.number(t, key, "weight", 1.0)
        self.check(weight > 0, f"{key}.weight", "must be positive")
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
        return FeedConfig(
            name=name, url=url, source=source, weight=weight, type=cast(FeedType | None, kind)
        )

    def profile(self, name: str, value: object, settings: Settings) -> Profile:
        key = f"profiles.{name}"
        t = self.table(value, key, _PROFILE_KEYS)
        keywords_raw = self.get(t, key, "keywords", dict, required=True)
        keywords: list[tuple[str, float]] = []
        for term, weight in keywords_raw.items():
            tkey = f"{key}.keywords.{_quote(term)}"
            text = self.term(term, tkey)
            self.check(
                isinstance(weight, int | float) and not isinstance(weight, bool),
                tkey,
                f"weight must be a number, not {_kind(weight)}",
            )
            number = self.finite(weight, tkey)
            self.check(number > 0, tkey, "weight must be positive")
            keywords.append((text, number))
        self.check(bool(keywords), f"{key}.keywords", "needs at least one term")
        max_entries = self.get(t, key, "max_entries", int, settings.max_entries)
        self.check(max_entries > 0, f"{key}.max_entries", "must be at least 1")
        min_score = self.number(t, key, "min_score", settings.min_score)
        self.check(min_score >= 0, f"{key}.min_score", "must not be negative")
        max_per_feed = self.get(t, key, "max_per_feed", int, None)
        self.check(
            max_per_feed is None or max_per_feed > 0, f"{key}.max_per_feed", "must be at least 1"
        )
        boosts = {}
        for boost in ("popularity", "freshness"):
            boosts[boost] = self.number(t, key, boost, 0.0)
            self.check(boosts[boost] >= 0, f"{key}.{boost}", "must not be negative")
        authors = self.follows(t, key, "authors")
        organisations = self.follows(t, key, "organisations")
        sections, tags = self.sections(t, key, keywords, authors + organisations)
        return Profile(
            name=name,
            keywords=tuple(keywords),
            exclude=self.terms(t, key, "exclude"),
            max_entries=max_entries,
            min_score=min_score,
            require=self.terms(t, key, "require"),
            fields=self.fields(t, key),
            authors=authors,
            organisations=organisations,
            popularity=boosts["popularity"],
            freshness=boosts["freshness"],
            max_per_feed=max_per_feed,
            sections=sections,
            tags=tags,
        )

    def sections(
        self,
        t: Mapping[str, Any],
        key: str,
        keywords: list[tuple[str, float]],
        follows: tuple[tuple[str, float], ...],
    ) -> tuple[Sections, tuple[tuple[str, tuple[str, ...]], ...]]:
        """`sections = "feed"`, or `sections = "tag"` with `[…tags]`: tag = [its terms]."""
        sections = self.get(t, key, "sections", str, "")
        choices = " or ".join(f'"{c}"' for c in _SECTIONS)
        self.check(
            sections in ("", *_SECTIONS),
            f"{key}.sections",
            f"must be {choices}, not {sections!r} (leave it out for one list)",
        )
        if "tags" not in t:
            self.check(
                sections != "tag", f"{key}.tags", 'missing: sections = "tag" needs a table of tags'
            )
            return cast(Sections, sections), ()
        self.check(
            sections == "tag", f"{key}.tags", 'only used with sections = "tag" in the same profile'
        )
        value = t["tags"]
        self.check(isinstance(value, dict), f"{key}.tags", f"must be a table, not {_kind(value)}")
        known = {term for term, _ in keywords} | {name for name, _ in follows}
        tags: list[tuple[str, tuple[str, ...]]] = []
        for tag, terms in value.items():
            tkey = f"{key}.tags.{_quote(tag)}"
            self.check(bool(tag.strip()), tkey, "a tag's name must not be empty")
            self.check(
                isinstance(terms, list) and bool(terms),
                tkey,
                f"must be a non-empty list of the profile's terms, not {_kind(terms)}",
            )
            for i, term in enumerate(terms):
                self.check(
                    isinstance(term, str) and term.strip() in known,
                    f"{tkey}[{i}]",
                    f"{term!r} is not one of the profile's keywords, authors or organisations",
                )
            tags.append((tag.strip(), tuple(term.strip() for term in terms)))
        return "tag", tuple(tags)

    def term(self, term: object, key: str) -> str:
        """A profile term: a word, a phrase, or a prefix ending in a single "*"."""
        self.check(isinstance(term, str) and bool(term.strip()), key, "must be a non-empty string")
        text = cast(str, term).strip()
        stem = text.removesuffix("*")
        self.check("*" not in stem, key, f"{text!r}: '*' may only end a term, as in 'transformer*'")
        self.check(
            bool(re.search(r"\w", stem)), key, f"{text!r} has no letters or digits to look for"
        )
        self.check(
            stem == text or len(stem.strip()) >= 3,
            key,
            f"{text!r}: a prefix needs at least 3 characters before '*'",
        )
        return text

    def terms(self, t: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
        values = self.get(t, key, name, list, [])
        return tuple(self.term(term, f"{key}.{name}[{i}]") for i, term in enumerate(values))

    def fields(self, t: Mapping[str, Any], key: str) -> tuple[tuple[Field, float], ...]:
        weights: dict[str, float] = dict(DEFAULT_FIELD_WEIGHTS)
        if "fields" in t:
            table = self.table(t["fields"], f"{key}.fields", set(FIELDS))
            for field in table:
                weights[field] = self.number(table, f"{key}.fields", field)
                self.check(weights[field] >= 0, f"{key}.fields.{field}", "must not be negative")
            self.check(
                any(weights.values()), f"{key}.fields", "at least one field must count (> 0)"
            )
        return tuple((field, weights[field]) for field in FIELDS)

    def follows(self, t: Mapping[str, Any], key: str, name: str) -> tuple[tuple[str, float], ...]:
        """`["Name", …]` (each worth _FOLLOW_POINTS) or `{ "Name" = points, … }`."""
        value = t.get(name, [])
        full = f"{key}.{name}"
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check(isinstance(item, str), f"{full}[{i}]", "must be a name (a string)")
            value = {item: _FOLLOW_POINTS for item in value}
        self.check(
            isinstance(value, dict),
            full,
            f"must be a list of names or a table of name = points, not {_kind(value)}",
        )
        follows: list[tuple[str, float]] = []
        for who, points in value.items():
            wkey = f"{full}.{_quote(who)}"
            self.check(bool(who.strip()), wkey, "a name must not be empty")
            self.check(
                isinstance(points, int | float) and not isinstance(points, bool) and points > 0,
                wkey,
                "points must be a positive number",
            )
            follows.append((" ".join(who.split()), self.finite(points, wkey)))
        return tuple(follows)

    def subscriber(self, value: object, key: str, settings: Settings) -> Subscriber:
        t = self.table(value, key, _SUBSCRIBER_KEYS)
        email = self.get(t, key, "email", str, required=True)
        problem = address_problem(email)
        self.check(problem is None, f"{key}.email", f"not an email address: {email!r} ({problem})")
        zone = self.get(t, key, "timezone", str, settings.timezone)
        return Subscriber(
            name=self.get(t, key, "name", str, required=True),
            email=email,
            profile=self.get(t, key, "profile", str, required=True),
            send_at=self.send_at(t, key),
            timezone=self.zone(zone, f"{key}.timezone"),
        )

    def send_at(self, t: Mapping[str, Any], key: str) -> time:
        send_at = self.get(t, key, "send_at", str, "07:00")
        m = _SEND_AT.fullmatch(send_at)
        self.check(
            m is not None, f"{key}.send_at", f"must be HH:MM or HH:MM:SS (24-hour), not {send_at!r}"
        )
        assert m is not None
        return time(int(m[1]), int(m[2]), int(m[3] or 0))

    def webhook(self, value: object, key: str, settings: Settings) -> WebhookOutput:
        t = self.table(value, key, _WEBHOOK_KEYS)
        name = self.get(t, key, "name", str, required=True)
        url = self.get(t, key, "url", str, required=True)
        shown = repr(endpoint(url))  # a webhook's path and query are its credential
        problem = url_problem(url)
        self.check(problem is None, f"{key}.url", f"{shown}: {problem}")
        parts = urlsplit(url)
        self.check(
            parts.scheme.lower() == "https" or is_loopback(parts.hostname or ""),
            f"{key}.url",
            f"{shown}: must be https (http only for a loopback host such as 127.0.0.1)",
        )
        kind = self.get(t, key, "format", str, required=True)
        choices = " or ".join(f'"{f}"' for f in WEBHOOK_FORMATS)
        self.check(kind in WEBHOOK_FORMATS, f"{key}.format", f"must be {choices}, not {kind!r}")
        zone = self.get(t, key, "timezone", str, settings.timezone)
        return WebhookOutput(
            name=name,
            url=url,
            profile=self.get(t, key, "profile", str, required=True),
            format=cast(WebhookFormat, kind),
            send_at=self.send_at(t, key),
            timezone=self.zone(zone, f"{key}.timezone"),
        )

    def markdown(self, value: object, key: str) -> MarkdownOutput:
        t = self.table(value, key, _MARKDOWN_KEYS)
        path = self.get(t, key, "path", str, required=True)
        self.check(
            "{date}" in path,
            f"{key}.path",
            "must contain {date}, or every day would overwrite the same page",
        )
        index = self.get(t, key, "index", str, None)
        return MarkdownOutput(
            profile=self.get(t, key, "profile", str, required=True),
            path=str(self.path(path, f"{key}.path")),
            index=self.path(index, f"{key}.index") if index else None,
        )


def _markdown_name(page: str, config_path: Path) -> str:
    """The name a Markdown output goes by in reports and the ledger (as the pipeline
    names it: its path relative to the config file's directory)."""
    return os.path.relpath(page, config_path.parent)


def address_problem(value: str) -> str | None:
    """Why `value` is not one bare addr-spec that the email layer composes and SMTP sends
    without extensions, in a few words; None when it is. The local part is ASCII dot-atom
    (no quoted strings, no display name, no list); the domain a host name, IDNA allowed."""
    if "<" in value or "," in value or " " in value:
        return "write the address alone, e.g. ada@example.org; the name comes from `name`"
    if any(not c.isprintable() or c.isspace() for c in value):
        return "holds a space or a control character"
    if len(value) > 254:
        return "longer than 254 characters"
    local, at, domain = value.rpartition("@")
    if not at:
        return "no @"
    if not local or not domain:
        return "one bare address such as ada@example.org is needed"
    if not local.isascii():
        return "the part before @ must be ASCII"
    if not _LOCAL_PART.fullmatch(local) or len(local) > 64:
        return "one bare address such as ada@example.org is needed, without a name or <>"
    if domain_problem(domain):
        return f"the domain {domain!r} is not a host name"
    try:  # exactly as send.compose will put it in the To header
        Address(display_name="x", addr_spec=value)
    except (ValueError, IndexError, TypeError):
        return "the email package cannot compose it"
    return None


def sender_problem(value: str) -> str | None:
    """`[smtp] from` may carry a display name ("Digest <d@example.org>"); its address part
    is held to `address_problem`, and it must be one address, not a list."""
    if "\n" in value or "\r" in value or "\0" in value:
        return "holds a line break or a NUL"
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        return "exactly one address is needed"
    return address_problem(found[0][1])


def domain_problem(domain: str) -> str | None:
    if domain.isascii():
        name = domain
    else:
        try:
            name = idna.encode(domain.lower()).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return "not a valid international domain name"
    labels = name.split(".")
    if len(name) > 253 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return "not a host name"
    return None


def shown_url(url: str, limit: int = 120) -> str:
    """A URL as an error message may show it: secrets masked, quoted, cut to `limit`."""
    shown = redacted(url)
    return repr(shown if len(shown) <= limit else shown[: limit - 1] + "…")


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown_number(value: object) -> str:
    text = str(value) if isinstance(value, float) else "an integer too large for a number"
    return text


def _names(profiles: Mapping[str, Profile]) -> str:
    return ", ".join(sorted(profiles)) or "none"


def _quote(term: str) -> str:
    return term if re.fullmatch(r"[A-Za-z0-9_-]+", term) else f'"{term}"'


def _kind(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _kind_name(kinds: tuple[type, ...]) -> str:
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(_kind(k()) for k in kinds)
