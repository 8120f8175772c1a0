"""Fine-tune jobs over HTTP: submit, list, follow (SSE), cancel, download artifacts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from app.deps import SettingsDep
from app.errors import NotFoundError
from app.train.data import parse_conversations
from app.train.runner import JobRunner
from app.train.spec import JobSpec, check_spec
from app.train.store import FINISHED, JobStore

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
SSE_POLL_S = 0.5
SSE_HEARTBEAT_S = 15.0


def get_store(request: Request) -> JobStore:
    return request.app.state.job_store


def get_runner(request: Request) -> JobRunner:
    return request.app.state.job_runner


StoreDep = Annotated[JobStore, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]


@router.post("", status_code=202)
def submit_job(
    spec: JobSpec,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Queue a fine-tune; the same Idempotency-Key with the same body returns the same job."""
    check_spec(spec, settings)
    # Inline conversations must parse now: a bad one is a 422, not a failed job later.
    parse_conversations(spec.data.conversations or [])
    job, created = store.create(
        spec.model_dump(mode="json"),
        spec.total_steps,
        key=idempotency_key,
        max_active=settings.max_queued_jobs,
    )
    if created:
        runner.wake.set()
    return JSONResponse(
        {"id": job["id"], "status": job["status"]},
        status_code=202,
        headers={"Location": f"/api/jobs/{job['id']}"},
    )


@router.get("")
def list_jobs(store: StoreDep) -> dict[str, Any]:
    """Every job, newest first (without its metrics)."""
    return {"jobs": store.list()}


@router.get("/{job_id}")
def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """One job with its metrics, samples and artifacts."""
    return store.get(job_id)


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """Queued: cancelled now. Running: stops at its next step. Finished: 409."""
    return store.cancel(job_id)


@router.get("/{job_id}/artifacts/{name}")
def download_artifact(
    job_id: str, name: str, store: StoreDep, settings: SettingsDep
) -> FileResponse:
    """One file of the fine-tuned model (only names the job itself listed)."""
    job = store.get(job_id, metrics=False)
    if name not in job["artifacts"]:
        raise NotFoundError(
            f"Job {job_id} has no artifact {name!r}; it has "
            f"{', '.join(job['artifacts']) or 'none yet'}.",
            field="name",
        )
    return FileResponse(settings.jobs_dir / job_id / "model" / name, filename=name)


@router.get("/{job_id}/events")
async def job_events(
    job_id: str,
    request: Request,
    store: StoreDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: every metric as it happens, progress, then the final status.

    ``after``: send only metrics with a larger seq (a page that already drew seqs up to N asks
    for ``?after=N``). The ``Last-Event-ID`` header a browser sends on reconnect wins when larger.
    Example: GET /api/jobs/ab12/events?after=40 -> metric events with id 41, 42, ...
    """
    store.get(job_id, metrics=False)
    if last_event_id and last_event_id.isdecimal():
        after = max(after, int(last_event_id))
    return StreamingResponse(
        _stream(job_id, request, store, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


async def _stream(job_id: str, request: Request, store: JobStore, after: int) -> AsyncIterator[str]:
    last_progress, last_status, quiet = None, None, 0.0
    while True:
        metrics, job = store.poll(job_id, after)
        for metric in metrics:
            after = metric["seq"]
            yield _sse("metric", metric, after)
            quiet = 0.0
        # The device is known only once the job process has started: it rides with progress.
        progress = {**job["progress"], "device": job["info"].get("device")}
        if progress != last_progress:
            last_progress = progress
            yield _sse("progress", last_progress)
        if job["status"] in FINISHED:
            yield _sse("status", store.get(job_id))
            return
        if job["status"] != last_status:
            last_status = job["status"]
            yield _sse("status", {"id": job_id, "status": last_status})
        if quiet >= SSE_HEARTBEAT_S:
            yield ": keep-alive\n\n"
            quiet = 0.0
        if await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)
        quiet += SSE_POLL_S
