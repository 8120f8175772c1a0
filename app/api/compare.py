"""POST /api/compare: one conversation under several tokenizer+dialect pairs, in order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.errors import MaskscopeError
from app.service.compare import compare
from app.service.render import rendering_json
from app.service.requests import CompareRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/compare")
def post_compare(body: CompareRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render one conversation under each target; failing targets give error entries."""
    results = []
    for outcome in compare(body, settings):
        if isinstance(outcome, MaskscopeError):
            results.append(outcome.payload())
        else:
            rendered, lints = outcome
            results.append(rendering_json(rendered.rendering, lints))
    return {"results": results}
