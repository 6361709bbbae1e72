"""compose_bytes (what a run sends) gives a mail reader the same message as compose (the
email package's own encoder): every header, and both parts' text, whatever the text holds."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.send import _clean, _display_name, compose, compose_bytes, envelope, wire_form

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
# text a digest's parts hold: any line, long words, trailing spaces, "=", dots, wide letters
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=1500
) | st.lists(
    st.sampled_from(["x" * 200, "a = b", ".", ". ", "..", "end  ", "\t", "é", "論文", "=20", ""]),
    max_size=40,
).map("\n".join)


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def both(**changes: str) -> tuple[EmailMessage, EmailMessage, bytes]:
    args = {
        "sender": "Morning papers <digest@example.org>",
        "to_name": "Ada Lovelace",
        "to_address": "ada@example.org",
        "subject": "Morning papers — 3 new: Vision–language 論文",
        "text": "1. A paper\n   why: vision\n",
        "html": "<p>A paper</p>",
        "msg_id": "<digest.2026-11-23.abc@example.org>",
        "now": NOW,
        "list_name": "Morning papers",
        "unsubscribe_url": "https://example.org/unsubscribe",
        **changes,
    }
    raw, _ = compose_bytes(**args)  # type: ignore[arg-type]
    fast = parsed(raw)
    assert str(fast["Subject"]) == _clean(str(args["subject"]))
    (to,) = fast["To"].addresses
    assert (to.display_name, to.addr_spec) == (
        _display_name(str(args["to_name"])),
        args["to_address"],
    )
    return fast, parsed(compose(**args).as_bytes()), raw  # type: ignore[arg-type]


def headers(message: EmailMessage) -> list[tuple[str, str]]:
    """Every header but the boundary's and the subject's, decoded; in any order. (The email
    package's own folding can lose the space before a wide character: "Vision–language 論文"
    reads back as "Vision–language論文", or add one inside a name. The subject and the To
    name are compared with what was meant.)"""
    skip = ("Content-Type", "Subject", "To")
    return sorted((k, str(v)) for k, v in message.items() if k not in skip)


def same(fast: EmailMessage, slow: EmailMessage) -> None:
    assert headers(fast) == headers(slow)
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    for subtype in ("plain", "html"):
        a, b = fast.get_body((subtype,)), slow.get_body((subtype,))
        assert a is not None and b is not None
        assert a.get_content_type() == b.get_content_type()
        assert a.get_content_charset() == b.get_content_charset() == "utf-8"
        assert a.get_content() == b.get_content()
    assert fast.get_body(("html", "plain")).get_content_type() == "text/html"  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None)
@given(text=TEXT, html=TEXT)
def test_the_fast_message_reads_as_the_email_packages_message(text: str, html: str) -> None:
    fast, slow, raw = both(text=text, html=html)
    same(fast, slow)
    assert all(len(line) <= 78 for line in raw.split(b"\n")), "quoted-printable lines"
    assert raw.isascii()


@settings(max_examples=40, deadline=None)
@given(subject=st.text(max_size=300), name=st.text(max_size=100))
def test_any_subject_and_name_read_back_as_meant(subject: str, name: str) -> None:
    fast, slow, _ = both(subject=subject, to_name=name)
    same(fast, slow)


def test_the_envelope_is_read_once_from_the_headers() -> None:
    fast, _, raw = both()
    _, env = compose_bytes(
        sender="Morning papers <digest@example.org>", to_name="Ada", to_address="ada@example.org",
        subject="s", text="t", html="h", msg_id="<m@example.org>", now=NOW,
    )  # fmt: skip
    assert env == ("digest@example.org", "ada@example.org")
    sender, recipients = envelope(fast)
    assert (sender, *recipients) == ("digest@example.org", "ada@example.org")
    data, size = wire_form(raw)
    assert data.endswith(b"\r\n.\r\n") and size > len(raw)
