"""DESIGN.md §7 items 20-24: fine-tune jobs under races, crashes, floods and hostile specs.

Real app, real SQLite file, real job processes training a tiny random model; item 21 kills a real
uvicorn with SIGKILL while a job runs and starts a new one on the same home.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.helpers.errors import assert_error
from tests.train.job_processes import end_job_processes, job_processes, wait_for_no_job_processes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from serve import uvicorn_server


def job_spec(model: Path, **overrides) -> dict:
    return {
        "model": str(model),
        "data": {"dataset": "demo"},
        "steps": 2,
        "batch_size": 2,
        "max_length": 64,
        "learning_rate": 1e-3,
        "max_new_tokens": 1,
        **overrides,
    }


def rows(settings: Settings) -> list[dict]:
    if not settings.db_path.exists():
        return []
    with sqlite3.connect(settings.db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY created_at")]


def wait_for(client, job_id: str, check, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if check(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_20_same_idempotency_key_from_racing_clients_makes_one_job(
    job_settings_for, tiny_model_dir
):
    settings = job_settings_for(max_queued_jobs=8)
    body = job_spec(tiny_model_dir, steps=1)
    with TestClient(create_app(settings)) as client:
        answers: list = []

        def submit() -> None:
            answers.append(
                client.post("/api/jobs", json=body, headers={"Idempotency-Key": "race-1"})
            )

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [202] * 8
        assert len({a.json()["id"] for a in answers}) == 1
        other = client.post(
            "/api/jobs", json={**body, "seed": 7}, headers={"Idempotency-Key": "race-1"}
        )
        assert_error(other, 422, "Idempotency-Key")
        assert len(rows(settings)) == 1


def test_21_killed_server_restart_marks_the_running_job_interrupted(
    job_settings_for, tiny_model_dir
):
    settings = job_settings_for()
    env = {
        "MASKSCOPE_HOME": str(settings.home),
        "MASKSCOPE_TOKENIZER_ROOTS": str(tiny_model_dir.parent),
        "MASKSCOPE_ALLOW_HUB": "false",
    }
    try:
        with uvicorn_server(env) as (base, server):
            with httpx.Client(base_url=base, timeout=30) as http:
                running = http.post("/api/jobs", json=job_spec(tiny_model_dir, steps=2000)).json()[
                    "id"
                ]
                kept = http.post("/api/jobs", json=job_spec(tiny_model_dir, steps=1)).json()["id"]
                http.post(f"/api/jobs/{kept}/cancel")
                wait_for(http, running, lambda j: j["progress"]["step"] >= 1)
            server.kill()  # no shutdown hook runs: a crash
            server.wait()
        # the orphaned job stops by itself, without waiting for a restart to end it
        wait_for_no_job_processes(settings.jobs_dir, timeout=15)
        events = (settings.jobs_dir / running / "events.jsonl").read_text().splitlines()
        assert json.loads(events[-1])["error"] == "interrupted: the server stopped"
        assert not (settings.jobs_dir / running / "model").exists()
        before = {r["id"]: r for r in rows(settings)}
        assert before[running]["status"] == "running"
        with uvicorn_server(env) as (base, _), httpx.Client(base_url=base, timeout=30) as http:
            job = http.get(f"/api/jobs/{running}").json()
            assert job["status"] == "failed" and job["error"] == "interrupted"
            assert job["metrics"], "metrics recorded before the crash are kept"
            other = http.get(f"/api/jobs/{kept}").json()
            assert other["status"] == "cancelled"
            assert other["spec"] == json.loads(before[kept]["spec"])
        assert not job_processes(settings.jobs_dir)
    finally:
        end_job_processes(settings.jobs_dir)


def test_22_23_cancel_semantics_queue_bound_and_one_job_at_a_time(job_settings_for, tiny_model_dir):
    settings = job_settings_for(max_queued_jobs=3)
    with TestClient(create_app(settings)) as client:
        long = client.post("/api/jobs", json=job_spec(tiny_model_dir, steps=2000)).json()["id"]
        pending = client.post("/api/jobs", json=job_spec(tiny_model_dir, steps=1)).json()["id"]
        after = client.post("/api/jobs", json=job_spec(tiny_model_dir, steps=1, seed=3)).json()[
            "id"
        ]
        refused = client.post("/api/jobs", json=job_spec(tiny_model_dir, steps=1, seed=4))
        err = assert_error(refused, 429, "max_queued_jobs")
        assert int(refused.headers["Retry-After"]) > 0 and err["setting"] == "max_queued_jobs"
        assert len(rows(settings)) == 3

        cancelled = client.post(f"/api/jobs/{pending}/cancel").json()
        assert cancelled["status"] == "cancelled"  # at once, not at some later step
        wait_for(client, long, lambda j: j["progress"]["step"] >= 1)
        assert client.post(f"/api/jobs/{long}/cancel").json()["cancel_requested"]
        seen_running: list[int] = []
        deadline = time.monotonic() + 120
        # Until the runner has moved on to the next job, at most one job may be running.
        while client.get(f"/api/jobs/{after}").json()["status"] == "queued":
            seen_running.append(sum(r["status"] == "running" for r in rows(settings)))
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert max(seen_running) == 1
        final = client.get(f"/api/jobs/{long}").json()
        assert final["status"] == "cancelled" and final["progress"]["step"] < 2000
        assert client.get(f"/api/jobs/{pending}").json()["status"] == "cancelled"
        assert not (settings.jobs_dir / pending).exists(), "a cancelled job never starts"
        for job_id in (long, pending):
            assert_error(client.post(f"/api/jobs/{job_id}/cancel"), 409)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"neftune_alpha": -0.1}, "neftune_alpha"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"steps": 10**9}, "max_train_steps"),
        ({"steps": 0}, "steps"),
        ({"dialect": "no-such-dialect"}, "dialect"),
        ({"model": "../../etc"}, ".."),
        ({"batch_size": "many"}, "batch_size"),
        ({"trust_remote_code": True}, "trust_remote_code"),
    ],
)
def test_24_invalid_spec_is_refused_and_nothing_is_written(
    job_settings_for, tiny_model_dir, raw, needle
):
    settings = job_settings_for()
    with TestClient(create_app(settings)) as client:
        body = json.dumps({**job_spec(tiny_model_dir), **raw}, allow_nan=True)
        response = client.post(
            "/api/jobs",
            content=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": "k"},
        )
        assert_error(response, 422, needle)
    assert rows(settings) == []
    assert not settings.jobs_dir.exists() or not any(settings.jobs_dir.iterdir())
