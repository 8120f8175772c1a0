"""Request body size limit as a pure ASGI middleware: 413 before the body is buffered.

Two cases: a Content-Length over the cap is refused before the application runs; a body without
one (chunked) is counted as it streams, and once it passes the cap the application sees a
disconnect and its answer is replaced by the 413. Only the routes that take uploads get the
larger upload cap, chosen by path: a Content-Type is the client's claim and earns nothing.
Example: POST /api/render with "multipart/form-data" and 5 MB -> 413 (max_body_bytes).
A full disk while a body is read (an upload spooled to the temporary folder) is a 507.
PoolBorrowerMiddleware records which request task holds a thread of the server's pool, so a
wait for a template worker can hand it back (app.templating.worker.off_the_thread_pool).

Design concession: a streaming response that has already started cannot be turned into a 413;
no endpoint reads its body after it starts answering, so this only matters in theory.
"""

from __future__ import annotations

import asyncio
import errno
import tempfile
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import StorageError, TooLargeError
from app.settings import Settings
from app.templating.worker import POOL_BORROWER
from app.views.errors import error_response
from app.web_security import header

# The routes that take a dataset upload (UploadFile); every other route gets max_body_bytes.
UPLOAD_PATHS = frozenset({"/api/inspect", "/inspect/runs"})


class BodyLimitMiddleware:
    """Refuse request bodies over max_body_bytes (max_upload_bytes on the upload routes)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, upload_paths: frozenset[str] = UPLOAD_PATHS
    ) -> None:
        self.app = app
        self.settings = settings
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit, setting)
            return
        state = {"received": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not state["over"]:
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
            if state["over"]:
                # The application stops reading; its answer is swapped for the 413 below.
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                if not state["started"]:
                    state["started"] = True
                    await _refuse(scope, receive, send, limit, setting)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or state["started"]:
                raise
            # A full disk while a body is spooled (uploads go to the temporary folder first).
            state["started"] = True
            await _disk_full(scope, receive, send, exc)
            return
        except Exception:
            # The application may let the disconnect escape (Starlette's ClientDisconnect).
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            state["started"] = True
            await _refuse(scope, receive, send, limit, setting)

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        if scope.get("path") in self.upload_paths:
            return self.settings.max_upload_bytes, "max_upload_bytes"
        return self.settings.max_body_bytes, "max_body_bytes"


def _content_length(scope: Scope) -> int | None:
    raw = header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


async def _disk_full(scope: Scope, receive: Receive, send: Send, exc: OSError) -> None:
    error = StorageError(
        f"The disk holding the server's temporary files ({tempfile.gettempdir()}) is full "
        f"({exc.strerror}); free space there, point TMPDIR at a larger disk, or lower the "
        "max_upload_bytes setting.",
        setting="max_upload_bytes",
    )
    response: Any = error_response(Request(scope), error)
    await response(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, setting: str) -> None:
    error = TooLargeError(
        f"The request body is larger than {limit:,} bytes ({setting} setting).", setting=setting
    )
    response: Any = error_response(Request(scope), error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class PoolBorrowerMiddleware:
    """Tell code running in the request's thread which task holds its thread-pool token, so a
    wait for a template worker can hand the token back (app.templating.worker)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limiter = anyio.to_thread.current_default_thread_limiter()
        token = POOL_BORROWER.set((limiter, asyncio.current_task()))
        try:
            await self.app(scope, receive, send)
        finally:
            POOL_BORROWER.reset(token)
