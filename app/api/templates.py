"""GET /api/templates: the known chat templates (TRL's and axolotl's), one's source, and a
tokenizer's own template (GET /api/templates/tokenizer?tokenizer=qwen3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import SettingsDep
from app.service.templates import known_template, known_templates, tokenizer_template

router = APIRouter(prefix="/api", tags=["templates"])


@router.get("/templates")
async def templates(settings: SettingsDep) -> list[dict[str, Any]]:
    """Name, project, availability and training twin of every known template."""
    # Verifying the installed sets reads their marker files: off the event loop.
    return await run_in_threadpool(known_templates, settings)


@router.get("/templates/tokenizer")
async def own_template(tokenizer: str, settings: SettingsDep) -> dict[str, Any]:
    """The chat template `tokenizer` ships (a bundled name, local folder or Hub id)."""
    return await run_in_threadpool(tokenizer_template, tokenizer, settings)


@router.get("/templates/{project}/{name}")
async def template(project: str, name: str, settings: SettingsDep) -> dict[str, Any]:
    """The Jinja source of `project/name` (e.g. trl/qwen3), as its project ships it."""
    return await run_in_threadpool(known_template, f"{project}/{name}", settings)
