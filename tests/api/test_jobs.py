"""Jobs API on a real app, a real SQLite file and real job processes (tiny model)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import sqlite3
import sys
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.train.runner import settings_env
from app.train.spec import JobSpec
from app.train.store import JobStore
from tests.helpers.errors import assert_error

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from serve import uvicorn_server


@pytest.fixture
def model_dir(tiny_model_dir) -> Path:
    return tiny_model_dir


@pytest.fixture
def settings_for(job_settings_for):
    return job_settings_for


@pytest.fixture
def client(settings_for):
    with TestClient(create_app(settings_for())) as test_client:
        yield test_client


def spec(model_dir: Path, **overrides) -> dict:
    return {
        "model": str(model_dir),
        "data": {"dataset": "demo"},
        "steps": 2,
        "batch_size": 2,
        "max_length": 64,
        "learning_rate": 1e-3,
        "max_new_tokens": 2,
        "sample_prompts": ["Hi?"],
        **overrides,
    }


def wait_for(client, job_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


def stored_jobs(settings: Settings) -> int:
    with sqlite3.connect(settings.db_path) as db:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"neftune_alpha": -1}, 422, "neftune_alpha"),
        ({"learning_rate": float("nan")}, 422, "learning_rate"),
        ({"steps": 10**6}, 422, "max_train_steps"),
        ({"max_length": 10**6}, 422, "max_train_length"),
        ({"dialect": "klingon"}, 422, "Unknown dialect"),
        ({"model": "/etc"}, 422, "tokenizer_roots"),
        ({"model": "../x"}, 422, ".."),
        ({"model": "qwen3"}, 424, "No model weights"),
        ({"tokenizer": "/etc"}, 422, "tokenizer_roots"),
        ({"data": {"conversations": [{"nonsense": 1}]}}, 422, "data.conversations[0]"),
        ({"data": {}}, 422, "exactly one"),
        ({"surprise": 1}, 422, "surprise"),
    ],
)
def test_invalid_spec_is_refused_and_nothing_is_stored(
    client, model_dir, settings_for, change, status, needle
):
    body = json.dumps({**spec(model_dir), **change}, allow_nan=True)
    response = client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, status, needle)
    assert client.get("/api/jobs").json() == {"jobs": []}
    assert stored_jobs(settings_for()) == 0


def test_job_runs_to_the_end_with_live_events_and_artifacts(client, model_dir):
    response = client.post("/api/jobs", json=spec(model_dir, compare_baseline=True))
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        lines = [line for line in stream.iter_lines() if line]
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    assert events[-1] == "status"
    final = json.loads(lines[-1].split(": ", 1)[1])
    assert final["status"] == "succeeded", final["error"]
    assert events.count("metric") == len(final["metrics"])
    trained = [m for m in final["metrics"] if m["loss"] is not None]
    assert [(m["arm"], m["step"]) for m in trained] == [
        ("neftune", 1),
        ("neftune", 2),
        ("baseline", 1),
        ("baseline", 2),
    ]
    held_out = [(m["arm"], m["step"]) for m in final["metrics"] if m["loss"] is None]
    assert held_out == [(arm, step) for arm in ("neftune", "baseline") for step in (0, 1, 2)]
    assert final["progress"] == {
        "step": 4,
        "total_steps": 4,
        "phase": "sampling after",
        "arms": [
            {"arm": "neftune", "step": 2, "steps": 2},
            {"arm": "baseline", "step": 2, "steps": 2},
        ],
    }
    assert final["summary"]["sentence"].startswith("NEFTune's held-out loss ended ")
    assert {"before", "after", "after_baseline"} <= set(final["samples"][0])
    weights = client.get(f"/api/jobs/{job_id}/artifacts/model.safetensors")
    assert weights.status_code == 200 and len(weights.content) > 1000
    archive = client.get(f"/api/jobs/{job_id}/artifacts.zip")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    assert f"maskscope-job-{job_id}.zip" in archive.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.content)) as unzipped:
        assert unzipped.testzip() is None
        assert unzipped.namelist() == [f"{job_id}/{name}" for name in final["artifacts"]]
        assert unzipped.read(f"{job_id}/model.safetensors") == weights.content
    table = client.get(f"/api/jobs/{job_id}/metrics.csv")
    assert table.headers["content-type"].startswith("text/csv")
    csv_rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [int(r["seq"]) for r in csv_rows] == [m["seq"] for m in final["metrics"]]
    assert [r["loss"] == "" for r in csv_rows] == [m["loss"] is None for m in final["metrics"]]
    assert float(csv_rows[0]["eval_loss"]) == pytest.approx(final["metrics"][0]["eval_loss"])
    assert_error(client.get("/api/jobs/nope/artifacts.zip"), 404, "nope")
    assert_error(client.get("/api/jobs/nope/metrics.csv"), 404, "nope")
    assert_error(client.get(f"/api/jobs/{job_id}/artifacts/..%2Fspec.json"), 404)
    assert_error(client.get(f"/api/jobs/{job_id}/artifacts/spec.json"), 404, "no artifact")
    assert_error(client.post(f"/api/jobs/{job_id}/cancel"), 409, "succeeded")
    # replaying from the last metric id sends only the final status
    with client.stream(
        "GET",
        f"/api/jobs/{job_id}/events",
        headers={"Last-Event-ID": str(final["metrics"][-1]["seq"])},
    ) as stream:
        assert not any(line == "event: metric" for line in stream.iter_lines())


def test_idempotency_key(client, model_dir):
    body = spec(model_dir, steps=1)
    first = client.post("/api/jobs", json=body, headers={"Idempotency-Key": "k1"})
    again = client.post("/api/jobs", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/api/jobs", json={**body, "seed": 5}, headers={"Idempotency-Key": "k1"})
    assert_error(other, 422, "Idempotency-Key")
    assert len(client.get("/api/jobs").json()["jobs"]) == 1
    wait_for(client, first.json()["id"], ("succeeded", "failed"))


def test_queue_bound_and_cancel(settings_for, model_dir):
    with TestClient(create_app(settings_for(max_queued_jobs=2))) as client:
        long = client.post("/api/jobs", json=spec(model_dir, steps=2000)).json()["id"]
        queued = client.post("/api/jobs", json=spec(model_dir, steps=1)).json()["id"]
        refused = client.post("/api/jobs", json=spec(model_dir, steps=1))
        err = assert_error(refused, 429, "max_queued_jobs")
        assert err["setting"] == "max_queued_jobs"
        assert int(refused.headers["Retry-After"]) > 0
        assert client.post(f"/api/jobs/{queued}/cancel").json()["status"] == "cancelled"
        deadline = time.time() + 120
        while client.get(f"/api/jobs/{long}").json()["progress"]["step"] < 1:
            assert time.time() < deadline
            time.sleep(0.2)
        assert client.post(f"/api/jobs/{long}/cancel").json()["cancel_requested"]
        job = wait_for(client, long, ("cancelled", "failed", "succeeded"))
        assert job["status"] == "cancelled"
        assert job["progress"]["step"] < 2000
        assert_error(client.post(f"/api/jobs/{long}/cancel"), 409)
        assert_error(client.get("/api/jobs/nope"), 404)


def test_restart_marks_running_job_interrupted_and_keeps_the_rest(settings_for, model_dir):
    settings = settings_for()
    store = JobStore(settings.db_path)
    running, _ = store.create(JobSpec(**spec(model_dir)), key=None, max_active=8)
    assert store.claim_next().id == running.id
    store.add_metric(
        running.id, {"arm": "neftune", "step": 1, "loss": 2.5, "lr": 1e-3, "tokens_per_s": 10.0}
    )
    finished, _ = store.create(JobSpec(**spec(model_dir, seed=1)), key=None, max_active=8)
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE jobs SET status = 'succeeded' WHERE id = ?", (finished.id,))
    with TestClient(create_app(settings)) as client:
        job = client.get(f"/api/jobs/{running.id}").json()
        assert job["status"] == "failed" and job["error"] == "interrupted"
        assert job["metrics"][0]["loss"] == 2.5
        assert client.get(f"/api/jobs/{finished.id}").json()["status"] == "succeeded"


def read_events(
    client, url: str, headers: dict | None = None
) -> list[tuple[str | None, str, dict]]:
    """(id, event, data) of every event on a stream that ends (a finished job's)."""
    events, event_id = [], None
    with client.stream("GET", url, headers=headers or {}) as stream:
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((event_id, name, json.loads(line[6:])))
                event_id = None
    return events


@pytest.fixture
def finished_job(settings_for, model_dir) -> tuple[Settings, str, list[int]]:
    """A succeeded job with three stored metrics, written before the app starts."""
    settings = settings_for()
    store = JobStore(settings.db_path)
    job, _ = store.create(JobSpec(**spec(model_dir, steps=3)), key=None, max_active=8)
    for step in (1, 2, 3):
        store.add_metric(
            job.id,
            {"arm": "neftune", "step": step, "loss": 3.0 - step, "lr": 1e-3, "tokens_per_s": 10.0},
        )
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE jobs SET status = 'succeeded' WHERE id = ?", (job.id,))
    return settings, job.id, [m["seq"] for m in store.metrics(job.id)]


@pytest.mark.parametrize(
    ("query", "last_event_id", "sent"),
    [
        ("", None, [0, 1, 2]),
        ("?after=0", None, [0, 1, 2]),
        ("?after={0}", None, [1, 2]),
        ("?after={2}", None, []),
        ("?after={0}", "{1}", [2]),  # the reconnect header is further on: it wins
        ("?after={1}", "{0}", [2]),  # the page already holds more than the header says
        ("?after={0}", "garbage", [1, 2]),
    ],
)
def test_events_after_send_only_later_metrics(finished_job, query, last_event_id, sent):
    settings, job_id, seqs = finished_job
    headers = {"Last-Event-ID": last_event_id.format(*seqs)} if last_event_id else {}
    with TestClient(create_app(settings)) as client:
        events = read_events(client, f"/api/jobs/{job_id}/events{query.format(*seqs)}", headers)
    metrics = [(event_id, data) for event_id, name, data in events if name == "metric"]
    assert [int(event_id) for event_id, _ in metrics] == [seqs[i] for i in sent]
    assert [data["step"] for _, data in metrics] == [i + 1 for i in sent]
    name, final = events[-1][1:]
    assert name == "status" and final["status"] == "succeeded"
    assert [m["seq"] for m in final["metrics"]] == seqs


@pytest.mark.parametrize("after", ["-1", "x", "1.5"])
def test_events_bad_after_is_refused(finished_job, after):
    settings, job_id, _ = finished_job
    with TestClient(create_app(settings)) as client:
        err = assert_error(client.get(f"/api/jobs/{job_id}/events?after={after}"), 422, "after")
    assert err["field"] == "after"


def test_non_ascii_digit_event_id_is_ignored_on_a_real_server(finished_job):
    # Only a real socket delivers the raw byte: Starlette decodes it as latin-1 "²", which
    # str.isdigit accepts and int() refuses.
    settings, job_id, seqs = finished_job
    with uvicorn_server(settings_env(settings)) as (base, _):
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
        try:
            conn.putrequest("GET", f"/api/jobs/{job_id}/events?after={seqs[1]}")
            conn.putheader("Last-Event-ID", b"\xb2")
            conn.endheaders()
            response = conn.getresponse()
            body = response.read().decode()
        finally:
            conn.close()
    assert response.status == 200, body
    assert f"id: {seqs[2]}\nevent: metric" in body
    assert f"id: {seqs[1]}\n" not in body
