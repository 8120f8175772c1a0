"""Dataset sources: JSONL, JSON arrays, Parquet, Arrow files and `save_to_disk` folders, CSV,
and Hugging Face dataset ids, each read as a stream of RawRows with their line and offset.

The format is sniffed from the content, never taken from the name: a Parquet file named
`.jsonl` is read as Parquet, and a file named `.parquet` that is not one is refused with that
sentence (not a codec error per row). Every source has the reader's interface (`__iter__`
yields RawRows, `lines()` yields what worker processes parse, `bytes_read` / `rows` report
progress), so the pipeline and the workers read them all alike.

Example: open_source(open("data.parquet", "rb"), options)
         -> ColumnarSource(kind="parquet"); next(iter(it)) -> RawRow(1, 0, {"messages": [...]})

Design concession: outside JSONL a row's `line` is its 1-based record number (its physical
line for CSV and JSON arrays) and its `offset` is its 0-based index, by which it is found
again; Parquet is read one row group at a time, Arrow memory-mapped, JSON arrays one element
at a time, so memory stays bounded by a row group or an element; non-JSONL rows reach worker
processes re-encoded as JSON.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import urlsplit

import orjson

from app.errors import InputError, LimitError
from app.inspect.columns import ColumnMap, guess_columns
from app.inspect.options import InspectOptions
from app.inspect.reader import JsonlReader, RawRow

HEAD_BYTES = 64
CHUNK_CHARS = 1 << 20
# Where a name says what a file is: the format it should then sniff as.
NAMED = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".csv": "csv"}
FORMAT_NAMES = {"parquet": "Parquet", "arrow": "Arrow", "csv": "CSV"}
HUB_PROBE_SECONDS = 3.0
# org/name, each starting with a letter or digit (so never "." or ".."), as the Hub spells ids.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
Item = tuple[int, int, bytes] | RawRow
Record = tuple[int, dict[str, Any] | None, str | None]  # (line, row, error)


@runtime_checkable
class RowSource(Protocol):
    """What the pipeline reads: RawRows in order, or unparsed items for worker processes."""

    @property
    def kind(self) -> str: ...

    @property
    def bytes_read(self) -> int: ...

    @property
    def rows(self) -> int: ...

    def __iter__(self) -> Iterator[RawRow]: ...

    def lines(self) -> Iterator[Item]: ...


def sniff(head: bytes, name: str | None = None) -> str:
    """The format of a file from its first bytes: parquet, arrow, arrow-stream, json, jsonl or
    csv; InputError when it is empty or its name promises a format its content is not.

    Example: sniff(b"PAR1...", "x.jsonl") -> "parquet"; sniff(b"{}", "x.parquet") -> InputError
    """
    kind = _content_kind(head, name)
    suffix = Path(name).suffix.lower() if name else ""
    named = NAMED.get(suffix)
    if named is not None and named != kind.removesuffix("-stream"):
        shown = head[:16].decode("utf-8", "replace")
        raise InputError(
            f"{Path(name or '').name} is not a {FORMAT_NAMES[named]} file (it starts with "
            f"{shown!r}); it looks like {kind.upper()}. Rename it or upload the right file.",
            field="file",
        )
    return kind


def _content_kind(head: bytes, name: str | None) -> str:
    if not head:
        raise InputError("The file is empty: there are no rows to inspect.", field="file")
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"
    if head.startswith(b"\xff\xff\xff\xff"):
        return "arrow-stream"
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
    if not text:
        raise InputError("The file holds only blank lines: there are no rows.", field="file")
    if text[0] == "[" or (text[0] == "{" and _one_pretty_object(text)):
        return "json"
    if text[0] == "{":
        return "jsonl"
    first = text.split("\n", 1)[0]
    suffix = Path(name).suffix.lower() if name else ""
    if suffix in (".csv", ".tsv") or (suffix not in (".jsonl", ".json") and _csv_like(first)):
        return "csv"
    return "jsonl"


def _one_pretty_object(text: str) -> bool:
    """Whether a text starting with "{" holds JSON objects written over several lines (with
    indentation) rather than JSON Lines: neither of its first two lines is JSON by itself.

    Example: '{\n  "messages": [\n' -> True; '{"a": 1}\n{"b"\n' -> False
    """
    lines = [line for line in text.split("\n", 2)[:2] if line.strip()]
    if len(lines) < 2:
        return False
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            continue
        return False
    return True


def _csv_like(line: str) -> bool:
    return ("," in line or "\t" in line) and not line.lstrip().startswith(('"{', "{"))


def open_source(stream: BinaryIO, options: InspectOptions, name: str | None = None) -> RowSource:
    """The rows of a seekable binary stream in whatever format it holds (see `sniff`)."""
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    kind = sniff(head, name)
    total = _size(stream)
    if kind == "jsonl":
        plain = JsonlReader(
            stream, max_rows=options.max_rows, max_line_bytes=options.max_line_bytes
        )
        columns = _first_guess(plain, options.columns)
        stream.seek(0)
        plain = JsonlReader(
            stream, max_rows=options.max_rows, max_line_bytes=options.max_line_bytes
        )
        if columns.empty:
            return plain
        return MappedSource("jsonl", plain, columns, lambda: plain.bytes_read)
    if kind == "json":
        records = _json_array(stream, options.max_line_bytes)
    elif kind == "csv":
        records = _csv_records(stream, options.max_line_bytes, name)
    else:
        return ColumnarSource(kind, _arrow_tables(stream, kind), options, total)
    return RecordSource(kind, records, options, lambda: stream.tell())


def open_path(path: Path, options: InspectOptions) -> tuple[RowSource, BinaryIO | None]:
    """The rows of a local file or a `datasets.save_to_disk` folder, and the stream to close.
    A missing path is an InputError naming it."""
    if path.is_dir():
        return ColumnarSource("arrow", _saved_dataset(path), options, _folder_size(path)), None
    if not path.exists():
        raise InputError(f"No such file or folder: {path}.", field="path")
    stream = open(path, "rb")  # noqa: SIM115 - the caller closes it after reading
    try:
        return open_source(stream, options, path.name), stream
    except BaseException:
        stream.close()
        raise


def is_hub_id(value: str) -> bool:
    """Whether `value` reads as a Hub dataset id (`org/name`) rather than a path that exists."""
    # "data/rows.jsonl" reads as org/name too: a data file's suffix says it is a missing path.
    suffix = Path(value).suffix.lower()
    file_like = suffix in (*NAMED, ".jsonl", ".json", ".tsv", ".txt")
    return bool(HUB_ID.match(value)) and not file_like and not os.path.exists(value)


def open_hub(
    dataset: str,
    options: InspectOptions,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> RowSource:
    """A Hub dataset streamed through `datasets` (nothing downloaded beyond what is read);
    unreachable (offline, unknown id, no such split) is an InputError that says so."""
    import datasets  # heavy: only Hub ids need it

    _check_hub_reachable(dataset)
    try:
        stream = datasets.load_dataset(
            dataset, config, split=split, revision=revision, streaming=True
        )
        rows = iter(stream)
        first = next(rows, None)
    except Exception as exc:
        raise InputError(
            f"Could not read the Hugging Face dataset {dataset!r} (config {config!r}, split "
            f"{split!r}): {type(exc).__name__}: {str(exc)[:300]}. The Hub must be reachable "
            "or the dataset in the local datasets cache; otherwise export it to JSONL or "
            "Parquet and inspect the file.",
            field="dataset",
        ) from None

    def records() -> Iterator[Record]:
        if first is None:
            return
        yield 1, dict(first), None
        for number, row in enumerate(rows, start=2):
            yield number, dict(row), None

    return RecordSource("hub", records(), options, lambda: 0)


def _check_hub_reachable(dataset: str) -> None:
    """Fail at once, not after the Hub client's retries, when the Hub cannot be reached and
    the user has not asked for the offline cache (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)."""
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE"):
        return
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS).close()
    except OSError as exc:
        raise InputError(
            f"The Hugging Face Hub ({host}) is not reachable from here ({exc}), so the dataset "
            f"{dataset!r} cannot be streamed. Set HF_HUB_OFFLINE=1 to read it from the local "
            "cache, or export it to JSONL or Parquet and inspect the file.",
            field="dataset",
        ) from None


class RecordSource:
    """Rows from a record generator: the limit on rows, the column mapping, RawRows."""

    def __init__(
        self,
        kind: str,
        records: Iterable[Record],
        options: InspectOptions,
        position: Callable[[], int],
    ) -> None:
        self.kind = kind
        self.records = iter(records)
        self.max_rows = options.max_rows
        self.given = options.columns
        self.position = position
        self.bytes_read = 0
        self.rows = 0

    def __iter__(self) -> Iterator[RawRow]:
        columns: ColumnMap | None = None
        for index, (line, row, error) in enumerate(self.records):
            if self.rows >= self.max_rows:
                raise _too_many(self.max_rows)
            self.rows += 1
            self.bytes_read = self.position()
            if row is None:
                yield RawRow(line, index, None, error or f"row {line}: unreadable")
                continue
            if columns is None:
                columns = guess_columns(row, self.given)
            yield _mapped(RawRow(line, index, row), columns)

    def lines(self) -> Iterator[Item]:
        return _encoded(self)


class ColumnarSource(RecordSource):
    """Parquet / Arrow rows, read a record batch at a time."""

    def __init__(
        self,
        kind: str,
        tables: Iterator[tuple[int, list[dict[str, Any]]]],
        options: InspectOptions,
        total: int,
    ) -> None:
        self.total_rows = 0
        self.total = total
        super().__init__(kind, self._records(tables), options, self._position)

    def _records(self, tables: Iterator[tuple[int, list[dict[str, Any]]]]) -> Iterator[Record]:
        number = 0
        for total_rows, batch in tables:
            self.total_rows = total_rows
            for row in batch:
                number += 1
                yield number, row, None

    def _position(self) -> int:
        return int(self.total * self.rows / self.total_rows) if self.total_rows else 0


class MappedSource:
    """A JSONL reader whose rows go through a column mapping."""

    def __init__(
        self, kind: str, reader: JsonlReader, columns: ColumnMap, position: Callable[[], int]
    ) -> None:
        self.kind, self.reader, self.columns, self.position = kind, reader, columns, position

    @property
    def bytes_read(self) -> int:
        return self.reader.bytes_read

    @property
    def rows(self) -> int:
        return self.reader.rows

    def __iter__(self) -> Iterator[RawRow]:
        for raw in self.reader:
            yield _mapped(raw, self.columns)

    def lines(self) -> Iterator[Item]:
        return _encoded(self)


def _mapped(raw: RawRow, columns: ColumnMap) -> RawRow:
    if raw.row is None or columns.empty:
        return raw
    try:
        return RawRow(raw.line, raw.offset, columns.apply(raw.row))
    except InputError as exc:
        return RawRow(raw.line, raw.offset, None, f"line {raw.line}: {exc.message}")


def _encoded(rows: Iterable[RawRow]) -> Iterator[Item]:
    """Rows as (line, offset, JSON bytes) for worker processes; unreadable ones as RawRows."""
    for raw in rows:
        if raw.row is None:
            yield raw
            continue
        try:
            yield raw.line, raw.offset, orjson.dumps(raw.row, default=str)
        except orjson.JSONEncodeError as exc:  # nested past orjson's depth, say
            yield RawRow(raw.line, raw.offset, None, f"line {raw.line}: not readable ({exc})")


def _first_guess(reader: JsonlReader, given: ColumnMap) -> ColumnMap:
    first = next((r for r in reader if r.row is not None), None)
    return given if first is None or first.row is None else guess_columns(first.row, given)


def _too_many(max_rows: int) -> LimitError:
    return LimitError(
        f"The file has more than {max_rows} rows; this is limited by the max_upload_rows setting.",
        setting="max_upload_rows",
    )


def _size(stream: BinaryIO) -> int:
    position = stream.tell()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(position)
    return size


def _arrow_tables(stream: BinaryIO, kind: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(rows in the file, one record batch as dicts) for Parquet, Arrow file or stream."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = {"parquet": "Parquet", "arrow": "Arrow", "arrow-stream": "Arrow stream"}[kind]
    try:
        if kind == "parquet":
            parquet = pq.ParquetFile(stream)
            total = parquet.metadata.num_rows
            batches: Iterator[Any] = parquet.iter_batches(batch_size=1024)
        elif kind == "arrow":
            reader = pa.ipc.open_file(stream)
            total = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches, total = iter(pa.ipc.open_stream(stream)), 0
        for batch in batches:
            yield total, batch.to_pylist()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise InputError(f"The {name} file could not be read: {exc}.", field="file") from None


def _saved_dataset(folder: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The record batches of a `datasets.save_to_disk` folder's Arrow files, in order."""
    import pyarrow as pa

    state = folder / "state.json"
    if state.is_file():
        names = [f["filename"] for f in json.loads(state.read_text("utf-8"))["_data_files"]]
    else:
        names = sorted(p.name for p in folder.glob("*.arrow"))
    if not names:
        raise InputError(
            f"{folder} is a folder without Arrow files; give a datasets.save_to_disk folder "
            "(one split) or a file.",
            field="path",
        )
    for name in names:
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            raise InputError(f"{folder}/state.json names a file outside it.", field="path")
        with pa.memory_map(str(path)) as mapped:
            reader = pa.ipc.open_stream(mapped)
            for batch in reader:
                yield 0, batch.to_pylist()


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.arrow"))


# Long: one incremental reader (buffer, position, line count) whose steps share its state.
def _json_array(stream: BinaryIO, max_element_chars: int) -> Iterator[Record]:
    """The elements of a top-level JSON array, one at a time, with the line each starts on."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    buffer, pos, line, done = "", 0, 1, False

    def more() -> bool:
        nonlocal buffer, pos, done
        chunk = stream.read(CHUNK_CHARS)
        done = not chunk
        buffer = buffer[pos:] + text.decode(chunk, final=done)
        pos = 0
        return not done

    def skip_space() -> None:
        nonlocal pos, line
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                line += buffer[pos] == "\n"
                pos += 1
            if pos < len(buffer) or not more():
                return

    try:
        skip_space()
        # Objects written over several lines one after another (`jq` without -c): a row each.
        single = buffer[pos : pos + 1] == "{"
        if not single and buffer[pos : pos + 1] != "[":
            raise InputError("The JSON file is not an array of rows.", field="file")
        pos += 0 if single else 1
        number = 0
        while True:
            skip_space()
            if single and pos >= len(buffer):  # skip_space read to the end
                return
            if buffer[pos : pos + 1] == "]":
                return
            if number and buffer[pos : pos + 1] == ",":
                pos += 1
                skip_space()
            number += 1
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, pos)
                    break
                except RecursionError:  # its end cannot be found: the rest is unreadable
                    raise InputError(
                        f"row {number} (line {line}) of the JSON array is nested too deeply "
                        "to read.",
                        field="file",
                    ) from None
                except json.JSONDecodeError as exc:
                    if len(buffer) - pos > max_element_chars:
                        raise LimitError(
                            f"row {number} (line {line}) is longer than {max_element_chars} "
                            "characters (the max_line_bytes setting).",
                            setting="max_line_bytes",
                        ) from None
                    if not more():
                        raise InputError(
                            f"The JSON array is broken at row {number} (line {line}): {exc.msg}.",
                            field="file",
                        ) from None
            start_line = line
            line += buffer.count("\n", pos, end)
            pos = end
            if isinstance(value, dict):
                yield start_line, value, None
            else:
                kind = type(value).__name__
                yield (
                    start_line,
                    None,
                    f"row {number} (line {start_line}): expected an object, got {kind}",
                )
    except UnicodeDecodeError as exc:
        raise InputError(f"The JSON file is not valid UTF-8: {exc}.", field="file") from None


def _csv_records(stream: BinaryIO, max_field: int, name: str | None) -> Iterator[Record]:
    """CSV (or TSV) rows as dicts; cells holding JSON arrays or objects are decoded, so a
    `messages` column written as JSON text reads as the list it holds."""
    csv.field_size_limit(max(max_field, 131_072))
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")
    try:
        first = text.readline()
        delimiter = "\t" if (name or "").lower().endswith(".tsv") or "," not in first else ","
        text.seek(0)
        reader = csv.DictReader(text, delimiter=delimiter)
        previous = 1
        for row in reader:
            line = previous + 1
            previous = reader.line_num
            yield line, {k: _cell(k, v) for k, v in row.items() if k is not None}, None
    except UnicodeDecodeError as exc:
        raise InputError(f"The CSV file is not valid UTF-8: {exc}.", field="file") from None
    except csv.Error as exc:
        raise InputError(f"The CSV file could not be read: {exc}.", field="file") from None
    finally:
        text.detach()


def _cell(key: str, value: str | None) -> Any:
    """A CSV cell: JSON arrays and objects decoded; a `label` cell true/false as a bool."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):  # read as the text it is
            return value
    if key == "label" and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return value
