"""Value checks: each takes one value as read from the file and says what is wrong with it,
in a few words, or None. `CHECKS` maps a table's key to its check; the generic table reader
(tables.py) runs it after reading the value at its model's type.

A check is held to what the part that uses the value later will do with it: addresses as
`send.compose` takes them, URLs as the HTTP client takes them (`urls.url_problem`), numbers
and durations within what `datetime` and the timeouts can hold, templates as `render` loads
them. Nothing here echoes a secret.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from email.headerregistry import Address
from email.utils import getaddresses
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna

from ..errors import DigestError
from ..urls import endpoint, redacted, url_problem

#: keep_days beyond this would push dates past what `datetime` holds; a century is plenty
MAX_KEEP_DAYS = 36500
#: seconds an SMTP timeout may be at most (a silent server must not hang a run forever)
MAX_SMTP_TIMEOUT = 3600.0
#: durations are compared in seconds before a timedelta is made (a huge one overflows)
MAX_DURATION_SECONDS = 366 * 24 * 3600
#: the templates `digest.render` loads by name; every *.j2 of a user's directory is compiled
TEMPLATE_NAMES = (
    "digest.html.j2",
    "digest.txt.j2",
    "digest.md.j2",
    "archive.html.j2",
    "index.md.j2",
)

# RFC 5322 dot-atom, ASCII only: what the email package composes and SMTP sends unextended
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Check = Callable[[Any], "str | None"]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where plaintext SMTP is acceptable."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address_problem(value: str) -> str | None:
    """Why `value` is not one bare addr-spec that the email layer composes and SMTP sends
    without extensions, in a few words; None when it is. The local part is ASCII dot-atom
    (no quoted strings, no display name, no list); the domain a host name, IDNA allowed."""
    if "<" in value or "," in value or " " in value:
        return "write the address alone, e.g. ada@example.org; the name comes from `name`"
    # every space but " " (refused above) is unprintable: one C call instead of a loop
    if not value.isprintable():
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
    if domain.isascii():
        # an ASCII dot-atom @ host name is what the email package's parser takes as an
        # addr-spec without a defect (tests/test_config_hostile.py holds the two together);
        # its parse is 2/3 of this check, which a list of 100,000 subscribers runs each time
        return None
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


@lru_cache(maxsize=4096)
def domain_problem(domain: str) -> str | None:
    """Why `domain` is not a host name (IDNA allowed), or None; remembered, since the
    subscribers of a long list share a few domains."""
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


def email_check(value: str) -> str | None:
    problem = address_problem(value)
    return None if problem is None else f"not an email address: {value!r} ({problem})"


def sender_check(value: str) -> str | None:
    problem = sender_problem(value)
    return None if problem is None else f"not an email address: {value!r} ({problem})"


@lru_cache(maxsize=1024)
def zone_problem(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
    return None


def webhook_url_problem(value: str) -> str | None:
    """https, or http to a loopback host; shown only as scheme, host and first segment:
    a webhook's path and query are its credential."""
    shown = repr(endpoint(value))
    problem = url_problem(value)
    if problem is not None:
        return f"{shown}: {problem}"
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" and not is_loopback(parts.hostname or ""):
        return f"{shown}: must be https (http only for a loopback host such as 127.0.0.1)"
    return None


def ranker_problem(value: str) -> str | None:
    """A name in digest.rank's RANKERS registry (read when checked: rank imports numpy)."""
    rank = importlib.import_module("..rank", __package__)
    known: Mapping[str, object] = getattr(rank, "RANKERS", {"keyword": None})
    if value in known:
        return None
    return f"unknown ranker {value!r} (known: {', '.join(sorted(known))})"


def env_name_problem(value: str) -> str | None:
    """Never echoes `value`: a password typed here by mistake must not reach a terminal."""
    if ENV_NAME.fullmatch(value) and len(value) <= 128:
        return None
    return (
        "must be the name of an environment variable (letters, digits and _, not "
        "starting with a digit), not the password itself; the value is not shown"
    )


def http_url_problem(value: str) -> str | None:
    problem = url_problem(value)
    return None if problem is None else f"must be an http(s) URL: {shown_url(value)} {problem}"


def template_problem(directory: Path) -> str | None:
    """Load and compile every template a digest uses, as `digest.render` will; the first
    problem names the template file and its line."""
    import jinja2

    from ..render import environment  # its filters and loader; only for a user's templates

    env = environment(directory)
    try:
        names = sorted({*TEMPLATE_NAMES, *(p.name for p in directory.glob("*.j2"))})
    except OSError as e:
        return f"cannot list {directory}: {e.strerror}"
    for name in names:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            return f"{e.filename or name}, line {e.lineno}: {e.message}"
        except jinja2.TemplateError as e:
            return f"{name}: {e.message or type(e).__name__}"
        except DigestError as e:  # the CSS inliner's refusal
            return str(e)
        except UnicodeDecodeError:
            return f"{name}: not UTF-8 text"
        except OSError as e:
            return f"{name}: cannot read: {e.strerror}"
    return None


def is_file(path: Path) -> str | None:
    return None if _exists(path, Path.is_file) else f"no such file: {path}"


def is_directory(path: Path) -> str | None:
    return None if _exists(path, Path.is_dir) else f"no such directory: {path}"


def templates_problem(path: Path) -> str | None:
    return is_directory(path) or template_problem(path)


def _exists(path: Path, test: Callable[[Path], bool]) -> bool:
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def shown_url(url: str, limit: int = 120) -> str:
    """A URL as an error message may show it: secrets masked, quoted, cut to `limit`."""
    shown = redacted(url)
    return repr(shown if len(shown) <= limit else shown[: limit - 1] + "…")


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def between(low: float, high: float, unit: str = "") -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low:g} and {high:g}{unit}"


def above_zero_at_most(high: float, unit: str, note: str = "") -> Check:
    reason = f"must be more than 0 and at most {high:g}{unit}{note}"
    return lambda v: None if 0 < v <= high else reason


def at_least(low: int) -> Check:
    return lambda v: None if v is None or v >= low else f"must be at least {low}"


def not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def keep_days(value: int) -> str | None:
    if 7 <= value <= MAX_KEEP_DAYS:
        return None
    return f"must be at least 7 and at most {MAX_KEEP_DAYS} (a century)"


def collect_every(value: timedelta) -> str | None:
    ok = timedelta(0) < value <= timedelta(days=1)
    return None if ok else "must be more than 0 and at most 24h"


def catch_up(value: timedelta) -> str | None:
    return None if value < timedelta(days=1) else "must be under 24h"


def port(value: int) -> str | None:
    return None if 0 < value < 65536 else f"not a port number: {value}"


def optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


_SMTP_TIMEOUT = above_zero_at_most(MAX_SMTP_TIMEOUT, " seconds")

#: "table.key" → its check, run on the value read at the model field's type. A table read
#: from an array (`[[feeds]]`) is named without its index.
CHECKS: Mapping[str, Check] = {
    "digest.timezone": zone_problem,
    "digest.max_entries": at_least(1),
    "digest.min_score": not_negative,
    "digest.collect_every": collect_every,
    "digest.catch_up": catch_up,
    "digest.unsubscribe_url": optional(http_url_problem),
    "digest.templates": optional(templates_problem),
    "digest.keep_days": keep_days,
    "digest.ranker": ranker_problem,
    "smtp.port": port,
    "smtp.from": sender_check,
    "smtp.password_env": optional(env_name_problem),
    "smtp.ca_file": optional(is_file),
    "smtp.timeout": _SMTP_TIMEOUT,
    "smtp.data_timeout": above_zero_at_most(
        MAX_SMTP_TIMEOUT, " seconds", " (RFC 5321 asks for 600)"
    ),
    "smtp.connections": between(1, 32),
    "smtp.attempts": between(1, 10),
    "smtp.backoff": between(0, 300, " seconds"),
    "fetch.concurrency": between(1, 256),
    "fetch.per_host": between(1, 64),
    "fetch.timeout": above_zero_at_most(600, " s"),
    "feeds.weight": positive,
    "profiles.max_entries": at_least(1),
    "profiles.min_score": not_negative,
    "profiles.max_per_feed": at_least(1),
    "profiles.popularity": not_negative,
    "profiles.freshness": not_negative,
    "subscribers.email": email_check,
    "subscribers.timezone": zone_problem,
    "webhooks.url": webhook_url_problem,
    "webhooks.timezone": zone_problem,
}
