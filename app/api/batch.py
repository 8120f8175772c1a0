"""POST /api/batch: several conversations as one training batch, padded or packed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.service.batch import build_batch
from app.service.requests import BatchRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/batch")
def post_batch(body: BatchRequest, settings: SettingsDep) -> dict[str, Any]:
    """Rows of input_ids, attention_mask, labels, position_ids and segments."""
    batch = build_batch(body, settings)
    return {
        "rows": batch.rows,
        "pad_token_id": batch.pad_token_id,
        "pad_token": batch.pad_token,
        "max_length": batch.max_length,
        "padding_side": body.padding_side,
        "pack": body.pack,
    }
