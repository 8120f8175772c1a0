"""Runs queued jobs one at a time, each in its own process, and feeds its events into the store.

One job at a time: the GPU (or the CPU) is never shared between two fine-tunes. A job is
``python -m app.train JOB_DIR/spec.json``; with more than one CUDA device the same entry point runs
under ``torchrun --standalone --nproc_per_node=N`` (DDP). The runner tails the job's
``events.jsonl`` into SQLite, turns a cancel request into the ``CANCEL`` file the loop checks at
each step, and records the final status (or the log's tail when the process died). The job is told
the server's pid (``MASKSCOPE_SERVER_PID``) and stops by itself once that process is gone, so a
crashed server never leaves a job holding the device.

The runner outlives its store: any store error (a locked, full or unopenable database, no file
descriptors left) is logged and retried after a bounded exponential back-off, events read but not
yet stored are kept for the next poll, and a job's final status is retried until it is recorded,
so once the store works again the queue moves on. Example: 4 failures in a row -> waits of
0.25, 0.5, 1, 2 s (capped at BACKOFF_MAX_S).

Design concession: polling (a few times a second) instead of inotify or pipes: portable, and the
same code survives torchrun owning the children's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import Settings
from app.train.record import FINISHED, Job
from app.train.retention import failure_message, prune_jobs
from app.train.store import JobStore

log = logging.getLogger(__name__)
POLL_S = 0.25
STOP_GRACE_S = 10.0
ROOT = Path(__file__).resolve().parents[2]
SERVER_PID_ENV = "MASKSCOPE_SERVER_PID"
SERVER_GONE = "interrupted: the server stopped"
INFO_KEYS = ("device", "world_size", "examples", "held_out")
BACKOFF_S = 0.25
BACKOFF_MAX_S = 4.0
PRUNE_EVERY_S = 3600.0


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` store errors in a row. Example: 1 -> 0.25, 9 -> 4.0"""
    return float(min(BACKOFF_MAX_S, BACKOFF_S * 2 ** max(0, failures - 1)))


def settings_env(settings: Settings) -> dict[str, str]:
    """The server's settings as MASKSCOPE_* variables, so the job process sees the same ones."""
    env = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = os.pathsep.join(str(v) for v in value)
        else:
            text = str(value)
        env[f"MASKSCOPE_{f.name.upper()}"] = text
    return env


def job_env(settings: Settings, server_pid: int) -> dict[str, str]:
    """The job's environment: ours, the settings, this checkout importable, the server's pid.

    Every process of the job (each torchrun rank too, whose parent is torchrun, not the server)
    checks that ``server_pid`` is still alive at each step and stops once it is not.
    """
    env = {**os.environ, **settings_env(settings), SERVER_PID_ENV: str(server_pid)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def job_command(spec_path: Path, gpus: int) -> list[str]:
    """The command for one job. Example: 2 GPUs -> [python, -m, torch.distributed.run, ...]"""
    if gpus > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={gpus}",
            "-m",
            "app.train",
            str(spec_path),
        ]
    return [sys.executable, "-m", "app.train", str(spec_path)]


def cuda_devices() -> int:
    # Imported here: torch takes seconds to import, and the server needs it only to start a job.
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# Long: the queue loop, following one job, replaying a crashed one and recording each end share
# one store-error discipline (log, keep what was read, retry); apart, that discipline would fork.
class JobRunner:
    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.wake = asyncio.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.current: str | None = None
        self.stopping = False
        self.pending: tuple[str, str, str | None] | None = None

    def notify(self) -> None:
        """A job was queued: claim it now rather than at the next idle check."""
        self.wake.set()

    async def run_forever(self) -> None:
        failures, pruned_at = 0, time.monotonic()
        while not self.stopping:
            try:
                self._record_pending()
                if time.monotonic() - pruned_at > PRUNE_EVERY_S:
                    prune_jobs(self.store, self.settings)
                    pruned_at = time.monotonic()
                job = self.store.claim_next()
            except Exception:  # the store is broken for now: wait, then try again
                failures += 1
                delay = backoff(failures)
                log.exception("job store error (%d in a row); retrying in %.2f s", failures, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if job is None:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=1.0)
                continue
            try:
                await self._run(job)
            except Exception as exc:  # one broken job must not stop the queue
                log.exception("job %s crashed the runner", job.id)
                error = failure_message(exc, self.settings.jobs_dir / job.id)
                self._finish(job.id, "failed", error)

    def _finish(self, job_id: str, status: str, error: str | None) -> None:
        """Record a job's end; kept and retried by the queue loop while the store fails."""
        self.pending = (job_id, status, error)
        with contextlib.suppress(Exception):
            self._record_pending()

    def _record_pending(self) -> None:
        # Until the end is recorded the job stays running in the store, and nothing else starts.
        if self.pending is not None:
            self.store.finish(*self.pending)
            self.pending = None

    async def _run(self, job: Job) -> None:
        job_dir = self.settings.jobs_dir / job.id
        job_dir.mkdir(parents=True, exist_ok=True)
        spec_path = job_dir / "spec.json"
        spec_path.write_text(json.dumps({"id": job.id, "spec": job.spec}), encoding="utf-8")
        with (job_dir / "log.txt").open("ab") as logfile:
            self.process = subprocess.Popen(
                job_command(spec_path, cuda_devices()),
                cwd=ROOT,
                env=job_env(self.settings, os.getpid()),
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (job_dir / "pid").write_text(str(self.process.pid), encoding="utf-8")
        self.current = job.id
        tail = EventTail(job_dir / "events.jsonl")
        final: dict[str, Any] = {}
        try:
            while self.process.poll() is None:
                self._poll_once(job.id, job_dir, tail, final)
                await asyncio.sleep(POLL_S)
            failures = 0
            # The process is gone: its last events (the status too) must reach the store first.
            while not self._poll_once(job.id, job_dir, tail, final) and not self.stopping:
                failures += 1
                await asyncio.sleep(backoff(failures))
        finally:
            code, self.process, self.current = self.process.wait(), None, None
        self._record_end(job.id, job_dir, final, code)

    def _poll_once(
        self, job_id: str, job_dir: Path, tail: EventTail, final: dict[str, Any]
    ) -> bool:
        """Store new events and forward a cancel; False (logged) when the store failed."""
        try:
            final.update(self._ingest(job_id, tail))
            self._forward_cancel(job_id, job_dir)
        except Exception:
            log.exception("job %s: store error while following it; retrying", job_id)
            return False
        return True

    def _ingest(self, job_id: str, tail: EventTail) -> dict[str, Any]:
        """Store the job's new events; one that fails stays first in `tail.backlog`."""
        final: dict[str, Any] = {}
        tail.backlog.extend(tail.read())
        while tail.backlog:
            event = tail.backlog[0]
            kind = event.get("type")
            if kind == "metric":
                self.store.add_metric(job_id, event)
            elif kind == "progress":
                info = {k: event[k] for k in INFO_KEYS if k in event}
                self.store.update(
                    job_id,
                    step=event["step"],
                    total_steps=event["total_steps"],
                    **({"info": {**tail.info, **info}} if info else {}),
                )
                tail.info.update(info)
            elif kind == "phase":
                info = {**tail.info, "phase": event["phase"]}
                self.store.update(job_id, info=info)
                tail.info = info
            elif kind == "samples":
                self.store.update(job_id, samples=event["samples"])
            elif kind == "artifacts":
                self.store.update(job_id, artifacts=event["files"])
            elif kind == "status":
                final = event
            tail.backlog.pop(0)
        return final

    def replay(self, job_id: str) -> dict[str, Any]:
        """After a crash: store what the job wrote that the store had not taken in yet.

        The metrics beyond those stored (events are taken in order, so the first n in the file
        are the n stored), the last progress, phase, samples and artifacts; returns the job's
        final status event, if it wrote one. Example: 3 of 5 metrics stored -> 2 added.
        """
        tail = EventTail(self.settings.jobs_dir / job_id / "events.jsonl")
        stored, seen = len(self.store.metrics(job_id)), 0
        tail.info = dict(self.store.get(job_id, metrics=False).info)
        for event in tail.read():
            seen += event.get("type") == "metric"
            if event.get("type") != "metric" or seen > stored:
                tail.backlog.append(event)
        return self._ingest(job_id, tail)

    def _forward_cancel(self, job_id: str, job_dir: Path) -> None:
        if self.store.cancel_requested(job_id):
            (job_dir / "CANCEL").touch()

    def _record_end(self, job_id: str, job_dir: Path, final: dict[str, Any], code: int) -> None:
        if self.stopping and final.get("status") != "succeeded":
            self._finish(job_id, "failed", "interrupted")
            return
        if final.get("status") in FINISHED:
            self._finish(job_id, final["status"], final.get("error"))
            return
        log_tail = (job_dir / "log.txt").read_text(encoding="utf-8", errors="replace")[-800:]
        self._finish(job_id, "failed", f"the job process exited with code {code}: {log_tail}")

    def stop(self) -> None:
        """Server shutdown: end the running job's process group; it is recorded as interrupted."""
        self.stopping = True
        self.wake.set()
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)


class EventTail:
    """Reads complete new lines of a JSON-lines file, remembering where it stopped."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.backlog: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def end_orphan(job_dir: Path) -> None:
    """A job process that outlived a crashed server would share the device with the next job;
    it is killed and waited for (a second at most), so its events file no longer grows."""
    try:
        pid = int((job_dir / "pid").read_text(encoding="utf-8"))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"app.train" in cmdline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(20):
            if not Path(f"/proc/{pid}/cmdline").exists():
                break
            time.sleep(0.05)


def recover_jobs(store: JobStore, runner: JobRunner) -> None:
    """Jobs left running by a crash: orphans ended, their unread events stored, then each marked
    with the status it wrote itself (succeeded just before the crash: succeeded) or interrupted."""
    for job_id in store.running_ids():
        end_orphan(runner.settings.jobs_dir / job_id)
        try:
            final = runner.replay(job_id)
        except Exception:  # an unreadable events file must not keep the server from starting
            log.exception("job %s: its events could not be read back", job_id)
            continue
        if final.get("status") in FINISHED and final.get("error") != SERVER_GONE:
            store.finish(job_id, final["status"], final.get("error"))
    for job_id in store.recover():
        log.warning("job %s was running when the server stopped: marked failed", job_id)


@dataclass(frozen=True, slots=True)
class JobQueue:
    """What `start_jobs` started: the store, the runner and the task that runs the queue."""

    store: JobStore
    runner: JobRunner
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Shut-down: end the running job (recorded as interrupted), then the queue task."""
        self.runner.stop()
        for _ in range(int(STOP_GRACE_S / POLL_S)):
            if self.runner.current is None:
                break
            await asyncio.sleep(POLL_S)
        self.runner.kill()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(self.task, timeout=2)


def start_jobs(settings: Settings) -> JobQueue:
    """Open the store, mark interrupted jobs, run the queue until `stop()` (call from the loop).

    Example: queue = start_jobs(settings); ...; await queue.stop()
    """
    store = JobStore(settings.db_path)
    runner = JobRunner(store, settings)
    recover_jobs(store, runner)
    try:
        for job_id in prune_jobs(store, settings):
            log.info("job %s is older than job_retention_days: deleted", job_id)
    except Exception:  # a folder that cannot be removed must not keep the server from starting
        log.exception("pruning old jobs failed; the runner tries again within the hour")
    return JobQueue(store, runner, asyncio.create_task(runner.run_forever()))
