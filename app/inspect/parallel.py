"""Inspect a large file with several worker processes, rows kept in file order.

The main process streams raw lines and counts; workers (spawned, each loading the tokenizer once)
parse, render and lint chunks of lines. At most `2 * workers` chunks are in flight, so memory
stays bounded whatever the file size.

At most max_running_inspections such runs have workers at once; others wait their turn. A worker
ends by itself once the server is gone, however it went.

Design concession: workers receive the tokenizer by reference (its name or folder), not the
object, so a tokenizer built in memory cannot be inspected in parallel; the deep (re-rendering)
checks run on the probe rows of the first chunk only, as in a single-process run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import IO, BinaryIO

from app.chat.collector import freeze_once
from app.inspect import lifeline
from app.inspect.evaluator import RowEvaluator
from app.inspect.options import InspectOptions, load_options
from app.inspect.outcome import Outcome
from app.inspect.reader import RawRow, parse_line
from app.inspect.report import Progress, Report
from app.inspect.sources import RowSource, open_source
from app.settings import Settings

CHUNK_ROWS = 256
PARALLEL_MIN_BYTES = 8_000_000  # below this, starting workers costs more than it saves
# A chunk's outcomes (still being made, or ready) and the (bytes, rows) read up to its end.
Pending = tuple[Future[list[Outcome]] | list[Outcome], int, int]


_WORKER: RowEvaluator | None = None


def _worker() -> RowEvaluator:
    """This worker's evaluator, made on its first chunk from what lifeline.start kept."""
    global _WORKER
    if _WORKER is None:
        job = lifeline.current_job()
        _WORKER = RowEvaluator(load_options(job.spec, job.settings))
        # What the process holds from now on (modules, the tokenizer) lives as long as it.
        freeze_once()
    return _WORKER


_running = 0
_slots = threading.Condition()


@contextlib.contextmanager
def inspection_slot(settings: Settings) -> Iterator[None]:
    """Wait until fewer than max_running_inspections parallel inspections run in this process.

    Example: three 9 MB uploads at once with the default (1) -> one set of worker processes at a
    time; the other two wait their turn, each then runs as it would alone.
    """
    global _running
    with _slots:
        while _running >= max(1, settings.max_running_inspections):
            _slots.wait()
        _running += 1
    try:
        yield
    finally:
        with _slots:
            _running -= 1
            _slots.notify()


def _evaluate_chunk(
    lines: list[tuple[int, int, bytes]], probe_rows: int, want_export: bool
) -> list[Outcome]:
    worker = _worker()
    worker.reset_probes(probe_rows)
    return worker.evaluate_many([parse_line(*line) for line in lines], want_export)


def worker_count(total_bytes: int, wanted: int) -> int:
    """Workers to use: `wanted` if set (>0), else one per core (at most 8) for big files."""
    if wanted > 0:
        return wanted
    if total_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(8, os.cpu_count() or 1))


def workers_for(total_bytes: int, settings: Settings, wanted: int | None = None) -> int:
    """`worker_count` with `wanted` defaulting to the inspect_workers setting."""
    return worker_count(total_bytes, settings.inspect_workers if wanted is None else wanted)


def run_parallel(
    options: InspectOptions,
    stream: BinaryIO | RowSource,
    workers: int,
    *,
    progress: Progress | None = None,
    export: IO[str] | None = None,
) -> Report:
    """Inspect `stream` or a source's rows (options made by `load_options`) using `workers`
    processes."""
    report = Report(options.max_row_reports)
    job = lifeline.Job(options.settings, options.spec, os.getpid())
    reader = stream if isinstance(stream, RowSource) else open_source(stream, options)
    context = multiprocessing.get_context("spawn")
    pending: deque[Pending] = deque()
    with (
        inspection_slot(options.settings),
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=lifeline.start, initargs=(job,)
        ) as pool,
    ):
        for number, chunk in enumerate(_chunks(reader)):
            probe = options.probe_rows if number == 0 else 0
            ready: Future[list[Outcome]] | list[Outcome] = (
                pool.submit(_evaluate_chunk, chunk.lines, probe, export is not None)
                if chunk.lines
                else []
            )
            pending.append((ready, reader.bytes_read, reader.rows))
            for bad in chunk.bad:
                pending.append(([_unreadable(bad)], reader.bytes_read, reader.rows))
            while len(pending) > 2 * workers:
                _drain_one(report, pending, progress, export)
        while pending:
            _drain_one(report, pending, progress, export)
    return report


@dataclass
class _Chunk:
    lines: list[tuple[int, int, bytes]]
    bad: list[RawRow]


def _chunks(reader: RowSource) -> Iterator[_Chunk]:
    chunk = _Chunk([], [])
    for item in reader.lines():
        if isinstance(item, RawRow):
            chunk.bad.append(item)
        else:
            chunk.lines.append(item)
        if len(chunk.lines) + len(chunk.bad) >= CHUNK_ROWS:
            yield chunk
            chunk = _Chunk([], [])
    if chunk.lines or chunk.bad:
        yield chunk


def _unreadable(raw: RawRow) -> Outcome:
    return Outcome(raw.line, raw.offset, "unreadable", error=raw.error)


def _drain_one(
    report: Report, pending: deque[Pending], progress: Progress | None, export: IO[str] | None
) -> None:
    ready, bytes_read, rows = pending.popleft()
    outcomes = ready.result() if isinstance(ready, Future) else ready
    report.record_batch(
        sorted(outcomes, key=lambda o: o.line), export, progress, (bytes_read, rows)
    )
