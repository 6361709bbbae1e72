"""Delivery: email over SMTP (aiosmtplib), or files when no SMTP server is configured."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .errors import DeliveryError
from .models import SmtpSettings

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_HEADER_JUNK = str.maketrans({c: " " for c in map(chr, [*range(0, 32), 127])})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One composed digest, with its parts kept for writing as files."""

    message: EmailMessage
    html: str
    text: str
    local_date: date
    #: the subscriber's name, used for file names
    name: str


class Mailer(Protocol):
    """An open delivery channel for one run: one SMTP connection, or a folder."""

    async def send(self, outgoing: Outgoing) -> str:
        """Deliver one message; return where it went; raise DeliveryError when it did not."""
        ...


def message_id(reader_key: str, local_date: str, sender: str) -> str:
    """The same id for the same reader and date, so a resend is recognisable as one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "digest.invalid"
    token = hashlib.sha256(reader_key.encode()).hexdigest()[:20]
    return f"<digest.{local_date}.{token}@{domain}>"


def compose(
    *,
    sender: str,
    to_name: str,
    to_address: str,
    subject: str,
    text: str,
    html: str,
    msg_id: str,
    now: datetime,
) -> EmailMessage:
    """A multipart/alternative message: the text part first, the HTML part preferred."""
    message = EmailMessage()
    message["From"] = _clean(sender)
    message["To"] = Address(display_name=_clean(to_name), addr_spec=to_address)
    message["Subject"] = _clean(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = msg_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def _clean(value: str) -> str:
    """Header text with CR, LF and other control characters removed (no header injection)."""
    return " ".join(value.translate(_HEADER_JUNK).split())


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    sender = parseaddr(str(message["From"]))[1]
    recipients = [address for _, address in getaddresses([str(message["To"])])]
    return sender, recipients


class SmtpMailer:
    """One authenticated SMTP connection, reused for every message of the run."""

    def __init__(self, client: aiosmtplib.SMTP, settings: SmtpSettings) -> None:
        self._client = client
        self._settings = settings

    async def send(self, outgoing: Outgoing) -> str:
        message = outgoing.message
        sender, recipients = envelope(message)
        try:
            if not self._client.is_connected:
                await _connect(self._client, self._settings, _password(self._settings))
            errors, reply = await self._client.send_message(
                message, sender=sender, recipients=recipients
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            reasons = "; ".join(f"{r.code} {r.message}" for r in e.recipients)
            raise DeliveryError(", ".join(recipients), f"refused by the server: {reasons}") from e
        except aiosmtplib.SMTPResponseException as e:
            raise DeliveryError(
                ", ".join(recipients), f"the server answered {e.code} {e.message}"
            ) from e
        except (aiosmtplib.SMTPException, OSError) as e:
            raise DeliveryError(", ".join(recipients), f"SMTP failed: {e}") from e
        if errors:
            refused = "; ".join(f"{who}: {r.code} {r.message}" for who, r in errors.items())
            raise DeliveryError(", ".join(errors), f"refused by the server: {refused}")
        return f"smtp://{self._settings.host}:{self._settings.port} ({reply.strip()})"


@asynccontextmanager
async def smtp_session(settings: SmtpSettings) -> AsyncIterator[SmtpMailer]:
    """Connect, secure and log in once; raise DeliveryError if the server cannot be used."""
    password = _password(settings)
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout,
        use_tls=settings.security == "tls",
        start_tls=settings.security == "starttls",
        tls_context=_tls_context(settings),
    )
    await _connect(client, settings, password)
    try:
        yield SmtpMailer(client, settings)
    finally:
        await _close(client, polite=True)


async def _close(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    """QUIT (when polite) and close, then let the TLS shutdown finish before returning:
    asyncio.run() closing the loop earlier would leak the socket."""
    if not client.is_connected:
        return
    sock = client.get_transport_info("socket")
    try:
        if polite:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
    deadline = asyncio.get_running_loop().time() + 2.0
    while sock is not None and sock.fileno() != -1 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


async def _connect(client: aiosmtplib.SMTP, settings: SmtpSettings, password: str | None) -> None:
    where = f"{settings.host}:{settings.port}"
    try:
        await client.connect()
        if settings.username:
            await client.login(settings.username, password or "")
    except aiosmtplib.SMTPAuthenticationError as e:
        await _close(client)
        raise DeliveryError(
            where, f"login as {settings.username} refused ({e.code} {e.message})"
        ) from e
    except (aiosmtplib.SMTPException, OSError) as e:
        await _close(client)
        raise DeliveryError(where, f"cannot use the SMTP server: {e}") from e


def _password(settings: SmtpSettings) -> str | None:
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if password is None:
        raise DeliveryError(
            settings.host, f"the environment variable {settings.password_env} is not set"
        )
    return password


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class FileMailer:
    """Writes `<output>/<date>/<name>.eml`, `.html` and `.txt` instead of sending."""

    def __init__(self, output: Path) -> None:
        self._output = output

    async def send(self, outgoing: Outgoing) -> str:
        folder = self._output / outgoing.local_date.isoformat()
        name = file_stem(outgoing.name)
        try:
            write_atomic(folder / f"{name}.html", outgoing.html.encode())
            write_atomic(folder / f"{name}.txt", outgoing.text.encode())
            write_atomic(folder / f"{name}.eml", outgoing.message.as_bytes())
        except OSError as e:
            raise DeliveryError(str(folder), f"cannot write the digest: {e.strerror}") from e
        return str(folder / f"{name}.eml")


def file_stem(name: str) -> str:
    """A subscriber's name made safe to use as a file name."""
    return _SAFE_NAME.sub("_", name).strip("._") or "subscriber"


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file, fsync and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
