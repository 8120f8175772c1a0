"""Items 27 and 35 (connections) against `maskscope serve` itself: a real uvicorn, real sockets.

The token server logs its login URL at start-up; a browser-like client follows it once and then
presents only the cookie. Connection deadlines are set to one second so each check is quick.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.cli.serve import is_loopback, public_bind_problem
from app.settings import Settings
from tests.helpers.errors import assert_error
from tests.helpers.security import REPO, maskscope_serve, render_body

TOKEN = "t0ken-for-the-test"


@pytest.fixture(scope="module")
def token_server():
    env = {
        "MASKSCOPE_TOKEN": TOKEN,
        "MASKSCOPE_REQUEST_HEADER_TIMEOUT_S": "1",
        "MASKSCOPE_IDLE_TIMEOUT_S": "1",
    }
    with maskscope_serve(env) as (base, process):
        yield base, process


@pytest.fixture(scope="module")
def login(token_server):
    """The login URL exactly as `serve` printed it (with this test's port)."""
    _, process = token_server
    seen = ""
    deadline = time.monotonic() + 30
    while "?token=" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    match = re.search(r"(http://\S+/\?token=\S+)", seen)
    assert match, seen
    return match.group(1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/dialects"),
        ("GET", "/openapi.json"),
        ("GET", "/static/css/app.css"),
        ("GET", "/api/jobs"),
        ("POST", "/api/render"),
    ],
)
def test_27_every_route_but_healthz_needs_the_token(token_server, method, path):
    base, _ = token_server
    with httpx.Client(base_url=base) as client:
        assert client.get("/healthz").status_code == 200
        response = client.request(method, path, json=render_body())
        err = assert_error(response, 401, "token setting", "Authorization: Bearer")
        assert err["setting"] == "token" and response.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, headers={"X-Maskscope-Token": "nope"})
        assert_error(wrong, 401, "wrong")


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {TOKEN}"}, {"X-Maskscope-Token": TOKEN}]
)
def test_27_a_script_sends_the_token_in_a_header(token_server, headers):
    base, _ = token_server
    with httpx.Client(base_url=base, headers=headers) as client:
        assert client.get("/api/dialects").status_code == 200
        response = client.post("/api/render", json=render_body())
        assert response.status_code == 200, response.text
        assert response.json()["stats"]["tokens"] > 0


def test_27_the_printed_login_url_sets_a_strict_cookie_and_drops_the_token(token_server, login):
    base, _ = token_server
    assert login.startswith("http://127.0.0.1:") and login.endswith(f"/?token={TOKEN}")
    login = base + login[login.index("/?") :]  # the port the test chose
    with httpx.Client() as browser:
        first = browser.get(login + "&view=x")
        assert first.status_code == 303
        assert first.headers["location"] == "/?view=x"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie  # the cookie holds a digest, not the secret
        page = browser.get(base + "/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        write = browser.post(base + "/api/render", json=render_body(), headers={"Origin": base})
        assert write.status_code == 200, write.text
    with httpx.Client() as stranger:
        assert_error(stranger.get(login.replace(TOKEN, "guess")), 401, "wrong")
        forged = stranger.get(base + "/", headers={"Cookie": "maskscope_token=" + "0" * 64})
        assert_error(forged, 401)


def test_27_a_public_bind_without_a_token_is_refused():
    started = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--host", "0.0.0.0", "--port", "9"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), "MASKSCOPE_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2, started.stderr
    assert "MASKSCOPE_TOKEN" in started.stderr and "--insecure-public" in started.stderr


@pytest.mark.parametrize(
    ("host", "token", "insecure", "refused"),
    [
        ("0.0.0.0", "", False, True),
        ("192.168.1.5", "", False, True),
        ("0.0.0.0", "", True, False),
        ("0.0.0.0", "s", False, False),
        ("127.0.0.1", "", False, False),
        ("::1", "", False, False),
        ("localhost", "", False, False),
    ],
)
def test_27_which_binds_need_a_token(host, token, insecure, refused):
    settings = Settings(host=host, token=token)
    assert (public_bind_problem(settings, insecure) is not None) is refused
    assert is_loopback(host) is (host in ("127.0.0.1", "::1", "localhost"))


def _closed_within(sock: socket.socket, seconds: float, dribble: bytes = b"") -> float | None:
    """Seconds until the server closes `sock` (sending `dribble` every 0.2 s), or None."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if dribble:
                try:
                    sock.sendall(dribble)
                except OSError:
                    return time.monotonic() - started
        except OSError:
            return time.monotonic() - started
    return None


def _connect(base: str) -> socket.socket:
    host, port = base.rsplit("/", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_35_a_connection_that_sends_nothing_is_closed(token_server):
    with _connect(token_server[0]) as sock:
        took = _closed_within(sock, 6)
    assert took is not None and took < 4, took


def test_35_slow_headers_are_cut_off(token_server):
    with _connect(token_server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        took = _closed_within(sock, 6, dribble=b"X-Slow: 1\r\n")
    assert took is not None and took < 4, took


def test_35_an_idle_keep_alive_connection_is_closed_and_a_prompt_one_served(token_server):
    with _connect(token_server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        took = _closed_within(sock, 6)
    assert took is not None and took < 4, took


def test_35_oversized_headers_are_refused(token_server):
    with _connect(token_server[0]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000)
        sock.settimeout(5)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
