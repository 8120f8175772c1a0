"""P2: POST /api/render over HTTP on loopback vs the same work in-process (p50 ratio, <= 1.5).

Anchor: `render_request` (parse, render, tokenize, mask, lint -- everything /api/render does but
HTTP and JSON) in this process. Ours: the same ~2k-token request to a real uvicorn on 127.0.0.1
through one keep-alive connection, one request at a time, so the ratio shows the HTTP, validation
and serialisation overhead rather than queueing. Both are warmed up first and then interleaved,
REPEATS each; the last line printed is the ratio of the medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serve import conversation, uvicorn_server

from app.service.render import render_and_lint
from app.service.requests import RenderRequest
from app.settings import Settings

REPEATS = 60
WARMUP = 5


def main() -> None:
    settings = Settings.from_env()
    payload = {"messages": conversation(), "tokenizer": "qwen3", "dialect": "chatml"}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}

    def in_process() -> float:
        started = time.perf_counter()
        body = RenderRequest(**payload)
        render_and_lint(body.messages, body.spec(), settings)
        return time.perf_counter() - started

    with uvicorn_server() as (base, _), httpx.Client(base_url=base, timeout=60) as http:

        def over_http() -> float:
            started = time.perf_counter()
            response = http.post("/api/render", content=body, headers=headers)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            return elapsed

        tokens = http.post("/api/render", content=body, headers=headers).json()["stats"]["tokens"]
        for _ in range(WARMUP):
            in_process()
            over_http()
        local, remote = [], []
        for _ in range(REPEATS):
            local.append(in_process())
            remote.append(over_http())
    p50_local, p50_http = statistics.median(local) * 1000, statistics.median(remote) * 1000
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"conversation: {len(payload['messages'])} messages, {tokens} tokens; {REPEATS} runs each"
    )
    print(f"in-process p50 {p50_local:.1f} ms; HTTP on loopback p50 {p50_http:.1f} ms")
    print(f"P2 ratio (HTTP / in-process, target <= 1.5): {p50_http / p50_local:.2f}")


if __name__ == "__main__":
    main()
