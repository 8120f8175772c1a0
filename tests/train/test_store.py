"""The job store's polling reads against a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from app.errors import ConflictError, NotFoundError
from app.train.spec import JobSpec
from app.train.store import JobStore


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def new_job(store: JobStore) -> str:
    job, _ = store.create(JobSpec(steps=3), key=None, max_active=8)
    return job.id


def add_metrics(store: JobStore, job_id: str, steps: int) -> None:
    for step in range(1, steps + 1):
        store.add_metric(
            job_id,
            {
                "type": "metric",
                "arm": "neftune",
                "step": step,
                "loss": 3.0 - step,
                "lr": 1e-3,
                "tokens_per_s": 100.0 * step,
            },
        )


def test_poll_returns_only_later_metrics_and_the_job_row(store):
    job_id = new_job(store)
    other = new_job(store)
    add_metrics(store, job_id, 3)
    add_metrics(store, other, 2)
    first = store.metrics(job_id)[0]["seq"]
    metrics, job = store.poll(job_id, first)
    assert [m["step"] for m in metrics] == [2, 3]
    assert all(m["seq"] > first for m in metrics)
    assert metrics == store.metrics(job_id, first)
    assert job == store.get(job_id, metrics=False)
    assert job.metrics is None and "metrics" not in job.to_json()
    store.update(job_id, step=3)
    metrics, job = store.poll(job_id, metrics[-1]["seq"])
    assert metrics == []
    assert job.progress == {"step": 3, "total_steps": 3}


def test_poll_opens_one_connection(store, monkeypatch):
    job_id = new_job(store)
    add_metrics(store, job_id, 2)
    opened = []
    connect = sqlite3.connect

    def counting(*args, **kwargs):
        opened.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    metrics, job = store.poll(job_id, 0)
    assert len(metrics) == 2 and job.status == "queued"
    assert len(opened) == 1


def test_cancel_requested_follows_the_cancel_flag(store):
    job_id = new_job(store)
    assert store.cancel_requested(job_id) is False
    assert store.claim_next().id == job_id
    assert store.cancel_requested(job_id) is False
    store.cancel(job_id)
    assert store.cancel_requested(job_id) is True
    assert store.get(job_id).cancel_requested is True


@pytest.mark.parametrize(
    "read", [lambda s: s.poll("nope", 0), lambda s: s.cancel_requested("nope")]
)
def test_unknown_job_is_not_found(store, read):
    with pytest.raises(NotFoundError, match="nope"):
        read(store)


def test_job_json_has_the_api_shape_in_order(store):
    job_id = new_job(store)
    add_metrics(store, job_id, 1)
    keys = [
        "id",
        "status",
        "spec",
        "progress",
        "samples",
        "error",
        "artifacts",
        "info",
        "cancel_requested",
        "created_at",
        "started_at",
        "finished_at",
    ]
    listed = store.list()[0].to_json()
    assert list(listed) == keys
    assert listed["spec"] == JobSpec(steps=3).model_dump(mode="json")
    assert listed["progress"] == {
        "step": 0,
        "total_steps": 3,
        "phase": None,
        "arms": [{"arm": "neftune", "step": 0, "steps": 3}],
    }
    full = store.get(job_id).to_json()
    assert list(full) == [*keys, "metrics", "summary"]
    assert [m["step"] for m in full["metrics"]] == [1]


def test_delete_removes_a_finished_job_and_its_metrics_only(store):
    done, active = new_job(store), new_job(store)
    add_metrics(store, done, 2)
    store.cancel(done)
    with pytest.raises(ConflictError, match="cancel it first"):
        store.check_deletable(active)
    store.delete(active)  # an active job is left alone even without the check
    store.check_deletable(done)
    store.delete(done)
    with pytest.raises(NotFoundError, match=done):
        store.get(done)
    assert store.metrics(done) == [] and store.get(active).status == "queued"


def test_finished_before_lists_only_finished_jobs_older_than_the_cutoff(store):
    done, active = new_job(store), new_job(store)
    store.cancel(done)
    finished_at = store.get(done).finished_at
    assert store.finished_before(finished_at + 1) == [done]
    assert store.finished_before(finished_at - 1) == []
    assert active not in store.finished_before(float("inf"))
