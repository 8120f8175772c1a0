"""POST /api/score: the render response plus what a causal LM makes of each token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep, StoreDep
from app.service.score import ScoreRequest, score_messages, scored_json

router = APIRouter(prefix="/api", tags=["score"])


@router.post("/score")
def post_score(body: ScoreRequest, settings: SettingsDep, store: StoreDep) -> dict[str, Any]:
    """Render, mask and score one conversation: per-token logprob and entropy, trained loss.
    `"format": "columns"` answers with parallel arrays (the scores as `logprobs`...)."""
    scored = score_messages(
        body.messages, body.spec(), body.model, settings, store, compare_base=body.compare_base
    )
    return scored_json(scored, columns=body.format == "columns")
