"""The Markdown channel: a page per day for a wiki folder, an index of the pages, and a
static HTML archive of them (`digest archive`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from ..errors import DeliveryError
from ..models import Config, Digest, MarkdownOutput, Reader
from ..send import file_stem, write_atomic
from ..state import Store, open_store
from .channel import Parcel, Recipient, Sender

log = logging.getLogger("digest")


def markdown_reader(config: Config, output: MarkdownOutput) -> Reader:
    shown = os.path.relpath(output.path, config.path.parent)
    return Reader(
        key=f"markdown:{shown}",
        name=shown,
        profile=config.profiles[output.profile],
        timezone=config.settings.timezone,
    )


def page_path(output: MarkdownOutput, day: date) -> Path:
    return Path(output.path.replace("{date}", day.isoformat()))


class MarkdownChannel:
    """Each [[markdown]] output's page of the day, written whenever a run delivers."""

    kind = "markdown"
    empty_too = True
    delivered: Literal["sent", "written"] = "written"
    attempts = 1
    backoff = 0.0

    def __init__(self, config: Config, store: Store) -> None:
        self._config = config
        self._store = store
        self._outputs = {markdown_reader(config, o).name: o for o in config.markdown}

    def recipients(self) -> Sequence[Recipient]:
        return [
            Recipient(markdown_reader(self._config, o), scheduled=False)
            for o in self._config.markdown
        ]

    def prepare(self, digest: Digest, recipient: Recipient, now: datetime) -> Parcel:
        from ..render import render

        rendered = render(digest, self._config.settings.templates, formats=frozenset({"markdown"}))
        page = rendered.markdown.encode()
        return self.resume(recipient, page, digest.local_date, len(digest.picks))

    def resume(self, recipient: Recipient, body: bytes, day: date, picks: int) -> Parcel:
        path = page_path(self._outputs[recipient.reader.name], day)
        reader = recipient.reader
        return Parcel(reader.key, reader.name, day, body, picks, target=str(path))

    def senders(self, parcels: int) -> list[Sender]:
        return [_PageWriter()]

    def finish(self, delivered: Sequence[Recipient]) -> None:
        from ..render import render_index

        for recipient in delivered:
            output = self._outputs[recipient.reader.name]
            if output.index is None:
                continue
            pages = [
                (d.local_date, os.path.relpath(d.target, output.index.parent), len(d.entry_ids))
                for d in self._store.deliveries(recipient.reader.key)
                if d.status == "written" and d.target
            ]
            try:
                write_atomic(
                    output.index, render_index(self._config.settings.title, pages).encode()
                )
            except OSError as e:
                log.error("cannot write the index %s: %s", output.index, e.strerror)


class _PageWriter:
    async def send(self, parcel: Parcel) -> str:
        assert parcel.target is not None, "a page knows its path"
        try:
            write_atomic(Path(parcel.target), parcel.body)
        except OSError as e:
            raise DeliveryError(parcel.name, f"cannot write {parcel.target}: {e.strerror}") from e
        return parcel.target

    async def close(self) -> None:
        return None


def archive(config: Config, out: Path) -> list[Path]:
    """Render every Markdown page in the ledger into `out` as HTML, with an index page.

    Pages go to `out/<profile>/<date>.html`, so several [[markdown]] outputs can share one
    archive. Returns the paths written."""
    from ..render import archive_page

    written: list[Path] = []
    sections: list[str] = []
    with open_store(config.settings.state, "read") as store:
        for output in config.markdown:
            reader = markdown_reader(config, output)
            folder = out / file_stem(output.profile)
            lines = [f"## {output.profile}", ""]
            for d in store.deliveries(reader.key):
                source = Path(d.target) if d.target else None
                if d.status != "written" or source is None or not source.is_file():
                    continue
                page = folder / f"{d.local_date.isoformat()}.html"
                html = archive_page(
                    f"{config.settings.title} — {d.local_date}",
                    source.read_text(encoding="utf-8"),
                    up="../index.html",
                )
                write_atomic(page, html.encode())
                written.append(page)
                count = len(d.entry_ids)
                lines.append(f"- [{d.local_date}]({folder.name}/{page.name}) — {count} new")
            sections.append("\n".join(lines))
    index = "\n\n".join([f"# {config.settings.title}", *sections]) + "\n"
    write_atomic(out / "index.html", archive_page(config.settings.title, index).encode())
    return written
