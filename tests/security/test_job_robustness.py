"""DESIGN.md §7 item 33: the job runner against a broken store.

A real SQLite file and a real `JobRunner` task; the job process is a few lines of Python that
write the events a fine-tune writes (no model, so a test takes a second, not a minute). Failures
are real where they can be: the database file replaced by a folder, file descriptors used up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sqlite3
import sys

import pytest

from app.settings import Settings
from app.train import runner as runner_module
from app.train.runner import JobRunner, backoff
from app.train.spec import JobSpec
from app.train.store import JobStore

FAKE_JOB = """
import json, sys, pathlib
events = pathlib.Path(sys.argv[1]).parent / "events.jsonl"
lines = [
    {"type": "progress", "step": 1, "total_steps": 1, "device": "cpu"},
    {"type": "metric", "arm": "neftune", "step": 1, "loss": 1.0, "lr": 0.001, "tokens_per_s": 9.0},
    {"type": "status", "status": "succeeded"},
]
events.write_text("".join(json.dumps(line) + "\\n" for line in lines))
"""


@pytest.fixture
def fake_job(monkeypatch):
    """Which script the runner starts as the job process: FAKE_JOB unless set to another."""
    script = {"code": FAKE_JOB}
    monkeypatch.setattr(
        runner_module,
        "job_command",
        lambda spec, gpus: [sys.executable, "-c", script["code"], spec],
    )
    return script


@pytest.fixture
def settings(tmp_path, monkeypatch, fake_job) -> Settings:
    monkeypatch.setattr(runner_module, "cuda_devices", lambda: 0)
    monkeypatch.setattr(runner_module, "POLL_S", 0.02)
    monkeypatch.setattr(runner_module, "BACKOFF_S", 0.02)
    monkeypatch.setattr(runner_module, "BACKOFF_MAX_S", 0.1)
    return Settings(home=tmp_path / "home")


def queue(store: JobStore) -> str:
    job, _ = store.create(JobSpec(steps=1), key=None, max_active=8)
    return job.id


async def wait_for_status(store: JobStore, job_id: str, status: str, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.05)):
        with contextlib.suppress(sqlite3.Error):
            if store.get(job_id, metrics=False).status == status:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} is {store.get(job_id, metrics=False).status}, not {status}")


async def serve_through(store: JobStore, settings: Settings, breakage) -> tuple[str, str]:
    """Queue a job, run the queue through `breakage` (an async callable), then queue another."""
    runner = JobRunner(store, settings)
    task = asyncio.create_task(runner.run_forever())
    try:
        first = queue(store)
        await breakage()
        assert not task.done(), "the runner stopped on a store error"
        second = queue(store)
        runner.notify()
        await wait_for_status(store, first, "succeeded")
        await wait_for_status(store, second, "succeeded")
        return first, second
    finally:
        runner.stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_33_backoff_is_exponential_and_capped():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 2.0]
    assert backoff(10) == backoff(1000) == runner_module.BACKOFF_MAX_S == 4.0


def test_33_runner_survives_an_unopenable_database(settings, caplog):
    store = JobStore(settings.db_path)
    db, aside = settings.db_path, settings.db_path.with_suffix(".aside")

    async def unopenable() -> None:
        db.rename(aside)
        db.mkdir()  # sqlite3: "unable to open database file"
        await asyncio.sleep(0.6)
        db.rmdir()
        aside.rename(db)

    first, _ = asyncio.run(serve_through(store, settings, unopenable))
    errors = [r for r in caplog.records if "job store error" in r.getMessage()]
    assert len(errors) >= 3, "each failure is logged, then retried"
    assert len(store.get(first).metrics or []) == 1


def test_33_runner_survives_file_descriptor_exhaustion(settings, caplog):
    store = JobStore(settings.db_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []

    async def no_fds_left() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 64, hard))
        try:
            with contextlib.suppress(OSError):
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            await asyncio.sleep(0.4)
        finally:
            for fd in held:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    asyncio.run(serve_through(store, settings, no_fds_left))
    assert any("job store error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("method", ["update", "add_metric", "finish", "cancel_requested"])
def test_33_runner_survives_store_errors_while_a_job_runs(settings, monkeypatch, method):
    store = JobStore(settings.db_path)
    real = getattr(store, method)
    failures = {"left": 5}

    def locked(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, method, locked)

    async def until_it_failed() -> None:
        while failures["left"]:
            await asyncio.sleep(0.02)

    first, _ = asyncio.run(serve_through(store, settings, until_it_failed))
    job = store.get(first)
    assert job.progress == {"step": 1, "total_steps": 1} and job.info == {"device": "cpu"}
    assert [m["loss"] for m in job.metrics or []] == [1.0], "no event lost to the errors"
