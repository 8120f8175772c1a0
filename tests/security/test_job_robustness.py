"""DESIGN.md §7 items 33-34: the job runner against a broken store, disk quota and a full disk.

A real SQLite file and a real `JobRunner` task; the job process is a few lines of Python that
write the events a fine-tune writes (no model, so a test takes a second, not a minute). Failures
are real where they can be: the database file replaced by a folder, file descriptors used up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import pathlib
import resource
import sqlite3
import sys
import time
from dataclasses import replace as dataclasses_replace

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.train import runner as runner_module
from app.train.retention import failure_message, prune_jobs
from app.train.runner import JobRunner, backoff
from app.train.spec import JobSpec
from app.train.store import JobStore
from tests.helpers.errors import assert_error

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


def run_async(coro):
    """asyncio.run in a thread of its own: a test that drove a browser may leave this thread's
    event loop running, and asyncio.run refuses to start inside one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# Runs until it finds the CANCEL file the runner writes for a cancel request.
SLOW_JOB = """
import json, sys, time, pathlib
folder = pathlib.Path(sys.argv[1]).parent
while not (folder / "CANCEL").exists():
    time.sleep(0.02)
(folder / "events.jsonl").write_text(json.dumps({"type": "status", "status": "cancelled"}) + "\\n")
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

    first, _ = run_async(serve_through(store, settings, unopenable))
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

    run_async(serve_through(store, settings, no_fds_left))
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

    first, _ = run_async(serve_through(store, settings, until_it_failed))
    job = store.get(first)
    assert job.progress == {"step": 1, "total_steps": 1} and job.info == {"device": "cpu"}
    assert [m["loss"] for m in job.metrics or []] == [1.0], "no event lost to the errors"


def job_body(model: pathlib.Path) -> dict:
    return {"model": str(model), "data": {"dataset": "demo"}, "steps": 1, "max_new_tokens": 1}


def wait_for_api_status(client, job_id: str, status: str, timeout: float = 30) -> dict:
    for _ in range(int(timeout / 0.05)):
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_34_delete_removes_a_finished_jobs_files_and_row(
    settings, fake_job, job_settings_for, tiny_model_dir
):
    app_settings = job_settings_for()
    with TestClient(create_app(app_settings)) as client:
        done = client.post("/api/jobs", json=job_body(tiny_model_dir)).json()["id"]
        wait_for_api_status(client, done, "succeeded")
        assert (app_settings.jobs_dir / done / "events.jsonl").is_file()
        fake_job["code"] = SLOW_JOB
        active = client.post("/api/jobs", json={**job_body(tiny_model_dir), "seed": 1}).json()
        assert_error(client.delete(f"/api/jobs/{active['id']}"), 409, "cancel it first")
        wait_for_api_status(client, active["id"], "running")
        assert_error(client.delete(f"/api/jobs/{active['id']}"), 409, "cancel it first")

        response = client.delete(f"/api/jobs/{done}")
        assert response.status_code == 204 and response.content == b""
        assert not (app_settings.jobs_dir / done).exists()
        assert_error(client.get(f"/api/jobs/{done}"), 404, done)
        assert_error(client.delete(f"/api/jobs/{done}"), 404, done)
        assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [active["id"]]

        client.post(f"/api/jobs/{active['id']}/cancel")
        wait_for_api_status(client, active["id"], "cancelled")
        assert client.delete(f"/api/jobs/{active['id']}").status_code == 204
        assert not (app_settings.jobs_dir / active["id"]).exists()


def test_34_submission_over_the_artifacts_quota_gets_507(job_settings_for, tiny_model_dir):
    app_settings = job_settings_for(max_job_artifacts_bytes=100)
    old = app_settings.jobs_dir / "old" / "model"
    old.mkdir(parents=True)
    (old / "model.safetensors").write_bytes(b"x" * 101)
    with TestClient(create_app(app_settings)) as client:
        response = client.post("/api/jobs", json=job_body(tiny_model_dir))
        err = assert_error(response, 507, "max_job_artifacts_bytes", "101 bytes")
        assert err["setting"] == "max_job_artifacts_bytes"
        assert client.get("/api/jobs").json()["jobs"] == []


def finished_job(store: JobStore, settings: Settings, age_days: float) -> str:
    job_id = queue(store)
    store.cancel(job_id)
    with sqlite3.connect(settings.db_path) as db:
        db.execute(
            "UPDATE jobs SET finished_at = finished_at - ? WHERE id = ?", (age_days * 86400, job_id)
        )
    (settings.jobs_dir / job_id).mkdir(parents=True)
    (settings.jobs_dir / job_id / "log.txt").write_text("old")
    return job_id


def test_34_retention_deletes_old_finished_jobs_at_start_up(job_settings_for):
    app_settings = job_settings_for(job_retention_days=7)
    store = JobStore(app_settings.db_path)
    old, recent = finished_job(store, app_settings, 8), finished_job(store, app_settings, 6)
    waiting = queue(store)
    with TestClient(create_app(app_settings)) as client:
        listed = {j["id"] for j in client.get("/api/jobs").json()["jobs"]}
        assert old not in listed and {recent, waiting} <= listed
        assert not (app_settings.jobs_dir / old).exists()
        assert (app_settings.jobs_dir / recent / "log.txt").is_file()
        client.post(f"/api/jobs/{waiting}/cancel")


def test_34_retention_of_zero_keeps_every_job(settings):
    store = JobStore(settings.db_path)
    old = finished_job(store, settings, 10_000)
    assert prune_jobs(store, dataclasses_replace(settings, job_retention_days=0)) == []
    assert store.get(old).status == "cancelled"
    assert prune_jobs(store, dataclasses_replace(settings, job_retention_days=1)) == [old]


def test_34_full_disk_fails_the_job_naming_the_disk_and_the_queue_goes_on(settings, monkeypatch):
    store = JobStore(settings.db_path)
    write_text = pathlib.Path.write_text
    full = {"left": 1}

    def no_space(path, *args, **kwargs):
        if path.name == "spec.json" and full["left"]:
            full["left"] -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", no_space)

    async def main() -> tuple[str, str]:
        runner = JobRunner(store, settings)
        task = asyncio.create_task(runner.run_forever())
        try:
            first, second = queue(store), queue(store)
            await wait_for_status(store, first, "failed")
            await wait_for_status(store, second, "succeeded")
            assert not task.done()
            return first, second
        finally:
            runner.stopping = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    first, _ = run_async(main())
    error = store.get(first).error or ""
    assert f"The disk holding {settings.jobs_dir / first} is full" in error
    assert "No space left on device" in error and "max_job_artifacts_bytes" in error


def test_34_job_process_reports_a_full_disk_by_name(tmp_path):
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert failure_message(full, tmp_path).startswith(f"The disk holding {tmp_path} is full")
    assert failure_message(ValueError("bad"), tmp_path) == "ValueError: bad"
