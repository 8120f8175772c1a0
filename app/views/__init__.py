"""HTML pages and htmx fragments. Each module exposes `router`; add it to `routers` below."""

from pathlib import Path

from app.views import batch, compare, inspect, jobs, pages, score

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

routers = [pages.router, compare.router, batch.router, jobs.router, inspect.router, score.router]
