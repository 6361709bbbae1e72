"""Composing messages, and delivering them to a real aiosmtpd or to files."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st
from servers import SMTPServer

from digest.errors import DeliveryError
from digest.models import SmtpSettings
from digest.send import FileMailer, Outgoing, compose, message_id, smtp_session, wire_form

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SENDER = "Morning papers <digest@example.org>"


def message(
    subject: str = "Papers — 2026-11-20: 3 new",
    to_name: str = "ada",
    list_name: str = "digest",
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    return compose(
        sender=SENDER,
        to_name=to_name,
        to_address="ada@example.org",
        subject=subject,
        text="plain text\n",
        html="<p>html</p>\n",
        msg_id=message_id("subscriber:ada", "2026-11-20", SENDER),
        now=NOW,
        list_name=list_name,
        unsubscribe_url=unsubscribe_url,
    )


def outgoing(msg: EmailMessage, name: str = "ada") -> Outgoing:
    return Outgoing.of(msg, date(2026, 11, 20), name)


def test_message_id_is_fixed_per_reader_and_date_on_the_senders_domain() -> None:
    one = message_id("subscriber:ada", "2026-11-20", SENDER)
    assert one == message_id("subscriber:ada", "2026-11-20", SENDER)
    assert one != message_id("subscriber:ada", "2026-11-21", SENDER)
    assert one != message_id("subscriber:grace", "2026-11-20", SENDER)
    assert one.startswith("<") and one.endswith("@example.org>")


def test_header_injection_through_a_subject_or_name_adds_no_header() -> None:
    msg = message(subject="Hi\r\nBcc: victim@example.net", to_name="ada\nBcc: x@example.net")
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None
    assert b"\nBcc:" not in msg.as_bytes()
    assert parsed["Subject"] == "Hi Bcc: victim@example.net"


def test_non_ascii_subject_is_encoded_and_round_trips() -> None:
    subject = "Frühstückspapiere — 2026-11-20: 3 new ✓"
    raw = message(subject=subject).as_bytes()
    header_block = raw.split(b"\n\n", 1)[0]
    assert header_block.isascii()
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject


def test_message_is_multipart_alternative_with_text_first() -> None:
    msg = message()
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Date"] == "Fri, 20 Nov 2026 06:00:00 +0000"


def settings(server: SMTPServer, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "sender": SENDER,
        "username": server.username,
        "password_env": "TEST_DIGEST_PASSWORD",
        "ca_file": Path(server.ca_path) if server.ca_path else None,
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpSettings(**values)  # type: ignore[arg-type]


async def send_one(config: SmtpSettings, msg: EmailMessage) -> str:
    async with smtp_session(config) as mailer:
        return await mailer.send(outgoing(msg))


def test_delivers_over_starttls_with_auth(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DIGEST_PASSWORD", smtp_server.password or "")
    target = asyncio.run(send_one(settings(smtp_server), message()))
    assert target.startswith(f"smtp://{smtp_server.host}:{smtp_server.port}")
    (received,) = smtp_server.messages
    assert received.login == smtp_server.username
    assert received.rcpt_tos == ["ada@example.org"]
    assert received.message["Message-ID"] == message()["Message-ID"]


def test_a_wrong_password_is_a_clear_error(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DIGEST_PASSWORD", "not-the-password")
    with pytest.raises(DeliveryError, match="login as .* refused") as error:
        asyncio.run(send_one(settings(smtp_server), message()))
    assert "not-the-password" not in str(error.value)
    assert smtp_server.messages == []


def test_a_certificate_from_an_unknown_ca_is_refused(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DIGEST_PASSWORD", smtp_server.password or "")
    with pytest.raises(DeliveryError, match="(?i)certificate"):
        asyncio.run(send_one(settings(smtp_server, ca_file=None), message()))
    assert smtp_server.messages == []


def test_a_temporary_failure_on_data_is_reported_with_the_servers_reply(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DIGEST_PASSWORD", smtp_server.password or "")
    smtp_server.fail_data("451 4.3.0 Try again later")
    with pytest.raises(DeliveryError, match="451"):
        asyncio.run(send_one(settings(smtp_server), message()))


def test_plain_smtp_to_a_loopback_server(smtp_plain_server: SMTPServer) -> None:
    config = settings(smtp_plain_server, security="none", username=None, password_env=None)
    asyncio.run(send_one(config, message()))
    assert len(smtp_plain_server.messages) == 1


def test_a_missing_password_variable_names_the_variable(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_DIGEST_PASSWORD", raising=False)
    with pytest.raises(DeliveryError, match="TEST_DIGEST_PASSWORD is not set"):
        asyncio.run(send_one(settings(smtp_server), message()))


def test_file_mailer_writes_every_part_inside_the_output_folder(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "out")
    target = asyncio.run(mailer.send(outgoing(message(), name="../../etc/ada")))
    folder = tmp_path / "out" / "2026-11-20"
    written = sorted(p.name for p in folder.iterdir())
    assert len(written) == 3 and all("/" not in name for name in written)
    assert Path(target).parent == folder
    assert {Path(name).suffix for name in written} == {".eml", ".html", ".txt"}
    parsed = message_from_bytes(Path(target).read_bytes(), policy=policy.default)
    assert parsed["To"] == "ada <ada@example.org>"


def test_list_headers_offer_unsubscribe_and_one_click_only_over_https() -> None:
    plain = message()
    assert plain["List-Id"] == "digest <digest.example.org>"
    assert plain["List-Unsubscribe"] == (
        "<mailto:digest@example.org?subject=unsubscribe%20ada%40example.org>"
    )
    assert plain["List-Unsubscribe-Post"] is None
    https = message(list_name="Morning papers", unsubscribe_url="https://example.org/unsubscribe")
    assert https["List-Id"] == "Morning papers <morning-papers.example.org>"
    assert https["List-Unsubscribe"].startswith("<https://example.org/unsubscribe>, <mailto:")
    assert https["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    http = message(list_name="Morning papers", unsubscribe_url="http://example.org/u")
    assert http["List-Unsubscribe-Post"] is None


def test_a_long_or_tricky_to_name_never_changes_the_recipient() -> None:
    for name in (
        "x" * 64 + " <evil@x.example>",
        'Ada "the" [admin], Lovelace' * 3,
        "a\r\nBcc: e@x",
    ):
        raw = message(to_name=name).as_bytes()
        parsed = message_from_bytes(raw, policy=policy.default)
        (address,) = parsed["To"].addresses
        assert address.addr_spec == "ada@example.org", name
        assert parsed["Bcc"] is None


@given(st.binary().map(lambda b: bytes(b"ab.\r\n"[x % 5] for x in b)))
def test_the_wire_form_is_what_aiosmtplib_would_send(raw: bytes) -> None:
    """We prepare DATA ourselves (aiosmtplib's regex passes cost more than the rest of a
    send); it must be byte for byte what aiosmtplib's own functions make of the message."""
    crlf = normalize_message_line_endings(raw)
    assert wire_form(raw) == (PERIOD_REGEX.sub(b"..", crlf) + b".\r\n", len(crlf))


def test_dot_lines_arrive_intact_and_a_refused_recipient_fails_alone(
    smtp_plain_server: SMTPServer,
) -> None:
    config = settings(smtp_plain_server, security="none", username=None, password_env=None)
    text = ".\n..two dots\n.one dot\nlast line\n"
    msg = compose(
        sender=SENDER,
        to_name="ada",
        to_address="ada@example.org",
        subject="dots",
        text=text,
        html="<p>html</p>\n",
        msg_id=message_id("subscriber:ada", "2026-11-20", SENDER),
        now=NOW,
    )
    msg.replace_header("To", "ada@example.org, refused@example.org")
    assert b"\n..two dots\n" in msg.as_bytes()  # lines DATA must dot-stuff
    smtp_plain_server.refuse("refused@example.org")
    with pytest.raises(DeliveryError, match="refused@example.org: 550"):
        asyncio.run(send_one(config, msg))
    (received,) = smtp_plain_server.messages
    assert received.rcpt_tos == ["ada@example.org"]
    assert received.raw == normalize_message_line_endings(msg.as_bytes())
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content() == text
