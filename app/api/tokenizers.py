"""GET /api/tokenizers: what can be loaded here, and whether it is available right now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import SettingsDep
from app.tokenizers.registry import list_tokenizers

router = APIRouter(prefix="/api", tags=["tokenizers"])


@router.get("/tokenizers")
async def tokenizers(settings: SettingsDep) -> list[dict[str, Any]]:
    """Bundled tokenizers (with the command that fixes a missing one) and local folders."""
    # Listing may hash files or load local tokenizers: keep it off the event loop.
    return await run_in_threadpool(list_tokenizers, settings)
