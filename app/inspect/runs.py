"""Background inspection runs for the /inspect page: upload kept on disk, progress polled.

Design concession: runs live in this process (a dict and one worker thread), not in the job
database: an inspection is minutes at most and is lost on restart, which is acceptable for a
page that can simply be submitted again. At most `max_runs` uploads are kept on disk; the
oldest finished one is deleted first. One run executes at a time; others wait their turn, at
most `max_runs` of them; uploads stay under max_inspect_disk_bytes (507 beyond, or on a full disk).
Example: store.start(upload, options) -> Run(status="queued"); run_summary(run)["share"] -> 0.0
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.errors import BusyError, NotFoundError, StorageError
from app.inspect.options import InspectOptions
from app.inspect.parallel import workers_for
from app.inspect.pipeline import inspect_stream
from app.inspect.report import Report

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One inspection: its files, options, progress and, when done, its report."""

    id: str
    path: Path
    processed_path: Path
    options: InspectOptions
    total_bytes: int
    bytes_read: int = 0
    rows: int = 0
    status: str = "queued"
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    report: Report | None = None

    @property
    def done(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def share(self) -> float:
        return 1.0 if self.done else self.bytes_read / max(self.total_bytes, 1)

    def rows_per_second(self) -> float:
        end = self.finished or time.monotonic()
        return self.rows / max(end - self.started, 1e-9)


class RunStore:
    """Start runs, look them up, and keep the number of stored uploads bounded."""

    def __init__(self, folder: Path, max_runs: int = 8) -> None:
        self.folder = folder
        self.max_runs = max_runs
        self.runs: OrderedDict[str, Run] = OrderedDict()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inspect")

    def start(self, upload: BinaryIO, options: InspectOptions) -> Run:
        """Copy the upload to disk and queue the inspection; returns at once.

        At most `max_runs` runs wait or run (429 beyond), and the stored uploads stay under
        max_inspect_disk_bytes; an upload that does not fit, on the quota or on the disk, gets
        507 and leaves no partial file behind.
        """
        with self.lock:
            active = sum(1 for run in self.runs.values() if not run.done)
        if active >= self.max_runs:
            raise BusyError(
                f"{active} inspections are already waiting or running (inspect_keep_runs "
                "setting); try again when one has finished.",
                setting="inspect_keep_runs",
                headers={"Retry-After": "30"},
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        run_id = secrets.token_hex(8)
        path = self.folder / f"{run_id}.jsonl"
        room = options.settings.max_inspect_disk_bytes - self._stored_bytes()
        try:
            with open(path, "wb") as out:
                _copy_within(upload, out, room)
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageError(
                    f"The disk holding {self.folder} is full ({exc.strerror}); free space "
                    "there, point the home setting at a larger disk, or lower the "
                    "max_inspect_disk_bytes setting so uploads are refused before it fills.",
                    setting="max_inspect_disk_bytes",
                ) from None
            raise
        run = Run(
            run_id, path, self.folder / f"{run_id}.processed.jsonl", options, path.stat().st_size
        )
        with self.lock:
            self.runs[run_id] = run
            self._evict()
        self.pool.submit(self._execute, run)
        return run

    def get(self, run_id: str) -> Run:
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            raise NotFoundError(
                f"No inspection {run_id!r} here (runs are kept in memory and "
                "the oldest are dropped): upload the file again."
            )
        return run

    def _execute(self, run: Run) -> None:
        run.status, run.started = "running", time.monotonic()

        def progress(done: int, rows: int) -> None:
            run.bytes_read, run.rows = done, rows

        try:
            workers = workers_for(run.total_bytes, run.options.settings)
            with open(run.path, "rb") as stream, open(run.processed_path, "w") as out:
                run.report = inspect_stream(
                    stream, run.options, progress=progress, export=out, workers=workers
                )
            run.status = "done"
        except Exception as exc:  # shown on the page; the server keeps serving
            log.exception("inspection %s failed", run.id)
            run.status, run.error = "failed", getattr(exc, "message", str(exc))
        finally:
            run.finished = time.monotonic()

    def _stored_bytes(self) -> int:
        total = 0
        for file in self.folder.glob("*.jsonl"):
            with contextlib.suppress(FileNotFoundError):
                total += file.stat().st_size
        return total

    def _evict(self) -> None:
        while len(self.runs) > self.max_runs:
            victim = next((r for r in self.runs.values() if r.done), None)
            if victim is None:
                return
            del self.runs[victim.id]
            for file in (victim.path, victim.processed_path):
                file.unlink(missing_ok=True)


def _copy_within(upload: BinaryIO, out: BinaryIO, room: int) -> None:
    """Copy in 1 MiB pieces; StorageError (507) as soon as the copy would pass `room` bytes."""
    written = 0
    while chunk := upload.read(1 << 20):
        written += len(chunk)
        if written > room:
            raise StorageError(
                "The /inspect page's stored uploads would take more than the "
                "max_inspect_disk_bytes setting; wait for the oldest to be dropped, or raise it.",
                setting="max_inspect_disk_bytes",
            )
        out.write(chunk)


_STORES: dict[Path, RunStore] = {}


def store_for(folder: Path, max_runs: int) -> RunStore:
    """The process-wide store for `folder` (one per settings home). Files a previous process
    left there belong to runs nobody can reach any more: they are deleted."""
    if folder not in _STORES:
        for stale in folder.glob("*.jsonl") if folder.is_dir() else ():
            stale.unlink(missing_ok=True)
        _STORES[folder] = RunStore(folder, max_runs)
    return _STORES[folder]


def run_summary(run: Run) -> dict[str, Any]:
    """Progress figures for the page."""
    return {
        "id": run.id,
        "status": run.status,
        "share": run.share,
        "rows": run.rows,
        "rows_per_second": run.rows_per_second(),
        "bytes_read": run.bytes_read,
        "total_bytes": run.total_bytes,
        "error": run.error,
    }
