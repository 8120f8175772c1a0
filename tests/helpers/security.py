"""Request bodies and an app with tight limits, shared by the security tests.

The tight limits make every limit quick and cheap to hit. Test modules import the fixtures by
function name (`from tests.helpers.security import tight_fixture`; a conftest.py in
tests/security would shadow the shared one in tests/).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]

TIGHT = {
    "render_timeout_ms": 1_000,
    "max_template_bytes": 4_096,
    "max_render_chars": 200_000,
    "max_body_bytes": 300_000,
    "max_messages": 50,
    "max_tokens": 2_000,
    "max_range": 10_000,
}


@pytest.fixture(scope="session", name="tight_settings")
def tight_settings_fixture() -> Settings:
    return Settings.from_env(**TIGHT)


@pytest.fixture(scope="session", name="tight")
def tight_fixture(tight_settings: Settings):
    with TestClient(create_app(tight_settings), headers={"Origin": "http://testserver"}) as client:
        yield client


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
]


def render_body(**overrides) -> dict:
    body = {"messages": MESSAGES, "tokenizer": "qwen3", "dialect": "chatml"}
    body.update(overrides)
    return body


def custom(template: str, **overrides) -> dict:
    return render_body(dialect="custom", template=template, **overrides)


# Three nested loops of 10,000: hours of work, each step within every per-operation limit.
BOMB = (
    "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


@contextlib.contextmanager
def maskscope_serve(env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`maskscope serve` itself (its uvicorn config, its checks) on a free loopback port.

    Yields (base URL, process); the process's stderr (the start-up log) is a pipe."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), *args],
        cwd=REPO,
        env={**os.environ, "MASKSCOPE_ALLOW_HUB": "false", **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("maskscope serve did not start")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def children_of(pid: int) -> list[int]:
    """Child processes of `pid`, whichever of its threads started them."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            children += [
                int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            ]
        except OSError:
            continue
    return children
