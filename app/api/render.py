"""POST /api/render: a conversation in, every token with its role, id and loss label out."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.responses import EncodedJSON, FastJSON
from app.deps import SettingsDep
from app.service.render import render_answer
from app.service.requests import RenderAnswerRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/render", response_class=FastJSON)
def post_render(body: RenderAnswerRequest, settings: SettingsDep) -> Response:
    """Render, tokenize and mask one conversation; lints included. `"format": "columns"`
    answers with parallel arrays instead of one object per token."""
    columns = body.format == "columns"
    return EncodedJSON(render_answer(body.messages, body.spec(), settings, columns=columns))
