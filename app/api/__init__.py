"""JSON routers under /api. Each module exposes `router`; add it to `routers` below."""

from app.api import health, jobs

routers = [health.router, jobs.router]
