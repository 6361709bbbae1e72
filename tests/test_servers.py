"""Prove the real test servers in servers.py behave like the real thing."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import pytest
from servers import SMTP_PASSWORD, SMTP_USERNAME, HTTPServer, LocalCA, SMTPServer

# Fixtures (smtp_server, smtp_plain_server, http_server, tls_ca) come from servers.py,
# registered by tests/conftest.py via pytest_plugins = ["servers"].

FROM = "digest@example.org"
TO = "reader@example.org"


def make_message(to: str | list[str] = TO, subject: str = "Daily digest") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject
    msg.set_content("Hello from the test suite.\n")
    return msg


async def wait_socket_closed(sock: Any, timeout: float = 2.0) -> None:
    """After close(), a TLS transport still needs loop turns for the close_notify exchange.

    If asyncio.run() closes the loop first, the socket is leaked and a ResourceWarning
    ("unclosed transport") fails the run under -W error.
    """
    deadline = time.monotonic() + timeout
    while sock is not None and sock.fileno() != -1 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def smtp_client(
    server: SMTPServer, *, start_tls: bool | None = None, tls_context: ssl.SSLContext | None = None
) -> AsyncIterator[aiosmtplib.SMTP]:
    """A connected aiosmtplib client; STARTTLS (validated against the test CA) by default
    when the server offers TLS. Quits, closes and waits for the socket to really close."""
    use_tls = server.ca_path is not None if start_tls is None else start_tls
    if use_tls and tls_context is None:
        tls_context = ssl.create_default_context(cafile=server.ca_path)
    client = aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        start_tls=use_tls,
        tls_context=tls_context if use_tls else None,
        local_hostname="localhost",
        timeout=5,
    )
    await client.connect()
    sock = client.get_transport_info("socket")
    try:
        yield client
    finally:
        if client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
        client.close()
        await wait_socket_closed(sock)


def send(
    server: SMTPServer,
    msg: EmailMessage,
    *,
    password: str | None = None,
    login: bool | None = None,
    start_tls: bool | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> dict[str, aiosmtplib.SMTPResponse]:
    """Deliver one message the way a correctly configured client would; returns the
    per-recipient errors (refused recipients) like aiosmtplib.send()."""

    async def run() -> dict[str, aiosmtplib.SMTPResponse]:
        async with smtp_client(server, start_tls=start_tls, tls_context=tls_context) as client:
            if login if login is not None else server.username is not None:
                await client.login(server.username or "", password or server.password or "")
            errors, _ = await client.send_message(msg)
            return errors

    return asyncio.run(run())


# -------------------------------------------------------------------------- SMTP


def test_starttls_login_message_is_recorded(smtp_server: SMTPServer) -> None:
    assert send(smtp_server, make_message()) == {}

    [got] = smtp_server.messages
    assert got.mail_from == FROM
    assert got.rcpt_tos == [TO]
    assert got.login == SMTP_USERNAME
    assert got.message["Subject"] == "Daily digest"
    assert got.message.get_content() == "Hello from the test suite.\n"
    assert b"Subject: Daily digest\r\n" in got.raw


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_mechanisms_with_explicit_tls_context(
    smtp_server: SMTPServer, tls_ca: LocalCA, mechanism: str
) -> None:
    async def run() -> None:
        async with smtp_client(smtp_server, tls_context=tls_ca.client_context()) as client:
            assert client.get_transport_info("sslcontext") is not None
            await client.ehlo()  # capabilities are asked again after STARTTLS
            assert mechanism.lower() in client.server_auth_methods
            auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            response = await auth(SMTP_USERNAME, SMTP_PASSWORD)
            assert response.code == 235
            await client.send_message(make_message())

    asyncio.run(run())
    assert [m.login for m in smtp_server.messages] == [SMTP_USERNAME]


def test_certificate_from_unknown_ca_is_rejected(smtp_server: SMTPServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        send(smtp_server, make_message(), tls_context=ssl.create_default_context())
    assert smtp_server.messages == []


def test_wrong_password_is_rejected_and_recorded(smtp_server: SMTPServer) -> None:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as excinfo:
        send(smtp_server, make_message(), password="wrong")
    assert excinfo.value.code == 535
    # aiosmtplib tries each offered mechanism (PLAIN, LOGIN) before giving up.
    assert smtp_server.failed_logins and set(smtp_server.failed_logins) == {SMTP_USERNAME}
    assert smtp_server.messages == []


def test_mail_without_starttls_or_auth_is_refused(smtp_server: SMTPServer) -> None:
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as excinfo:
        send(smtp_server, make_message(), start_tls=False, login=False)
    assert (excinfo.value.code, "STARTTLS" in excinfo.value.message) == (530, True)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as excinfo:
        send(smtp_server, make_message(), login=False)
    assert (excinfo.value.code, "Authentication required" in excinfo.value.message) == (530, True)
    assert smtp_server.messages == []


def test_refused_recipient_gets_550_others_delivered(smtp_server: SMTPServer) -> None:
    smtp_server.refuse("Bad@Example.org")
    errors = send(smtp_server, make_message([TO, "bad@example.org"]))

    assert list(errors) == ["bad@example.org"]
    assert errors["bad@example.org"].code == 550
    assert [m.rcpt_tos for m in smtp_server.messages] == [[TO]]

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        send(smtp_server, make_message("bad@example.org"))


def test_data_451_then_recovers(smtp_server: SMTPServer) -> None:
    smtp_server.fail_data()
    with pytest.raises(aiosmtplib.SMTPDataError) as excinfo:
        send(smtp_server, make_message())
    assert excinfo.value.code == 451
    assert smtp_server.messages == []

    smtp_server.fail_data(None)
    send(smtp_server, make_message())
    assert len(smtp_server.messages) == 1


def test_stop_then_start_on_same_port(smtp_server: SMTPServer) -> None:
    port = smtp_server.port
    smtp_server.stop()
    assert not smtp_server.running
    with pytest.raises(aiosmtplib.SMTPConnectError):
        send(smtp_server, make_message())

    smtp_server.start()
    assert smtp_server.port == port
    send(smtp_server, make_message())
    assert len(smtp_server.messages) == 1


def test_stop_with_a_client_still_connected(smtp_server: SMTPServer) -> None:
    """A client left mid-session must not leak sockets/warnings or block stop()."""

    async def run() -> None:
        async with smtp_client(smtp_server) as client:
            await client.login(SMTP_USERNAME, SMTP_PASSWORD)
            smtp_server.stop()
            with pytest.raises(aiosmtplib.SMTPServerDisconnected):
                await client.noop()

    asyncio.run(run())
    smtp_server.start()
    send(smtp_server, make_message())
    assert len(smtp_server.messages) == 1


def test_plain_server_needs_no_tls_or_auth(smtp_plain_server: SMTPServer) -> None:
    assert smtp_plain_server.ca_path is None
    assert send(smtp_plain_server, make_message()) == {}
    [got] = smtp_plain_server.messages
    assert got.login is None
    assert got.rcpt_tos == [TO]


# -------------------------------------------------------------------------- HTTP


def test_etag_conditional_get_gives_304_and_is_logged(http_server: HTTPServer) -> None:
    http_server.set("/feed.xml", b"<rss/>", content_type="application/rss+xml")
    with httpx.Client(timeout=5) as client:
        first = client.get(http_server.url("/feed.xml"))
        assert first.status_code == 200
        assert first.content == b"<rss/>"
        assert first.headers["content-type"] == "application/rss+xml"
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")

        second = client.get(http_server.url("/feed.xml"), headers={"If-None-Match": etag})
        assert second.status_code == 304
        assert second.content == b""
        assert second.headers["etag"] == etag

    log = http_server.requests_for("/feed.xml")
    assert [(r.method, r.status) for r in log] == [("GET", 200), ("GET", 304)]
    assert "if-none-match" not in log[0].headers
    assert log[1].headers["if-none-match"] == etag


def test_last_modified_and_changed_body(http_server: HTTPServer) -> None:
    http_server.set("/a", b"one")
    with httpx.Client(timeout=5) as client:
        first = client.get(http_server.url("/a"))
        lm = first.headers["last-modified"]
        assert (
            client.get(http_server.url("/a"), headers={"If-Modified-Since": lm}).status_code == 304
        )

        http_server.set("/a", b"two")  # same second: Last-Modified still moves forward
        changed = client.get(
            http_server.url("/a"),
            headers={"If-Modified-Since": lm, "If-None-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200
        assert changed.content == b"two"
        assert changed.headers["etag"] != first.headers["etag"]
        assert changed.headers["last-modified"] != lm


def test_set_status_remove_and_missing(http_server: HTTPServer) -> None:
    http_server.set("/feed", b"data")
    with httpx.Client(timeout=5) as client:
        http_server.set_status("/feed", 404)
        assert client.get(http_server.url("/feed")).status_code == 404
        http_server.set_status("/feed", 500)
        assert client.get(http_server.url("/feed")).status_code == 500
        http_server.set_status("/feed", None)
        assert client.get(http_server.url("/feed")).status_code == 200
        http_server.remove("/feed")
        assert client.get(http_server.url("/feed")).status_code == 404
        assert client.get(http_server.url("/never")).status_code == 404
    assert [r.status for r in http_server.requests] == [404, 500, 200, 404, 404]


def test_redirect_headers(http_server: HTTPServer) -> None:
    http_server.set("/new", b"moved here")
    http_server.set_status("/old", 301, {"Location": http_server.url("/new")})
    with httpx.Client(timeout=5, follow_redirects=True) as client:
        response = client.get(http_server.url("/old"))
    assert response.status_code == 200
    assert response.content == b"moved here"
    assert [r.status for r in http_server.requests] == [301, 200]


def test_delay_makes_client_time_out(http_server: HTTPServer) -> None:
    http_server.set("/slow", b"late")
    http_server.delay("/slow", 30)
    with httpx.Client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(http_server.url("/slow"))
    # Teardown must not wait the 30 s: close() wakes the delayed handler.
