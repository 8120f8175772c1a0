"""The runner's cancel forwarding against a real SQLite store and a real job directory."""

from __future__ import annotations

from app.settings import Settings
from app.train.runner import JobRunner
from app.train.spec import JobSpec
from app.train.store import JobStore


def test_cancel_request_becomes_the_cancel_file(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, Settings(home=tmp_path / "home"))
    job, _ = store.create(JobSpec(steps=3), key=None, max_active=8)
    assert store.claim_next().id == job.id
    job_dir = tmp_path / job.id
    job_dir.mkdir()
    runner._forward_cancel(job.id, job_dir)
    assert not (job_dir / "CANCEL").exists()
    store.cancel(job.id)
    runner._forward_cancel(job.id, job_dir)
    assert (job_dir / "CANCEL").is_file()
