"""Start-up and shut-down work: each capability registers a hook here (e.g. job recovery)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI

from app.templating.worker import start_workers
from app.train.runner import start_jobs

StartupHook = Callable[[FastAPI], Awaitable[Callable[[], Awaitable[None]] | None]]

# Each hook runs at start-up and may return an async cleanup run at shut-down.
STARTUP_HOOKS: list[StartupHook] = [start_workers, start_jobs]


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
