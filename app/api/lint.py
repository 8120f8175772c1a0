"""POST /api/lint: the /api/render body in, only the lint findings out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.service.render import render_and_lint
from app.service.requests import RenderRequest

router = APIRouter(prefix="/api", tags=["lint"])


@router.post("/lint")
def post_lint(body: RenderRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render the conversation as /api/render does and return {"lints": [...]}."""
    _, lints = render_and_lint(body.messages, body.spec(), settings)
    return {"lints": [f.to_json() for f in lints]}
