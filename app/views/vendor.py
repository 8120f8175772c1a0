"""Serve fetched front-end files (htmx) from the asset cache at /static/vendor/ (web layer).

Design concession: the folder may not exist yet (assets not fetched); instead of failing at start-up
the app answers 404 with the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from app.settings import Settings

MISSING = "front-end files are not fetched: run `maskscope assets fetch htmx`"


class VendorFiles(StaticFiles):
    """StaticFiles over one asset folder that may appear only after the app started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(directory=str(folder), check_dir=False)

    async def check_config(self) -> None:
        # Starlette raises RuntimeError (a 500) for a missing folder; get_response answers 404.
        return None

    async def get_response(self, path: str, scope: Any) -> Any:
        if not self.folder.is_dir():
            raise HTTPException(404, MISSING)
        return await super().get_response(path, scope)


def vendor_files(settings: Settings) -> VendorFiles:
    return VendorFiles(settings.assets_dir / "htmx")
