"""JSON routers under /api. Each module exposes `router`; add it to `routers` below."""

from app.api import (
    batch,
    compare,
    dialects,
    health,
    inspect,
    jobs,
    lint,
    render,
    score,
    templates,
    tokenizers,
)

routers = [
    health.router,
    render.router,
    dialects.router,
    jobs.router,
    tokenizers.router,
    compare.router,
    batch.router,
    lint.router,
    inspect.router,
    templates.router,
    score.router,
]
