"""Error responses: JSON for API clients, a swappable HTML fragment for htmx requests.

`install_error_handlers` gives every 4xx of the app (API routes and pages alike) the one shape of
app.errors; validation failures become one sentence naming the field to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import InputError, MaskscopeError
from app.views.templating import templates

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_response(request: Request, exc: MaskscopeError) -> Response:
    if request.headers.get("HX-Request") == "true":
        return templates.TemplateResponse(
            request,
            "_error.html",
            {"error": exc.payload()["error"]},
            status_code=exc.status,
            headers=exc.headers,
        )
    return JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)


def input_error(errors: Sequence[Mapping[str, Any]], body: Any = None) -> InputError:
    """The 422 for a failed pydantic validation, naming the first offending field (or, for a
    body that is not JSON, the line and column where parsing stopped)."""
    if errors and errors[0].get("type") == "json_invalid":
        return InputError(json_message(errors[0], body), field="body")
    message, field = validation_message(errors)
    return InputError(message, field=field)


def json_message(error: Mapping[str, Any], body: Any) -> str:
    """Say where a JSON body stops parsing by line and column, not by character offset.

    Example: ({"loc": ("body", 14), "ctx": {"error": "Expecting value"}}, '{"messages":\n  [')
             -> "The request body is not valid JSON: Expecting value at line 2, column 4. ..."
    """
    loc = error.get("loc", ())
    pos = loc[-1] if loc and isinstance(loc[-1], int) else None
    reason = (error.get("ctx") or {}).get("error", "JSON decode error")
    where = ""
    if pos is not None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        where = f"{'' if reason.endswith(' at') else ' at'} line {line}, column {column}"
    return (
        f"The request body is not valid JSON: {reason}{where}. "
        "Send one JSON object (is the body cut short?)."
    )


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """Turn pydantic's error list into one sentence naming the first offending field.

    Example: [{"loc": ("body", "messages", 0, "role"), "msg": "Input should be ..."}]
             -> ("messages[0].role: Input should be ...", "messages[0].role")
    """
    if not errors:
        return "The request is invalid.", None
    first = errors[0]
    loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    msg = first.get("msg", "invalid value")
    more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    if field:
        return f"{field}: {msg}{more}. Change the '{field}' field.", field
    return f"{msg}{more}.", None


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every 4xx the one shape."""

    async def on_maskscope(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MaskscopeError)
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, input_error(exc.errors(), exc.body))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        err = MaskscopeError(str(exc.detail), headers=dict(exc.headers or {}))
        err.status = exc.status_code
        err.code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, err)

    app.add_exception_handler(MaskscopeError, on_maskscope)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
