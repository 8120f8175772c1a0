"""What a server that people share refuses (foreign Host headers, cross-origin writes) and adds.

Pure ASGI middlewares, so the refusal happens before a body is read or a route is matched, and
each answer has the one error shape of app.errors.

Design concession: the Host check compares names only, not ports: a page on another port of the
same machine is already same-host, and DNS rebinding needs a foreign name, which is what is refused.
Example: allowed_hosts=["localhost"] -> "localhost:8000" passes, "evil.example:8000" gets 400.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import MaskscopeError
from app.settings import Settings
from app.views.errors import error_response


class CrossOriginError(MaskscopeError):
    """A state-changing request that a page of another origin could have sent (403)."""

    status = 403
    code = "cross_origin"


class HostError(MaskscopeError):
    """The Host header names a host the server does not answer for (400)."""

    status = 400
    code = "host_not_allowed"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def host_name(authority: str) -> str:
    """The host part of a Host header or URL authority, lower-cased, without port or brackets.

    Example: "[::1]:8000" -> "::1"; "LocalHost:80" -> "localhost"
    """
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority[1:]
    if authority.count(":") == 1:
        return authority.split(":", 1)[0]
    return authority


def allowed_hosts(settings: Settings) -> set[str]:
    return {host_name(h) for h in (*settings.allowed_hosts, settings.host)}


async def refuse(scope: Scope, receive: Receive, send: Send, error: MaskscopeError) -> None:
    response: Any = error_response(Request(scope), error)
    await response(scope, receive, send)


class HostMiddleware:
    """Answer only requests whose Host header names an allowed host (allowed_hosts setting)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.hosts:
            name = host_name(header(scope, b"host") or "")
            if name not in self.hosts:
                message = (
                    f"The host {name!r} is not served here; add it to the allowed_hosts setting."
                )
                await refuse(scope, receive, send, HostError(message, setting="allowed_hosts"))
                return
        await self.app(scope, receive, send)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The bodies a page of any origin may send without a CORS preflight (which the app never grants).
SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


def same_origin(url: str, host: str) -> bool:
    """Whether an Origin or Referer names the host the request came to.

    Example: ("http://localhost:8000/compare", "localhost:8000") -> True; ("null", ...) -> False
    """
    parsed = urlsplit(url)
    return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host.lower()


def cross_origin_problem(scope: Scope) -> str | None:
    """Why a state-changing request may come from another origin, or None when it cannot."""
    host = header(scope, b"host") or ""
    origin = header(scope, b"origin")
    if origin is not None:
        return None if same_origin(origin, host) else f"the Origin {origin!r} is another site"
    referer = header(scope, b"referer")
    if referer is not None:
        return None if same_origin(referer, host) else "the Referer is another site"
    media_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if media_type in SIMPLE_TYPES:
        return f"a {media_type} request names no Origin or Referer"
    return None


class OriginMiddleware:
    """Refuse writes that a page of another origin could send (CSRF); JSON clients pass."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS:
            problem = cross_origin_problem(scope)
            if problem is not None:
                message = (
                    f"Refused: {problem}. Send it from this server's own pages; a script "
                    "sends application/json, or names this server in an Origin header "
                    "(curl -H 'Origin: http://127.0.0.1:8000' for an upload)."
                )
                await refuse(scope, receive, send, CrossOriginError(message))
                return
        await self.app(scope, receive, send)


# Only the app's own files: no inline script or style, no frames, no plugins, forms post here.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Add the security headers to every response, error answers and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
