"""What the browser tests share: where screenshots go, how Chromium starts, a real uvicorn.

Playwright cannot download its own browsers here, so tests launch /usr/bin/chromium (installed by
`make browser`, which `make test` runs first). The server comes from benchmarks/serve.py: one way
to start a real server, shared with the HTTP benchmarks.

Example: with uvicorn_server({"PYTHONUNBUFFERED": "1"}) as (url, process): ...
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

sys.path.insert(0, str(REPO / "benchmarks"))

from serve import uvicorn_server  # noqa: E402

__all__ = ["ARTIFACTS", "CHROMIUM", "CHROMIUM_ARGS", "REPO", "uvicorn_server"]
