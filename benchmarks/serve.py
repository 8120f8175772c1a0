"""A real uvicorn server on 127.0.0.1 for the HTTP benchmarks, and a ~2k-token conversation.

Not a benchmark itself (`make bench` runs it harmlessly: it only prints what it would serve).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPICS = [
    "masking",
    "padding",
    "packing",
    "templates",
    "tokenizers",
    "labels",
    "NEFTune",
    "loss",
    "attention",
    "datasets",
]


def conversation(turns: int = 16, words_per_turn: int = 72) -> list[dict[str, str]]:
    """A system prompt and alternating user/assistant turns; ~2k tokens at the defaults."""
    messages = [{"role": "system", "content": "You are a careful assistant for ML engineers."}]
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        topic = TOPICS[i % len(TOPICS)]
        words = [
            f"{topic}" if j % 7 == 0 else ("why" if role == "user" else "because")
            for j in range(words_per_turn // 5)
        ]
        text = " ".join(f"{w} step {i}.{j}, then" for j, w in enumerate(words))
        messages.append({"role": role, "content": text})
    return messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(
    env: dict[str, str] | None = None, start_timeout_s: float = 120.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start `uvicorn app.main:app` on a free loopback port; yield (base URL, process)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


if __name__ == "__main__":
    print(f"helper module; a conversation of {len(conversation())} messages")
