"""URLs from the config and from servers: checked before they are used, shown without secrets.

`url_problem` accepts exactly what the HTTP client can request (and a little less: a port
outside 1–65535, an empty host or an over-long URL pass httpx's parser and fail later, while
it builds a request). `redacted` is the form a URL may take in a report, a log line or the
state file: a password or token in it would otherwise be printed by `check-config` and
`digest feeds`, and kept on disk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from urllib.parse import SplitResult, parse_qsl, quote, unquote_plus, urlsplit

import idna

#: longer URLs are refused; httpx's own limit is 65,536, no feed server needs a tenth of it
MAX_URL_LENGTH = 8192
HTTP_SCHEMES = frozenset({"http", "https"})
#: what stands in for a secret in a shown URL
MASK = "***"
#: how a URL that cannot be parsed is shown: it may hold anything
UNPARSEABLE = f"<malformed URL {MASK}>"

# a registered name: labels of letters, digits, hyphens and underscores (seen in real hosts)
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
# query parameters whose value is a credential by its name
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:token|key|apikey|api[_-]?key|secret|pass(?:word)?|pwd|auth|"
    r"authorization|sig|signature|session|sid|credentials?|access[_-]?token|hash|code)"
    r"(?:$|[_.-])",
    re.IGNORECASE,
)
# a value that looks generated: long, and mixing letters with digits (or long hex/base64)
_RANDOM_LOOKING = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_\-+/=.~%]{16,}$")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched over HTTP(S) as written, in a few words; None when it can.

    The scheme is case-insensitive ("HTTP://…" is valid). Refused: any ASCII control
    character or space, a URL longer than MAX_URL_LENGTH, a scheme other than http(s), a
    missing or malformed host, an unclosed IPv6 bracket, a port that is not 1–65535."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    bad = next((c for c in url if c.isascii() and not c.isprintable() or c == " "), None)
    if bad is not None:
        return f"holds the control character {bad!r}" if bad != " " else "holds a space"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in 0–65535
    except ValueError as e:
        return _split_problem(e)
    if parts.scheme.lower() not in HTTP_SCHEMES:
        return "not an http(s) URL" if parts.scheme else "not a URL (no http:// or https://)"
    if "[" in parts.netloc.rpartition("@")[2] and not _bracketed_ok(parts):
        return "malformed IPv6 address"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if not _host_ok(host):
        return f"malformed host {host!r}"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is outside 1–65535"
    return None


def _split_problem(error: ValueError) -> str:
    text = str(error)
    if "Port" in text or "port" in text:
        return "the port is not a number in 1–65535"
    if "IPv6" in text or "]" in text or "[" in text:
        return "malformed IPv6 address"
    return "malformed URL"


def _bracketed_ok(parts: SplitResult) -> bool:
    netloc = parts.netloc.rpartition("@")[2]
    if not netloc.startswith("[") or "]" not in netloc:
        return False
    inside = netloc[1 : netloc.index("]")]
    try:
        ipaddress.IPv6Address(inside.partition("%")[0])
    except ValueError:
        return False
    return True


def _host_ok(host: str) -> bool:
    if ":" in host:  # urlsplit gives IPv6 hosts without brackets; checked above
        return True
    if host.isascii():
        name = host
    else:
        try:  # as httpx encodes it (IDNA 2008, not Python's IDNA 2003 codec)
            name = idna.encode(host.lower()).decode("ascii")
        except idna.IDNAError:
            return False
    name = name.removesuffix(".")
    return bool(name) and len(name) <= 253 and all(map(_HOST_LABEL.match, name.split(".")))


def is_secret_parameter(name: str, value: str) -> bool:
    """True for a query parameter that carries a credential: by its name (token, key,
    signature …) or by a value that looks generated (16+ characters of letters and digits)."""
    return bool(_SECRET_NAME.search(name)) or bool(value and _RANDOM_LOOKING.match(value))


def has_secret(url: str) -> bool:
    """True when `url` holds user info (user:password@) or a secret-looking query value."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if "@" in parts.netloc:
        return True
    return any(is_secret_parameter(k, v) for k, v in parse_qsl(parts.query, True))


def redacted(url: str) -> str:
    """`url` as it may be shown, logged or stored: user info becomes `***@`, each
    secret-looking query value `***`; everything else is kept as written."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return UNPARSEABLE
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = []
        for piece in query.split("&"):
            name, eq, value = piece.partition("=")
            shown = (
                MASK
                if eq and is_secret_parameter(unquote_plus(name), unquote_plus(value))
                else value
            )
            pairs.append(f"{name}{eq}{shown}")
        query = "&".join(pairs)
    return parts._replace(netloc=netloc, query=query).geturl()


def endpoint(url: str) -> str:
    """The part of a URL that names a service without its secrets: scheme, host (and port)
    and the first path segment, e.g. "https://hooks.example.org/services/…". For webhook
    URLs, whose path is the credential."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return UNPARSEABLE
    if ":" in host:
        host = f"[{host}]"
    where = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return where + "/"
    more = "/…" if len(segments) > 1 or parts.query else ""
    return f"{where}/{quote(segments[0], safe='%@:+-._~')}{more}"


def state_key(url: str) -> str:
    """How the state file names a URL: as written when it holds no secret, else redacted
    with a digest of the whole URL after it (two feeds whose tokens differ stay two feeds),
    so that no credential or token is stored in clear."""
    if not has_secret(url):
        return url
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"{redacted(url)} #{digest}"
