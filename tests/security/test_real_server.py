"""Items 1, 5 and 8 against a real uvicorn on 127.0.0.1: a real socket, real chunked bodies."""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.security import BOMB, MESSAGES, custom

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from serve import uvicorn_server

LIMIT_MS = 1_000
BODY_CAP = 100_000


@pytest.fixture(scope="module")
def server():
    env = {
        "MASKSCOPE_RENDER_TIMEOUT_MS": str(LIMIT_MS),
        "MASKSCOPE_MAX_BODY_BYTES": str(BODY_CAP),
        "MASKSCOPE_ALLOW_HUB": "false",
    }
    with uvicorn_server(env) as (base, process):
        yield base.rsplit(":", 1)[1], process


def _post(port: str, body: bytes, chunked: bool = False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        try:
            if chunked:
                pieces = (body[i : i + 8192] for i in range(0, len(body), 8192))
                conn.request(
                    "POST", "/api/render", body=pieces, headers=headers, encode_chunked=True
                )
            else:
                conn.request("POST", "/api/render", body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server answered early (413) and closed while the body was still being sent:
            # its answer is already in the socket.
            pass
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _ok(port: str) -> None:
    status, body = _post(
        port, json.dumps(custom("{% for m in messages %}{{ m.content }}|{% endfor %}")).encode()
    )
    assert status == 200, body
    assert body["text"] == "".join(m["content"] + "|" for m in MESSAGES)


def test_injection_is_refused_and_the_server_stays_up(server):
    port, process = server
    status, body = _post(
        port, json.dumps(custom("{{ cycler.__init__.__globals__.os.popen('id').read() }}")).encode()
    )
    assert status == 422 and body["error"]["code"] == "template_error"
    _ok(port)
    assert process.poll() is None


def test_bomb_is_stopped_within_the_limit_and_the_next_request_succeeds(server):
    port, process = server
    started = time.monotonic()
    status, body = _post(port, json.dumps(custom(BOMB)).encode())
    elapsed = time.monotonic() - started
    assert status == 422 and "render timed out" in body["error"]["message"]
    assert LIMIT_MS / 1000 <= elapsed < LIMIT_MS / 1000 + 1.0
    started = time.monotonic()
    _ok(port)
    assert time.monotonic() - started < 1.0
    assert process.poll() is None


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_gets_413(server, chunked):
    port, _ = server
    big = json.dumps(
        custom("{{ 1 }}", messages=[{"role": "user", "content": "x" * (2 * BODY_CAP)}])
    ).encode()
    status, body = _post(port, big, chunked=chunked)
    assert status == 413
    assert body["error"]["setting"] == "max_body_bytes"
    _ok(port)
