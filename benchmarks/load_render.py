"""Load: many concurrent clients on POST /api/render against a real uvicorn on 127.0.0.1.

Bounded by construction: loopback only, a fixed number of clients (default 32) for a fixed time
(default 30 s). Each request renders, tokenizes, masks and lints a ~2k-token conversation
(qwen3 tokenizer, `chatml`; `--dialect custom` sends the same ChatML as a pasted template, so
every request goes through the killable template workers). Reports 0 errors or fails, latency
p50/p99, throughput, the server's peak RSS (server + template workers) and whether memory kept
growing: the peak of the last third of the run may not exceed the peak of the first third by
more than 10% + 32 MiB. Exit status 1 if there were errors or unbounded growth.

With `--bombs N` another N clients post a pasted bomb template (three nested loops of 10,000)
as fast as they are answered (422 timed out, or 429 busy: both expected, neither counted as an
error), and `--streams N` opens N job event streams (SSE) and holds them for the whole run (200
up to the max_event_streams cap, 429 beyond). A probe meanwhile asks GET /healthz every 50 ms
and reports its p50/p99/max; the bar is p99 < 100 ms. The server then runs on a scratch home
(its job database there; the assets linked from the real one).

Usage: .venv/bin/python benchmarks/load_render.py [--clients 32] [--seconds 30] [--dialect chatml]
       [--bombs 200] [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import children, conversation, rss_bytes, uvicorn_server

from app.settings import Settings

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


BOMB = (
    "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


async def bomber(http: httpx.AsyncClient, until: float, seen: dict[int, int]) -> None:
    body = {"messages": conversation(2), "tokenizer": "qwen3", "dialect": "custom"}
    body["template"] = BOMB
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(until - time.monotonic()):  # the run ends, waiting or not
            while True:
                try:
                    response = await http.post("/api/render", json=body)
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    if response.status_code == 429:
                        await asyncio.sleep(0.5)  # a polite client pauses; Retry-After says 5 s
                except httpx.HTTPError:
                    seen[0] = seen.get(0, 0) + 1


async def stream(http: httpx.AsyncClient, job: str, until: float, seen: dict[int, int]) -> None:
    try:
        async with asyncio.timeout(until - time.monotonic()):
            async with http.stream("GET", f"/api/jobs/{job}/events") as response:
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                async for _ in response.aiter_raw():
                    pass  # held open until the run ends
    except TimeoutError:
        pass
    except httpx.HTTPError:
        seen[0] = seen.get(0, 0) + 1


class HealthProbe(threading.Thread):
    """GET /healthz every 50 ms from a thread of its own, on one kept-alive connection, so what it
    measures is the server and not this process's busy event loop."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        host, port = base.rsplit("/", 1)[1].split(":")
        self.address = (host, int(port))
        self.took: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = HTTPConnection(*self.address, timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, HTTPException):
                conn.close()
                conn = HTTPConnection(*self.address, timeout=30)
                ok = False
            self.took.append(time.perf_counter() - started if ok else float("inf"))
            self.stop.wait(0.05)
        conn.close()


# Long: one run holds the render clients, the bombers, the streams and the probe side by side,
# so their figures come from the same seconds.
async def load(
    base: str, body: bytes, args: argparse.Namespace, job: str | None
) -> tuple[list, list, float, dict[str, Any]]:
    latencies: list[float] = []
    errors: list[str] = []
    extra: dict[str, Any] = {"bombs": {}, "streams": {}, "healthz": []}
    total = args.clients + args.bombs + args.streams + 8
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        first = await http.post(
            "/api/render", content=body, headers={"Content-Type": "application/json"}
        )
        first.raise_for_status()
        tokens = first.json()["stats"]["tokens"]
        started = time.monotonic()
        until = started + args.seconds
        tasks = [client(http, body, until, latencies, errors) for _ in range(args.clients)]
        tasks += [bomber(http, until, extra["bombs"]) for _ in range(args.bombs)]
        if job is not None:
            tasks += [stream(http, job, until, extra["streams"]) for _ in range(args.streams)]
        health = HealthProbe(base)
        health.start()
        await asyncio.gather(*tasks)
        health.stop.set()
        health.join()
        extra["healthz"] = health.took
        elapsed = time.monotonic() - started
    print(f"conversation: {len(json.loads(body)['messages'])} messages, {tokens} tokens")
    return latencies, errors, elapsed, extra


def hold_a_job(home: Path) -> str:
    """A job the event streams can follow for the whole run: queued behind a row marked running
    (the runner runs one job at a time, so it starts nothing)."""
    from app.train.spec import JobSpec
    from app.train.store import JobStore

    store = JobStore(home / "maskscope.sqlite3")
    with contextlib.closing(sqlite3.connect(store.path)) as db, db:
        db.execute(
            "INSERT INTO jobs (id, status, spec, total_steps, created_at) "
            "VALUES ('loadholding0', 'running', ?, 1, ?)",
            (json.dumps(JobSpec(steps=1).model_dump()), time.time()),
        )
    job, _ = store.create(JobSpec(steps=1), key=None, max_active=8)
    return job.id


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


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
    parser.add_argument("--bombs", type=int, default=0)
    parser.add_argument("--streams", type=int, default=0)
    args = parser.parse_args()
    body = json.dumps(request_body(args.dialect)).encode()
    with contextlib.ExitStack() as stack:
        env = None
        if args.bombs or args.streams:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="maskscope-load-")))
            (home / "assets").symlink_to(Settings.from_env().assets_dir)
            # Every stream follows one job: the cap in all (max_event_streams) is what binds.
            env = {"MASKSCOPE_HOME": str(home), "MASKSCOPE_MAX_EVENT_STREAMS_PER_JOB": "100000"}
        base, process = stack.enter_context(uvicorn_server(env))
        job = hold_a_job(Path(env["MASKSCOPE_HOME"])) if env and args.streams else None
        memory = MemoryProbe(process.pid)
        memory.start()
        latencies, errors, elapsed, extra = asyncio.run(load(base, body, args, job))
        memory.stop.set()
        memory.join()
        cpu = process_cpu_s(process.pid)
    ms = sorted(x * 1000 for x in latencies)
    first, last, bounded = growth_verdict(memory.samples)
    peak = max(s + w for _, s, w in memory.samples)
    peak_server = max(s for _, s, _ in memory.samples)
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
    if cpu is not None:
        print(
            f"server CPU {cpu[0]:.1f} s (+ {cpu[1]:.1f} s in template workers it replaced) "
            f"over {elapsed:.1f} s of wall clock"
        )
    healthz_ok = True
    if args.bombs or args.streams:
        took = [x * 1000 for x in extra["healthz"]]
        p50, p99 = statistics.median(took), percentile(took, 0.99)
        healthz_ok = p99 < 100
        print(f"bombs x{args.bombs}: answers by status {dict(sorted(extra['bombs'].items()))}")
        print(f"streams x{args.streams}: opened by status {dict(sorted(extra['streams'].items()))}")
        print(
            f"/healthz every 50 ms: {len(took)} probes, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"max {max(took):.1f} ms ({'under' if healthz_ok else 'OVER'} the 100 ms bar)"
        )
    for line in errors[:5]:
        print("error:", line)
    return 0 if not errors and bounded and ms and healthz_ok else 1


def process_cpu_s(pid: int) -> tuple[float, float] | None:
    """(own, reaped children's) user + system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks


if __name__ == "__main__":
    sys.exit(main())
