"""Streaming JSONL reader: one row at a time, with line numbers and byte progress.

Design concession: lines are read from a binary stream so memory stays bounded by the longest
line (capped by `max_line_bytes`), never by the file; a line that is not a JSON object becomes a
`RawRow` with an `error` instead of an exception, so one bad row never stops the rest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from app.errors import LimitError


@dataclass(frozen=True, slots=True)
class RawRow:
    """One non-blank line: its 1-based number, byte offset, parsed object or the parse error."""

    line: int
    offset: int
    row: dict[str, Any] | None
    error: str | None = None


class JsonlReader:
    """Iterate the rows of a JSONL stream; `bytes_read` and `rows` report progress.

    Example: b'{"a": 1}\\n\\nnot json\\n'
             -> RawRow(1, 0, {"a": 1}), RawRow(3, 10, None, "line 3: ...")
    """

    kind = "jsonl"

    def __init__(self, stream: BinaryIO, *, max_rows: int, max_line_bytes: int) -> None:
        self.stream = stream
        self.max_rows = max_rows
        self.max_line_bytes = max_line_bytes
        self.bytes_read = 0
        self.rows = 0

    def __iter__(self) -> Iterator[RawRow]:
        for item in self.lines():
            yield item if isinstance(item, RawRow) else parse_line(*item)

    def lines(self) -> Iterator[tuple[int, int, bytes] | RawRow]:
        """(line, offset, raw bytes) per non-blank line, unparsed; an over-long line comes as a
        RawRow carrying its error. Parsing can then happen elsewhere (another process)."""
        number = 0
        while True:
            offset = self.bytes_read
            raw = self.stream.readline(self.max_line_bytes + 1)
            if not raw:
                return
            number += 1
            self.bytes_read += len(raw)
            if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
                self._skip_rest_of_line()
                yield RawRow(
                    number,
                    offset,
                    None,
                    f"line {number}: longer than "
                    f"{self.max_line_bytes} bytes (the max_line_bytes setting)",
                )
                continue
            if not raw.strip():
                continue
            if self.rows >= self.max_rows:
                raise LimitError(
                    f"The file has more than {self.max_rows} rows; this is limited "
                    "by the max_upload_rows setting.",
                    setting="max_upload_rows",
                )
            self.rows += 1
            yield number, offset, raw

    def _skip_rest_of_line(self) -> None:
        while True:
            chunk = self.stream.readline(1 << 20)
            self.bytes_read += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return


def parse_line(number: int, offset: int, raw: bytes) -> RawRow:
    """Parse one JSONL line into a RawRow (an error instead of an exception)."""
    try:
        value = json.loads(raw)
    except ValueError as exc:  # bad JSON or UTF-8, or an integer of more than 4,300 digits
        return RawRow(number, offset, None, f"line {number}: not valid JSON ({exc})")
    except RecursionError:
        return RawRow(number, offset, None, f"line {number}: nested too deeply to read")
    if not isinstance(value, dict):
        return RawRow(
            number,
            offset,
            None,
            f"line {number}: expected a JSON object, got {type(value).__name__}",
        )
    return RawRow(number, offset, value)


def read_line(
    stream: BinaryIO, line: int, *, offset: int | None = None, max_line_bytes: int | None = None
) -> RawRow:
    """Re-read row `line` (1-based); `offset` skips straight to it when known. A line over
    `max_line_bytes` is the run's error for it again, never read whole (a drill-down into a
    16 MB line the run refused costs a bounded read, not a minute and gigabytes)."""
    if offset is not None:
        stream.seek(offset)
        return _bounded_line(stream, line, offset, max_line_bytes)
    position = 0
    for number in itertools.count(1):
        if number == line:
            row = _bounded_line(stream, number, position, max_line_bytes)
            if stream.tell() == position:  # nothing was there
                break
            return row
        skipped = stream.readline(1 << 20)
        while skipped and not skipped.endswith(b"\n"):
            position += len(skipped)
            skipped = stream.readline(1 << 20)
        if not skipped:
            break
        position += len(skipped)
    raise LookupError(f"line {line} is past the end of the file")


def _bounded_line(stream: BinaryIO, number: int, offset: int, limit: int | None) -> RawRow:
    raw = stream.readline(-1 if limit is None else limit + 1)
    if limit is not None and len(raw) > limit and not raw.endswith(b"\n"):
        message = f"line {number}: longer than {limit} bytes (the max_line_bytes setting)"
        return RawRow(number, offset, None, message)
    return parse_line(number, offset, raw)
