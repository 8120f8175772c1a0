"""One error shape for the whole product.

The exception classes are plain Python so the core (chat, dialects, lint, inspect, train) can raise
them without importing FastAPI; `app.views.errors.install_error_handlers` (web layer) turns them
into

    {"error": {"status": 422, "code": "invalid_input", "message": "...",
               "field": "...", "setting": null}}

for JSON clients, and into the `_error.html` fragment for htmx requests (HX-Request header).
"""

from __future__ import annotations

from typing import Any


class MaskscopeError(Exception):
    """Base error: a human sentence that names the field or setting to change."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        setting: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.setting = setting
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        return {
            "error": {
                "status": self.status,
                "code": self.code,
                "message": self.message,
                "field": self.field,
                "setting": self.setting,
            }
        }


class InputError(MaskscopeError):
    """The request is well-formed JSON but a value is wrong (422)."""

    status = 422
    code = "invalid_input"


class LimitError(InputError):
    """A value exceeds a configured limit (422); `setting` names the limit."""

    code = "limit_exceeded"


class TemplateError(InputError):
    """A chat template failed: syntax error, raise_exception, sandbox violation, timeout."""

    code = "template_error"


class TooLargeError(MaskscopeError):
    """The request body or an upload is over its byte cap (413)."""

    status = 413
    code = "too_large"


class NotFoundError(MaskscopeError):
    status = 404
    code = "not_found"


class ConflictError(MaskscopeError):
    status = 409
    code = "conflict"


class BusyError(MaskscopeError):
    """Too many queued jobs (429, with Retry-After)."""

    status = 429
    code = "busy"


class StorageError(MaskscopeError):
    """The disk, or a quota on it, has no room for what was sent (507)."""

    status = 507
    code = "insufficient_storage"


class UnavailableError(MaskscopeError):
    """Something needed is not available here (an asset not fetched, the Hub offline): 424."""

    status = 424
    code = "unavailable"
