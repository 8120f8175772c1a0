"""POST /api/render: a conversation in, every token with its role, id and loss label out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.service.render import render_and_lint, rendering_json
from app.service.requests import RenderRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/render")
def post_render(body: RenderRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render, tokenize and mask one conversation; lints included."""
    rendered, lints = render_and_lint(body.messages, body.spec(), settings)
    return rendering_json(rendered.rendering, lints)
