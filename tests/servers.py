"""Real local servers for tests: SMTP (aiosmtpd, STARTTLS + AUTH) and HTTP (conditional GET).

Everything binds to 127.0.0.1 only. Nothing is mocked: the code under test talks to real
sockets, so TLS validation, SMTP replies and HTTP caching headers are exercised for real.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
SMTP_USERNAME = "digest-bot"
SMTP_PASSWORD = "correct horse battery staple"


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd's own smtp_AUTH sets its deprecated Session.login_data and logs a WARNING
    for every successful login; that is noise in captured test logs, so drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataNotice())


def free_port() -> int:
    """Ask the OS for a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class LocalCA:
    """A throwaway CA (trustme) plus its PEM on disk, for clients to validate against."""

    ca: trustme.CA
    ca_path: str

    def server_context(self) -> ssl.SSLContext:
        """Server-side context with a cert valid for 127.0.0.1 and localhost."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # verify_mode=CERT_NONE
        self.ca.issue_cert(HOST, "localhost").configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Client-side context trusting only this CA (hostname checking stays on)."""
        return ssl.create_default_context(cafile=self.ca_path)


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    ca = trustme.CA()
    path: Path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return LocalCA(ca=ca, ca_path=str(path))


# -------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the SMTP server accepted (DATA answered 250)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    login: str | None  # authenticated user name, None without AUTH


class _Handler:
    """aiosmtpd handler hooks. Kept separate from SMTPServer on purpose: aiosmtpd treats
    every handler attribute named ``auth_*`` as an AUTH mechanism."""

    def __init__(self, owner: SMTPServer) -> None:
        self._owner = owner

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._owner.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._owner.data_count += 1
        if self._owner.on_data is not None:
            reply = self._owner.on_data(self._owner.data_count)
            if reply is not None:
                return reply
        if self._owner.data_reply is not None:
            return self._owner.data_reply
        raw = envelope.original_content or b""
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        # Parse with LF line ends so get_content() is free of wire-format CRLFs.
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        self._owner.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                login=login,
            )
        )
        return "250 2.0.0 Message accepted"


class _Controller(Controller):
    """aiosmtpd's threaded Controller, made safe to stop with clients still connected."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: list[SMTP] = []

    def factory(self) -> SMTP:
        # Pass loop= explicitly: otherwise SMTP() calls aiosmtpd's _get_or_new_eventloop(),
        # which toggles the process-global warning filters from this server thread.
        smtp = SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)
        self._connections = [c for c in self._connections if c.transport is not None]
        self._connections.append(smtp)
        return smtp

    def stop(self, no_assert: bool = False) -> None:
        # Controller.stop() only closes the listener: open client connections would be left
        # to the GC and surface as "unclosed transport" ResourceWarnings (errors under -W).
        if self.loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._drop_connections(), self.loop)
            future.result(timeout=5)
        super().stop(no_assert)

    async def _drop_connections(self) -> None:
        assert self.server is not None
        self.server.close()
        for smtp in self._connections:
            if isinstance(smtp.transport, asyncio.WriteTransport):
                smtp.transport.abort()  # for STARTTLS sessions this aborts the raw socket too
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=2)


class SMTPServer:
    """A real aiosmtpd server on 127.0.0.1 that can be stopped and restarted on one port.

    With ``tls_context`` it requires STARTTLS and AUTH (LOGIN/PLAIN, only over TLS) with
    ``username``/``password``; without, it is a plain open relay for loopback tests.
    """

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        ca_path: str | None = None,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        if (tls_context is None) != (username is None) or (username is None) != (password is None):
            raise ValueError("TLS, username and password go together (all or none)")
        self.host = HOST
        self.port = port or free_port()
        self.ca_path = ca_path
        self.username = username
        self.password = password
        self.messages: list[ReceivedMessage] = []
        self.failed_logins: list[str] = []  # user names of rejected AUTH attempts
        self.refused: set[str] = set()  # lower-cased recipients answered with 550
        self.data_reply: str | None = None  # when set, DATA is answered with this
        self.data_count = 0  # DATA commands received, accepted or not
        # called with data_count before a message is accepted; a reply string refuses it
        self.on_data: Callable[[int], str | None] | None = None
        self._tls_context = tls_context
        self._handler = _Handler(self)
        self._controller: _Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Start listening (again) on ``self.port``. A stopped Controller's loop is closed,
        so every start builds a fresh one."""
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {}
        if self._tls_context is not None:
            kwargs = {
                "tls_context": self._tls_context,
                "require_starttls": True,
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": True,
            }
        controller = _Controller(
            self._handler,
            hostname=self.host,  # bind address (Controller's meaning of "hostname")
            port=self.port,
            server_hostname="localhost",  # banner name; avoids a slow socket.getfqdn()
            ready_timeout=5.0,
            **kwargs,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening; connecting afterwards is refused until ``start()``."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def refuse(self, rcpt: str) -> None:
        """Answer ``RCPT TO:<rcpt>`` with 550 (other recipients still accepted)."""
        self.refused.add(rcpt.lower())

    def fail_data(self, reply: str | None = "451 4.3.0 Temporary failure, try later") -> None:
        """Answer DATA with ``reply`` (default a 451); ``None`` restores normal delivery."""
        self.data_reply = reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and data.login == self.username.encode()
            and data.password == self.password.encode()
        ):
            return AuthResult(success=True, auth_data=data)
        login = data.login if isinstance(data, LoginPassword) else b""
        self.failed_logins.append(login.decode(errors="replace"))
        return AuthResult(success=False, handled=False)  # -> "535 5.7.8 ... invalid"


@pytest.fixture
def smtp_server(tls_ca: LocalCA) -> Iterator[SMTPServer]:
    """STARTTLS-required, AUTH-required SMTP server; trust ``ca_path`` in the client."""
    server = SMTPServer(
        tls_context=tls_ca.server_context(),
        ca_path=tls_ca.ca_path,
        username=SMTP_USERNAME,
        password=SMTP_PASSWORD,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_plain_server() -> Iterator[SMTPServer]:
    """Plain SMTP: no STARTTLS, no AUTH (``ca_path``/``username``/``password`` are None)."""
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


# -------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, including any query string
    headers: dict[str, str]  # names lower-cased
    status: int
    client_port: int = 0  # the same port for two requests: one kept-alive connection


@dataclass(frozen=True)
class _Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: int  # epoch seconds
    extra_headers: Mapping[str, str]  # e.g. Content-Encoding for a pre-compressed body


@dataclass(frozen=True)
class _Override:
    status: int
    headers: Mapping[str, str]


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison (RFC 9110 13.1.2)."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(header: str, last_modified: int) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return False  # unparseable dates are ignored, per RFC 9110 13.1.3
    return last_modified <= since


class _HTTPD(ThreadingHTTPServer):
    # Join handler threads on server_close() so none outlives the fixture.
    daemon_threads = False
    block_on_close = True

    def __init__(self, site: HTTPServer) -> None:
        self.site = site
        super().__init__((HOST, 0), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (e.g. a timeout test) are normal; other errors still print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPD
    timeout = 10  # an idle client cannot pin a handler thread (and teardown) for long

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: requests are recorded in HTTPServer.requests instead

    def setup(self) -> None:
        super().setup()
        if self.server.site.keep_alive:
            self.protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        site = self.server.site
        path = urlsplit(self.path).path
        if site._wait(path):
            return  # server closing: drop the connection without an answer
        status, headers, body = site._respond(path, self.headers)
        port = self.client_address[1]
        site._record(self.command, self.path, dict(self.headers.items()), status, port)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and status != 304:
            interval = site._drip_interval(path)
            if not interval:
                self.wfile.write(body)
                return
            for i in range(len(body)):  # a slow-drip server: one byte at a time
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if site._closing.wait(interval):
                    return


class HTTPServer:
    """Threaded HTTP/1.0 server on 127.0.0.1 serving an in-memory, mutable set of files.

    Strong ETags (sha256 of the body) and Last-Modified (bumped whenever a body changes) make
    conditional GETs answer 304, and every request is logged in ``requests``.
    """

    def __init__(self, *, keep_alive: bool = False) -> None:
        #: answer as HTTP/1.1, keeping connections open between requests
        self.keep_alive = keep_alive
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._overrides: dict[str, _Override] = {}
        self._delays: dict[str, float] = {}
        self._drips: dict[str, float] = {}
        self._closing = threading.Event()
        self._httpd = _HTTPD(self)
        self.host = HOST
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def set(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        *,
        last_modified: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Serve ``body`` at ``path``. A changed body gets a Last-Modified strictly later
        than the previous one (even within the same second) so If-Modified-Since sees it."""
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        with self._lock:
            old = self._resources.get(path)
            if last_modified is not None:
                modified = int(last_modified)
            elif old is not None and old.etag == etag:
                modified = old.last_modified
            else:
                modified = int(time.time())
                if old is not None:
                    modified = max(modified, old.last_modified + 1)
            self._resources[path] = _Resource(
                body, content_type, etag, modified, dict(headers or {})
            )

    def remove(self, path: str) -> None:
        """Forget ``path`` (it answers 404 from now on)."""
        with self._lock:
            self._resources.pop(path, None)

    def set_status(
        self, path: str, code: int | None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer ``path`` with ``code`` (+ e.g. Location/Retry-After headers) whatever the
        content; ``None`` goes back to serving the content."""
        with self._lock:
            if code is None:
                self._overrides.pop(path, None)
            else:
                self._overrides[path] = _Override(code, dict(headers or {}))

    def delay(self, path: str, seconds: float) -> None:
        """Wait ``seconds`` before answering ``path`` (0 removes the delay)."""
        with self._lock:
            if seconds > 0:
                self._delays[path] = seconds
            else:
                self._delays.pop(path, None)

    def drip(self, path: str, interval: float) -> None:
        """Send ``path``'s body one byte every ``interval`` seconds (0: all at once)."""
        with self._lock:
            if interval > 0:
                self._drips[path] = interval
            else:
                self._drips.pop(path, None)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path == path]

    def close(self) -> None:
        self._closing.set()  # wakes delayed handlers
        self._httpd.shutdown()
        self._httpd.server_close()  # joins handler threads
        self._thread.join()

    # Called from handler threads.

    def _wait(self, path: str) -> bool:
        with self._lock:
            seconds = self._delays.get(path, 0.0)
        return self._closing.wait(seconds) if seconds else False

    def _drip_interval(self, path: str) -> float:
        with self._lock:
            return self._drips.get(path, 0.0)

    def _respond(self, path: str, headers: Message) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            override = self._overrides.get(path)
            resource = self._resources.get(path)
        if override is not None:
            body = f"{override.status} (set_status)\n".encode()
            return override.status, {"Content-Type": "text/plain", **override.headers}, body
        if resource is None:
            return 404, {"Content-Type": "text/plain"}, b"404 not found\n"
        validators = {
            "ETag": resource.etag,
            "Last-Modified": formatdate(resource.last_modified, usegmt=True),
        }
        inm = headers.get("If-None-Match")
        ims = headers.get("If-Modified-Since")
        if inm is not None:
            fresh = _etag_matches(inm, resource.etag)
        else:
            fresh = ims is not None and _not_modified_since(ims, resource.last_modified)
        if fresh:
            return 304, validators, b""
        headers_out = {"Content-Type": resource.content_type, **resource.extra_headers}
        return 200, {**headers_out, **validators}, resource.body

    def _record(
        self, method: str, path: str, headers: dict[str, str], status: int, port: int
    ) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        entry = RecordedRequest(method, path, lowered, status, port)
        with self._lock:
            self.requests.append(entry)


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    server = HTTPServer()
    yield server
    server.close()


@pytest.fixture
def http11_server() -> Iterator[HTTPServer]:
    """The same server answering HTTP/1.1 with keep-alive."""
    server = HTTPServer(keep_alive=True)
    yield server
    server.close()
