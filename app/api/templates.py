"""GET /api/templates: the known chat templates (TRL's and axolotl's), and one's source."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import SettingsDep
from app.service.templates import known_template, known_templates

router = APIRouter(prefix="/api", tags=["templates"])


@router.get("/templates")
async def templates(settings: SettingsDep) -> list[dict[str, Any]]:
    """Name, project, availability and training twin of every known template."""
    # Verifying the installed sets reads their marker files: off the event loop.
    return await run_in_threadpool(known_templates, settings)


@router.get("/templates/{project}/{name}")
async def template(project: str, name: str, settings: SettingsDep) -> dict[str, Any]:
    """The Jinja source of `project/name` (e.g. trl/qwen3), as its project ships it."""
    return await run_in_threadpool(known_template, f"{project}/{name}", settings)
