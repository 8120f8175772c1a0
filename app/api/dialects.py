"""GET /api/dialects: every chat format the engine knows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.dialects.registry import list_dialects

router = APIRouter(prefix="/api", tags=["dialects"])


@router.get("/dialects")
def get_dialects() -> list[dict[str, Any]]:
    """Name, title, one-line description and special tokens of each dialect."""
    return list_dialects()
