"""Liveness probe."""

from fastapi import APIRouter

from app import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Report that the server is up (on the event loop: it needs no thread of the pool)."""
    return {"status": "ok", "version": __version__}
