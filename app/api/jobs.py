"""Fine-tune jobs over HTTP: submit, list, follow (SSE), cancel, delete, download artifacts (one
file, or the whole model as a zip) and the metrics as CSV."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from app.deps import RunnerDep, SettingsDep, StoreDep, StreamSlotsDep
from app.service import jobs
from app.train.spec import JobSpec

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
# The largest seq SQLite can compare with (a larger ?after= is a 422, not an OverflowError).
MAX_SEQ = 2**63 - 1


@router.post("", status_code=202)
def submit_job(
    spec: JobSpec,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Queue a fine-tune; the same Idempotency-Key with the same body returns the same job."""
    job = jobs.submit_job(spec, store, runner, settings, idempotency_key=idempotency_key)
    return JSONResponse(
        {"id": job.id, "status": job.status},
        status_code=202,
        headers={"Location": f"/api/jobs/{job.id}"},
    )


@router.get("")
def list_jobs(store: StoreDep) -> dict[str, Any]:
    """Every job, newest first (without its metrics)."""
    return {"jobs": [job.to_json() for job in jobs.list_jobs(store)]}


@router.get("/{job_id}")
def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """One job with its metrics, samples and artifacts."""
    return jobs.get_job(store, job_id).to_json()


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """Queued: cancelled now. Running: stops at its next step. Finished: 409."""
    return jobs.cancel_job(store, job_id).to_json()


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: str, store: StoreDep, settings: SettingsDep) -> Response:
    """A finished job's files and row: 404 unknown, 409 queued or running (cancel first)."""
    jobs.delete_job(store, settings, job_id)
    return Response(status_code=204)


@router.get("/{job_id}/artifacts/{name}")
def download_artifact(
    job_id: str, name: str, store: StoreDep, settings: SettingsDep
) -> FileResponse:
    """One file of the fine-tuned model (only names the job itself listed)."""
    return FileResponse(jobs.artifact_path(store, settings, job_id, name), filename=name)


@router.get("/{job_id}/artifacts.zip")
def download_artifacts_zip(
    job_id: str, store: StoreDep, settings: SettingsDep
) -> StreamingResponse:
    """The fine-tuned model folder as one zip, streamed (no copy of it is made on disk)."""
    name, chunks = jobs.artifacts_zip(store, settings, job_id)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{job_id}/metrics.csv")
def download_metrics_csv(job_id: str, store: StoreDep) -> Response:
    """Every metric as CSV: training loss per step and held-out loss at its intervals, per arm."""
    return Response(
        jobs.metrics_csv(store, job_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="maskscope-job-{job_id}-metrics.csv"'
        },
    )


@router.get("/{job_id}/events")
async def job_events(
    job_id: str,
    request: Request,
    store: StoreDep,
    slots: StreamSlotsDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-Sent Events: every metric as it happens, progress, then the final status.

    ``after``: send only metrics with a larger seq (a page that already drew seqs up to N asks
    for ``?after=N``). The ``Last-Event-ID`` header a browser sends on reconnect wins when larger.
    Example: GET /api/jobs/ab12/events?after=40 -> metric events with id 41, 42, ...
    """
    if last_event_id and last_event_id.isdecimal():
        after = max(after, min(int(last_event_id), MAX_SEQ))
    events = jobs.follow_job(store, job_id, after, request.is_disconnected)
    # Streams are capped in all and per job (429 beyond); the slot is freed however it ends.
    release = slots.claim(job_id)
    return StreamingResponse(
        _sse(events, release),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )


async def _sse(
    events: AsyncIterator[jobs.JobEvent | None], release: Callable[[], None]
) -> AsyncIterator[str]:
    """Each event as SSE text; a quiet spell (None) as a comment that keeps proxies open."""
    try:
        async for event in events:
            if event is None:
                yield ": keep-alive\n\n"
                continue
            head = f"id: {event.id}\n" if event.id is not None else ""
            yield f"{head}event: {event.name}\ndata: {json.dumps(event.data)}\n\n"
    finally:
        release()
