"""`[[subscriber_lists]]`: subscribers from CSV files, for lists too long for TOML tables.

A list is a UTF-8 CSV file (RFC 4180: commas, double quotes, CRLF or LF line ends; a BOM is
skipped) whose header row names its columns: the keys of a `[[subscribers]]` table. Every
row is read as one such table by the same code (`Reader.record_fields` with the table's
Spec), so its values are checked exactly as the table's are; an empty field is a key left
out, so it takes the table's default. Every problem is one line naming the file, the line
and the column, `subscribers.csv:17: email: ...`, and costs the file, never a traceback.

Names unique across every source and profiles defined are checked by the document
(`config/__init__.py`), which knows the other sources.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models import Subscriber
from .checks import one_line
from .tables import Reader, Spec

#: bytes a list may hold: some 2 million subscribers; a larger one is refused before it is
#: read (split it into several lists)
MAX_LIST_BYTES = 200 * 1024 * 1024
_MB = 1024 * 1024


def shown_list(config_shown: str, written: str) -> str:
    """A list's file as errors name it: as written, relative to the config file's
    directory as the user named it."""
    return one_line(os.path.join(os.path.dirname(config_shown), os.path.expanduser(written)))


def read_list(
    reader: Reader,
    spec: Spec,
    path: Path,
    shown: str,
    defaults: Mapping[str, Any],
    *,
    key: str,
) -> Iterator[tuple[int, Subscriber]]:
    """Each row of the CSV file at `path` as (its line number, its Subscriber), in file
    order; `spec` is the `[[subscribers]]` table's, `defaults` the file's defaults for it
    (the zone); `key` names the table that names the file, for the errors about opening it."""
    data = _read(reader, path, key)
    text = _text(data, shown)
    columns = [k.name for k in spec.plan]
    required = [
        k.name
        for k in spec.plan
        if k.required and k.field not in spec.defaults and k.field not in defaults
    ]
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    line = 1  # where the next record starts
    while True:
        start = line
        try:
            row = next(rows, None)
        except csv.Error as e:
            reason = _csv_problem(e, start, rows.line_num)
            raise ConfigError(f"{shown}:{start}", None, reason) from e
        if row is None:
            break
        line = rows.line_num + 1
        if not row:
            continue  # a blank line
        if header is None:
            header = _header(row, columns, required, shown, start)
            optional = [c for c in header if c not in required]
            continue
        if len(row) != len(header):
            fix = (
                "more than the header's {} ({}): quote a value that holds a comma"
                if len(row) > len(header)
                else "fewer than the header's {} ({}): an empty field takes its default, "
                "but keep its comma"
            )
            reason = f"{len(row)} fields, " + fix.format(len(header), ",".join(header))
            raise ConfigError(f"{shown}:{start}", None, one_line(reason))
        table = dict(zip(header, row, strict=True))
        for column in optional:
            if not table[column]:
                del table[column]  # an empty field is a key left out: its default
        try:
            fields = reader.record_fields(spec, table, "", defaults=defaults)
        except ConfigError as e:
            raise ConfigError(f"{shown}:{start}", e.key, e.reason) from e
        yield start, Subscriber(**fields)
    if header is None:
        raise ConfigError(
            shown, None, f"empty: a header row is needed first, e.g. {','.join(columns)}"
        )


def _read(reader: Reader, path: Path, key: str) -> bytes:
    where = f"{key}.path"
    data = b""
    try:
        size = path.stat().st_size
        # a directory, a pipe (whose open would wait for a writer) or a device
        if not path.is_file():
            raise reader.fail(where, f"not a regular file: {path}")
        if size <= MAX_LIST_BYTES:
            with path.open("rb") as f:
                data = f.read(MAX_LIST_BYTES + 1)  # capped: it may have grown since
    except FileNotFoundError as e:
        raise reader.fail(where, f"no such file: {path}") from e
    except OSError as e:
        raise reader.fail(where, f"cannot read {path}: {e.strerror or e}") from e
    if size > MAX_LIST_BYTES or len(data) > MAX_LIST_BYTES:
        raise reader.fail(
            where,
            f"{path} holds {max(size, len(data)) / _MB:,.0f} MB; a list may hold at most "
            f"{MAX_LIST_BYTES // _MB} MB (split it into several [[subscriber_lists]])",
        )
    return data


def _text(data: bytes, shown: str) -> str:
    """The file's text; a UTF-8 BOM (as spreadsheets write it) skipped."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(shown, None, "UTF-16 text; save the list as UTF-8 CSV")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    nul = data.find(b"\0")
    if nul >= 0:
        reason = "holds a NUL byte: not a CSV text file (a spreadsheet's own format?)"
        raise ConfigError(f"{shown}:{_line_at(data, nul)}", None, reason)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _line_at(data, e.start)
        raise ConfigError(f"{shown}:{line}", None, "not UTF-8 text; save the list as UTF-8") from e


def _line_at(data: bytes, offset: int) -> int:
    """The line number of the byte at `offset`, counting CRLF, LF and CR line ends as the
    CSV reader does."""
    before = data[:offset]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def _header(
    row: list[str], columns: list[str], required: list[str], shown: str, line: int
) -> list[str]:
    where = f"{shown}:{line}"
    header = [name.strip() for name in row]
    expected = ",".join(columns)
    for name in header:
        if name not in columns:
            hint = (
                "; the columns are separated by commas"
                if len(header) == 1 and any(sep in name for sep in ";\t|")
                else ""
            )
            reason = f"unknown column {name!r} in the header (the columns: {expected}){hint}"
            raise ConfigError(where, None, one_line(reason))
        if header.count(name) > 1:
            raise ConfigError(where, None, f"the column {name!r} is named twice in the header")
    for name in required:
        if name not in header:
            reason = f"the header has no column {name!r} (the columns: {expected})"
            raise ConfigError(where, None, reason)
    return header


def _csv_problem(e: csv.Error, start: int, at: int) -> str:
    message = str(e)
    if "unexpected end of data" in message or "EOF" in message:
        return f"a quoted field starting on line {start} is not closed"
    where = f" (on line {at})" if at != start else ""
    return one_line(f"not valid CSV: {message}{where}")
