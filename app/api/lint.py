"""POST /api/lint: the /api/render body in, only the lint findings out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.api.render import RenderRequest, render_request

router = APIRouter(prefix="/api", tags=["lint"])


@router.post("/lint")
def post_lint(body: RenderRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render the conversation as /api/render does and return {"lints": [...]}."""
    _, lints = render_request(body, settings)
    return {"lints": [f.to_json() for f in lints]}
