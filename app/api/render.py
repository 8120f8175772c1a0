"""POST /api/render: a conversation in, every token with its role, id and loss label out."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.responses import FastJSON
from app.deps import SettingsDep
from app.service.render import render_and_lint, rendering_columns_json, rendering_json
from app.service.requests import RenderAnswerRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/render", response_class=FastJSON)
def post_render(body: RenderAnswerRequest, settings: SettingsDep) -> FastJSON:
    """Render, tokenize and mask one conversation; lints included. `"format": "columns"`
    answers with parallel arrays instead of one object per token."""
    rendered, lints = render_and_lint(body.messages, body.spec(), settings, columns=True)
    shape = rendering_columns_json if body.format == "columns" else rendering_json
    return FastJSON(shape(rendered.rendering, lints))
