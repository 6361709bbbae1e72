"""The email channel: each subscriber's digest composed once as an RFC 5322 message, sent over
a few SMTP connections, or written as files when the config has no [smtp]."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Literal

from ..errors import DeliveryError
from ..models import Config, Digest, Reader, Subscriber
from ..send import FileMailer, Mailer, Outgoing, SmtpMailer, compose_bytes, envelope, message_id
from .channel import Parcel, Recipient, Sender

#: digests written as files at once (each waits for its fsync on a thread of its own)
FILE_WRITERS = 4
#: what an email holds: no Markdown
_EMAIL_PARTS = frozenset({"html", "text"})


def subscriber_reader(config: Config, subscriber: Subscriber) -> Reader:
    return Reader(
        key=f"subscriber:{subscriber.name}",
        name=subscriber.name,
        profile=config.profiles[subscriber.profile],
        timezone=subscriber.timezone,
    )


class EmailChannel:
    """Subscribers' digests by email (SMTP), or as `.eml`, `.html` and `.txt` files."""

    kind = "email"
    empty_too = False

    def __init__(self, config: Config) -> None:
        self._config = config
        smtp = config.smtp
        self.delivered: Literal["sent", "written"] = "sent" if smtp else "written"
        self.attempts = smtp.attempts if smtp else 1
        self.backoff = smtp.backoff if smtp else 0.0
        self._subscribers = {s.name: s for s in config.subscribers}
        self._sender = smtp.sender if smtp else f"{config.settings.title} <digest@localhost>"
        #: the HTML and text of each digest prepared for files, until it is written
        self._parts: dict[str, tuple[str, str]] = {}

    def recipients(self) -> Sequence[Recipient]:
        return [Recipient(subscriber_reader(self._config, s)) for s in self._config.subscribers]

    def prepare(self, digest: Digest, recipient: Recipient, now: datetime) -> Parcel:
        from ..render import render

        settings = self._config.settings
        subscriber = self._subscribers[recipient.reader.name]
        rendered = render(
            digest, settings.templates, settings.unsubscribe_url, formats=_EMAIL_PARTS
        )
        msg_id = message_id(digest.reader.key, digest.local_date.isoformat(), self._sender)
        try:
            raw, address = compose_bytes(
                sender=self._sender,
                to_name=subscriber.name,
                to_address=subscriber.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                msg_id=msg_id,
                now=now,
                list_name=settings.title,
                unsubscribe_url=settings.unsubscribe_url,
            )
        except (ValueError, TypeError, IndexError) as e:  # what the email package raises
            reason = f"cannot compose a message to {subscriber.email!r}: {e}"
            raise DeliveryError(subscriber.name, reason, transient=False) from e
        if self._config.smtp is None:  # written as files: the parts as they were made
            self._parts[subscriber.name] = (rendered.html, rendered.text)
        return Parcel(
            digest.reader.key,
            subscriber.name,
            digest.local_date,
            raw,
            len(digest.picks),
            message_id=msg_id,
            envelope=address,
        )

    def resume(self, recipient: Recipient, body: bytes, day: date, picks: int) -> Parcel:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(body)
        sender, recipients = envelope(headers)
        return Parcel(
            recipient.reader.key,
            recipient.reader.name,
            day,
            body,
            picks,
            message_id=str(headers["Message-ID"] or "") or None,
            envelope=(sender, *recipients),
        )

    def senders(self, parcels: int) -> list[Sender]:
        smtp = self._config.smtp
        if smtp is None:
            output = self._config.settings.output
            count = max(1, min(FILE_WRITERS, parcels))
            return [_MailSender(FileMailer(output, self._parts)) for _ in range(count)]
        return [
            _MailSender(SmtpMailer(smtp)) for _ in range(max(1, min(smtp.connections, parcels)))
        ]

    def finish(self, delivered: Sequence[Recipient]) -> None:
        return None


class _MailSender:
    """A Mailer (one SMTP connection, or the output folder) as a channel's Sender."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    async def send(self, parcel: Parcel) -> str:
        sender, *recipients = parcel.envelope
        outgoing = Outgoing(parcel.body, sender, tuple(recipients), parcel.local_date, parcel.name)
        return await self._mailer.send(outgoing)

    async def close(self) -> None:
        await self._mailer.close()
