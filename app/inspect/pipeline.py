"""Inspect a dataset: read it in batches, evaluate each, record the outcomes in file order.

`inspect_stream` (a file or upload in any format `app.inspect.sources` reads) and
`inspect_source` (a source already opened: a folder, a Hub dataset) are the entry points the
service (and so the API, the page and the CLI) uses; with `workers` > 1 they hand the rows to
`app.inspect.parallel`.

Example: inspect_stream(open("data.jsonl", "rb"), options).result()
         -> {"summary": {"rows": 10, ...}, "rows": [{"line": 7, "lints": [...]}]}

Design concession: rows are evaluated in batches of `BATCH_ROWS` (one tokenizer call per
batch), so progress is reported per batch, not per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, BinaryIO

from app.chat.collector import old_objects_frozen
from app.inspect.evaluator import RowEvaluator
from app.inspect.options import InspectOptions
from app.inspect.outcome import Outcome
from app.inspect.parallel import run_parallel
from app.inspect.reader import RawRow
from app.inspect.report import Progress, Report
from app.inspect.sources import RowSource, open_source

BATCH_ROWS = 128  # rows rendered and tokenized together; progress is reported per batch


def inspect_stream(
    stream: BinaryIO,
    options: InspectOptions,
    *,
    progress: Progress | None = None,
    export: IO[str] | None = None,
    workers: int = 1,
    name: str | None = None,
) -> Report:
    """Inspect every row of a seekable binary stream (its format sniffed; `name`, the file's
    name, only for the message when it is not what it says); write processed rows to `export`.

    `workers` > 1 spreads rows over that many processes (reloadable options only).
    """
    source = open_source(stream, options, name)
    return inspect_source(source, options, progress=progress, export=export, workers=workers)


def inspect_source(
    source: RowSource,
    options: InspectOptions,
    *,
    progress: Progress | None = None,
    export: IO[str] | None = None,
    workers: int = 1,
) -> Report:
    """`inspect_stream` of rows from an opened source."""
    if workers > 1 and options.reloadable:
        return run_parallel(options, source, workers, progress=progress, export=export)
    return run_threaded(options, source, progress=progress, export=export)


def run_threaded(
    options: InspectOptions,
    stream: BinaryIO | RowSource,
    *,
    progress: Progress | None = None,
    export: IO[str] | None = None,
) -> Report:
    """Inspect `stream` in this process.

    Batches overlap: while one batch is linted, the next one's tokens are being made on a
    second thread (the Rust tokenizer releases the GIL), so tokenizing costs little wall
    time on a machine with a spare core. Tokenizers with a word cache (app.tokenizers.words)
    make their ids in this thread instead, at a fraction of the CPU time.
    """
    evaluator, report = RowEvaluator(options), Report(options.max_row_reports)
    reader = stream if isinstance(stream, RowSource) else open_source(stream, options)
    want_export = export is not None
    with (
        old_objects_frozen(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskscope-tokens") as pool,
    ):
        # The batch whose tokens are being made, and the (bytes, rows) read up to its end.
        pending: tuple[Callable[[], list[Outcome]], tuple[int, int]] | None = None
        for batch in _batches(reader, BATCH_ROWS):
            started = evaluator.start(batch, want_export, pool)
            if pending is not None:
                report.record_batch(pending[0](), export, progress, pending[1])
            pending = (started, (reader.bytes_read, reader.rows))
        if pending is not None:
            report.record_batch(pending[0](), export, progress, pending[1])
    if progress is not None:
        progress(reader.bytes_read, reader.rows)
    return report


def _batches(rows: Iterable[RawRow], size: int) -> Iterator[list[RawRow]]:
    """Consecutive lists of `size` rows (the last may be shorter; none is empty)."""
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
