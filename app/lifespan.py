"""Start-up and shut-down work: each capability registers a hook here (e.g. job recovery).

The hooks are the only code that writes `app.state`: the core starts its parts from Settings and
returns them (a worker pool, a job queue); a hook keeps what the routers need and its cleanup.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI

from app.chat.collector import freeze_once
from app.service.streams import StreamSlots
from app.templating.worker import shutdown_pools, start_workers
from app.train.runner import start_jobs

Cleanup = Callable[[], Awaitable[None]]
StartupHook = Callable[[FastAPI], Awaitable[Cleanup | None]]


async def _start_workers(app: FastAPI) -> Cleanup:
    """Warm the template workers before the first request; kill them at shut-down."""
    start_workers(app.state.settings)

    async def stop() -> None:
        shutdown_pools()

    return stop


async def _start_jobs(app: FastAPI) -> Cleanup:
    """Recover and run the job queue; the routers find its store and runner on `app.state`."""
    queue = start_jobs(app.state.settings)
    app.state.job_store, app.state.job_runner = queue.store, queue.runner
    return queue.stop


async def _count_streams(app: FastAPI) -> None:
    """The open event streams, counted against their caps by the events route."""
    app.state.event_streams = StreamSlots(app.state.settings)


async def _freeze_started(app: FastAPI) -> None:
    """What start-up left alive lives as long as the process: the collector stops walking it
    (a 28k-token render's collections cost a few ms less)."""
    freeze_once()


# Each hook runs at start-up and may return an async cleanup run at shut-down.
STARTUP_HOOKS: list[StartupHook] = [_start_workers, _start_jobs, _count_streams, _freeze_started]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    cleanups = []
    for hook in STARTUP_HOOKS:
        cleanup = await hook(app)
        if cleanup is not None:
            cleanups.append(cleanup)
    try:
        yield
    finally:
        for cleanup in reversed(cleanups):
            await cleanup()
