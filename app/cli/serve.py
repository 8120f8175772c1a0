"""`maskscope serve`: run the web app under uvicorn, refusing an unprotected public bind.

Without the token setting the server answers whoever reaches it, so binding to an address other
machines can reach needs either a token or `--insecure-public` (e.g. in a container published only
on the host's 127.0.0.1). With a token, the login URL is printed at start-up, as Jupyter does.
Connections are bounded in time: headers must arrive within request_header_timeout_s (uvicorn
closes idle keep-alive connections, but not a connection that never finishes its headers), idle
keep-alive connections close after idle_timeout_s, and h11 refuses headers over 64 KiB.

Example: maskscope serve --host 0.0.0.0 -> refused (exit 2) unless MASKSCOPE_TOKEN is set

Design concession: the header deadline is a timer per connection rather than a limit in the
parser, so a client may hold a connection open for up to request_header_timeout_s for free.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import Settings
from app.web_security import login_url

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        """Close the connection unless a new request's headers have arrived by the deadline."""
        if self._header_timer is not None:
            self._header_timer.cancel()
        waiting_since = self.cycle
        self._header_timer = self.loop.call_later(
            self.header_timeout_s, self._headers_late, waiting_since
        )

    def _headers_late(self, waiting_since: Any) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if self.cycle is waiting_since and idle and not self.transport.is_closing():
            self.transport.close()


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`.

    Example: "127.0.0.1" -> True; "::1" -> True; "0.0.0.0" -> False
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_bind_problem(settings: Settings, insecure_public: bool) -> str | None:
    """Why the server must not start with these settings, or None."""
    if settings.token or insecure_public or is_loopback(settings.host):
        return None
    return (
        f"Refusing to serve on {settings.host} without a token: anyone who can reach it could run "
        "templates and fine-tunes. Set MASKSCOPE_TOKEN (token setting), bind to 127.0.0.1, or "
        "pass --insecure-public if something else guards the address (e.g. a container published "
        "only on the host's 127.0.0.1)."
    )


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    """The server for `settings` (app.main builds the app from the same MASKSCOPE_* variables),
    with the connection limits of this module."""
    protocol = type(
        "ConfiguredH11Protocol",
        (TimedH11Protocol,),
        {"header_timeout_s": float(settings.request_header_timeout_s)},
    )
    return uvicorn.Config(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        http=protocol,
        timeout_keep_alive=settings.idle_timeout_s,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="info",
    )


def serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    # app.main reads its settings from the environment, like every other process of the app.
    os.environ.update({f"MASKSCOPE_{k.upper()}": str(v) for k, v in overrides.items()})
    settings = Settings.from_env()
    problem = public_bind_problem(settings, args.insecure_public)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    if settings.token:
        shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        url = login_url(f"http://{shown}:{settings.port}", settings.token)
        log.info("Maskscope needs its token. Open this URL once to log in:\n    %s", url)
    uvicorn.Server(uvicorn_config(settings)).run()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="Run the web app.")
    parser.add_argument("--host", default=None, help="Address to bind (host setting).")
    parser.add_argument("--port", type=int, default=None, help="Port (port setting).")
    parser.add_argument(
        "--insecure-public",
        action="store_true",
        help="Allow a non-loopback host without the token setting.",
    )
    parser.set_defaults(func=serve)
