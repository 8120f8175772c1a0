"""Liveness probe."""

from fastapi import APIRouter

from app import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Report that the server is up."""
    return {"status": "ok", "version": __version__}
