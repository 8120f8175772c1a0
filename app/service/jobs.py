"""Fine-tune jobs: submit, list, get, cancel, delete, find an artifact, download the model as
one zip and the metrics as CSV, follow a job's events.

/api/jobs and the jobs pages call these with a JobSpec, the store and the runner; the HTTP side
only reads headers and writes JSON, HTML or Server-Sent Events.

Example: submit_job(JobSpec(steps=5), store, runner, settings, idempotency_key="k1")
         -> Job(id="3f2a9c1b0d4e", status="queued", ...); the same key and body again -> that job

Design concession: following a job polls the store (one short read per `poll_s`) rather than
waiting on the runner, so any process that can open the database can follow any job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import NotFoundError
from app.settings import Settings
from app.train import export, retention
from app.train.data import parse_conversations
from app.train.record import Job
from app.train.runner import JobRunner
from app.train.spec import JobSpec, check_spec
from app.train.store import JobStore

POLL_S = 0.5
HEARTBEAT_S = 15.0


def submit_job(
    spec: JobSpec,
    store: JobStore,
    runner: JobRunner,
    settings: Settings,
    *,
    idempotency_key: str | None = None,
) -> Job:
    """Check and queue a fine-tune; the same key with the same body returns the first job."""
    check_spec(spec, settings)
    # Inline conversations must parse now: a bad one is refused, not a failed job later.
    parse_conversations(spec.data.conversations or [])
    retention.check_quota(settings)
    job, created = store.create(spec, key=idempotency_key, max_active=settings.max_queued_jobs)
    if created:
        runner.notify()
    return job


def list_jobs(store: JobStore) -> list[Job]:
    """Every job, newest first, without metrics."""
    return store.list()


def get_job(store: JobStore, job_id: str, *, metrics: bool = True) -> Job:
    """One job (NotFoundError naming the id when there is none)."""
    return store.get(job_id, metrics=metrics)


def cancel_job(store: JobStore, job_id: str) -> Job:
    """Queued: cancelled now. Running: stops at its next step. Finished: ConflictError."""
    return store.cancel(job_id)


def delete_job(store: JobStore, settings: Settings, job_id: str) -> None:
    """A finished job's folder and row: gone. Unknown: NotFoundError. Active: ConflictError."""
    retention.delete_job(store, settings, job_id)


def artifact_path(store: JobStore, settings: Settings, job_id: str, name: str) -> Path:
    """The file `name` of the job's saved model; only names the job itself listed are found."""
    job = store.get(job_id, metrics=False)
    if name not in job.artifacts:
        raise NotFoundError(
            f"Job {job_id} has no artifact {name!r}; it has "
            f"{', '.join(job.artifacts) or 'none yet'}.",
            field="name",
        )
    return settings.jobs_dir / job_id / "model" / name


def artifacts_zip(store: JobStore, settings: Settings, job_id: str) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of the job's saved model as one zip, entries under "<id>/".

    Example: artifacts_zip(store, settings, "ab12") -> ("maskscope-job-ab12.zip", <chunks>)
    """
    job = store.get(job_id, metrics=False)
    if not job.artifacts:
        raise NotFoundError(
            f"Job {job_id} has no artifacts yet (it is {job.status}); the model is saved when "
            "its first arm finishes training.",
            field="id",
        )
    folder = settings.jobs_dir / job_id / "model"
    return f"maskscope-job-{job_id}.zip", export.zip_chunks(folder, job.artifacts, f"{job_id}/")


def metrics_csv(store: JobStore, job_id: str) -> str:
    """Every metric of the job as CSV, training and held-out points in the order recorded."""
    store.get(job_id, metrics=False)
    return export.metrics_csv(store.metrics(job_id))


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a followed job. Example: JobEvent("metric", {"seq": 41, ...}, id=41)"""

    name: str
    data: dict[str, Any]
    id: int | None = None


def follow_job(
    store: JobStore,
    job_id: str,
    after: int,
    disconnected: Callable[[], Awaitable[bool]],
    *,
    poll_s: float = POLL_S,
    heartbeat_s: float = HEARTBEAT_S,
) -> AsyncIterator[JobEvent | None]:
    """Every metric with a seq above `after` as it is recorded, progress (with the device, the
    phase and each arm's steps) when it changes, the samples as soon as there are any and
    whenever they grow, status changes, and at the end the finished job with its metrics.

    A None means nothing happened for `heartbeat_s`: the caller keeps its connection alive. The
    stream ends when the job finishes or `disconnected()` says the reader is gone. The job is
    looked up now, so an unknown id fails before any event is sent.
    """
    store.get(job_id, metrics=False)
    return _follow(store, job_id, after, disconnected, poll_s, heartbeat_s)


async def _follow(
    store: JobStore,
    job_id: str,
    after: int,
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float,
    heartbeat_s: float,
) -> AsyncIterator[JobEvent | None]:
    last_progress, last_status, last_samples, quiet = None, None, None, 0.0
    while True:
        # Off the event loop: a hundred open streams poll twice a second each.
        metrics, job = await asyncio.to_thread(store.poll, job_id, after)
        for metric in metrics:
            after = metric["seq"]
            yield JobEvent("metric", metric, after)
            quiet = 0.0
        # The device is known only once the job process has started: it rides with progress.
        progress = {**job.to_json()["progress"], "device": job.info.get("device")}
        if progress != last_progress:
            last_progress = progress
            yield JobEvent("progress", last_progress)
        if job.samples and job.samples != last_samples:
            last_samples = job.samples
            yield JobEvent("samples", {"samples": job.samples})
        if job.finished:
            yield JobEvent("status", store.get(job_id).to_json())
            return
        if job.status != last_status:
            last_status = job.status
            yield JobEvent("status", {"id": job_id, "status": last_status})
        if quiet >= heartbeat_s:
            yield None
            quiet = 0.0
        if await disconnected():
            return
        await asyncio.sleep(poll_s)
        quiet += poll_s
