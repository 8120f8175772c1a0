"""What a server that people share refuses (foreign Host headers, cross-origin writes) and adds.

Pure ASGI middlewares, so the refusal happens before a body is read or a route is matched, and
each answer has the one error shape of app.errors.

Design concession: the Host check compares names only, not ports: a page on another port of the
same machine is already same-host, and DNS rebinding needs a foreign name, which is what is refused.
Example: allowed_hosts=["localhost"] -> "localhost:8000" passes, "evil.example:8000" gets 400.
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

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


class AuthError(MaskscopeError):
    """The server has a token (token setting) and the request did not present it (401)."""

    status = 401
    code = "unauthorized"


TOKEN_COOKIE = "maskscope_token"
# Reachable without the token: a health probe (container orchestrators, load balancers).
PUBLIC_PATHS = frozenset({"/healthz"})


def token_cookie_value(token: str) -> str:
    """What the login cookie holds: a digest of the token, so the cookie is not the token itself.

    Example: token_cookie_value("s3cret") -> "a1b4..." (64 hex digits, the same for every login)
    """
    return hmac.new(token.encode(), b"maskscope login cookie", hashlib.sha256).hexdigest()


def login_url(base: str, token: str) -> str:
    """The login link printed at start-up.

    Example: ("http://127.0.0.1:8000", "t0k") -> "http://127.0.0.1:8000/?token=t0k"
    """
    return f"{base.rstrip('/')}/?{urlencode({'token': token})}"


def presented_token(scope: Scope) -> tuple[str | None, str | None]:
    """(token from a header, digest from the login cookie) as the request presents them."""
    bearer = header(scope, b"authorization") or ""
    token = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
    token = token or header(scope, b"x-maskscope-token")
    cookie = SimpleCookie()
    try:
        cookie.load(header(scope, b"cookie") or "")
    except Exception:  # a malformed Cookie header presents nothing
        return token, None
    morsel = cookie.get(TOKEN_COOKIE)
    return token, morsel.value if morsel is not None else None


class TokenMiddleware:
    """With the token setting: every route but /healthz needs the token, as Jupyter does it.

    A script sends `Authorization: Bearer <token>` (or `X-Maskscope-Token`); a browser opens the
    login URL `/?token=<token>` once, is redirected to the same page without it and from then on
    presents an HttpOnly, SameSite=Strict cookie that another site's page never sends.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.token = settings.token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for key, value in query if key == "token"]
        if given and scope["method"] in ("GET", "HEAD") and self._matches(given[-1]):
            await self._log_in(scope, receive, send, [(k, v) for k, v in query if k != "token"])
            return
        token, cookie = presented_token(scope)
        if (token is not None and self._matches(token)) or (
            cookie is not None and hmac.compare_digest(cookie, token_cookie_value(self.token))
        ):
            await self.app(scope, receive, send)
            return
        why = "the token given is wrong" if token or given else "it needs the server's token"
        message = (
            f"Refused: {why} (token setting). Open the login URL printed when the server "
            "started (/?token=…), or send 'Authorization: Bearer <token>'."
        )
        error = AuthError(message, setting="token", headers={"WWW-Authenticate": "Bearer"})
        await refuse(scope, receive, send, error)

    def _matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    async def _log_in(
        self, scope: Scope, receive: Receive, send: Send, rest: list[tuple[str, str]]
    ) -> None:
        """Set the login cookie and send the browser to the same page without the token."""
        location = scope.get("path", "/") + (f"?{urlencode(rest)}" if rest else "")
        cookie = (
            f"{TOKEN_COOKIE}={token_cookie_value(self.token)}; Path=/; HttpOnly; SameSite=Strict"
        )
        if scope.get("scheme") == "https":
            cookie += "; Secure"
        headers = [
            (b"location", location.encode()),
            (b"set-cookie", cookie.encode()),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


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
