"""Load: many concurrent clients on POST /api/render against a real uvicorn on 127.0.0.1.

Bounded by construction: loopback only, a fixed number of clients (default 32) for a fixed time
(default 30 s). Each request renders, tokenizes, masks and lints a ~2k-token conversation
(qwen3 tokenizer, `chatml`; `--dialect custom` sends the same ChatML as a pasted template, so
every request goes through the killable template workers). Reports 0 errors or fails, latency
p50/p99, throughput, the server's peak RSS (server + template workers) and whether memory kept
growing: the peak of the last third of the run may not exceed the peak of the first third by
more than 10% + 32 MiB. Exit status 1 if there were errors or unbounded growth.

Usage: .venv/bin/python benchmarks/load_render.py [--clients 32] [--seconds 30] [--dialect chatml]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import children, conversation, rss_bytes, uvicorn_server

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def request_body(dialect: str) -> dict:
    body = {"messages": conversation(), "tokenizer": "qwen3", "dialect": "chatml"}
    if dialect == "custom":
        body.update(dialect="custom", template=CHATML)
    return body


class MemoryProbe(threading.Thread):
    """Samples the server's RSS plus its template workers' every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            workers = sum(rss_bytes(c) for c in children(self.pid))
            self.samples.append((time.monotonic(), rss_bytes(self.pid), workers))
            self.stop.wait(0.2)


async def client(
    http: httpx.AsyncClient, body: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await http.post(
                "/api/render", content=body, headers={"Content-Type": "application/json"}
            )
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
                continue
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
            continue
        latencies.append(time.perf_counter() - started)


async def load(base: str, body: bytes, clients: int, seconds: float) -> tuple[list, list, float]:
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        first = await http.post(
            "/api/render", content=body, headers={"Content-Type": "application/json"}
        )
        first.raise_for_status()
        tokens = first.json()["stats"]["tokens"]
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(client(http, body, until, latencies, errors) for _ in range(clients))
        )
        elapsed = time.monotonic() - started
    print(f"conversation: {len(json.loads(body)['messages'])} messages, {tokens} tokens")
    return latencies, errors, elapsed


def growth_verdict(samples: list[tuple[float, int, int]]) -> tuple[int, int, bool]:
    totals = [server + workers for _, server, workers in samples]
    third = max(1, len(totals) // 3)
    first, last = max(totals[:third]), max(totals[-third:])
    return first, last, last <= first * 1.10 + 32 * 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--dialect", choices=["chatml", "custom"], default="chatml")
    args = parser.parse_args()
    body = json.dumps(request_body(args.dialect)).encode()
    with uvicorn_server() as (base, process):
        probe = MemoryProbe(process.pid)
        probe.start()
        latencies, errors, elapsed = asyncio.run(load(base, body, args.clients, args.seconds))
        probe.stop.set()
        probe.join()
    ms = sorted(x * 1000 for x in latencies)
    first, last, bounded = growth_verdict(probe.samples)
    peak = max(s + w for _, s, w in probe.samples)
    peak_server = max(s for _, s, _ in probe.samples)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"{args.clients} clients x {args.seconds:.0f} s, dialect={args.dialect}: "
        f"{len(ms)} requests ({len(ms) / elapsed:.1f}/s), {len(errors)} errors"
    )
    if ms:
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"latency p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms")
    print(
        f"peak RSS {peak / 2**20:.0f} MiB (server {peak_server / 2**20:.0f} MiB + workers); "
        f"first third {first / 2**20:.0f} MiB, last third {last / 2**20:.0f} MiB: "
        f"{'bounded' if bounded else 'GROWING'}"
    )
    for line in errors[:5]:
        print("error:", line)
    return 0 if not errors and bounded and ms else 1


if __name__ == "__main__":
    sys.exit(main())
