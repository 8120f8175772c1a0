"""Request body size limit as a pure ASGI middleware: 413 before the body is buffered.

Two cases: a Content-Length over the cap is refused before the application runs; a body without
one (chunked) is counted as it streams, and once it passes the cap the application sees a
disconnect and its answer is replaced by the 413. Multipart uploads get their own, larger cap.

Design concession: a streaming response that has already started cannot be turned into a 413;
no endpoint reads its body after it starts answering, so this only matters in theory.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import TooLargeError
from app.settings import Settings
from app.views.errors import error_response


class BodyLimitMiddleware:
    """Refuse request bodies over max_body_bytes (max_upload_bytes for multipart uploads)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

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
        except Exception:
            # The application may let the disconnect escape (Starlette's ClientDisconnect).
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            state["started"] = True
            await _refuse(scope, receive, send, limit, setting)

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        content_type = _header(scope, b"content-type") or ""
        if content_type.startswith("multipart/form-data"):
            return self.settings.max_upload_bytes, "max_upload_bytes"
        return self.settings.max_body_bytes, "max_body_bytes"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, setting: str) -> None:
    error = TooLargeError(
        f"The request body is larger than {limit:,} bytes ({setting} setting).", setting=setting
    )
    response: Any = error_response(Request(scope), error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
