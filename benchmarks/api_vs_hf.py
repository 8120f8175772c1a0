"""P1e: POST /api/render end to end vs transformers' in-process masked render (<= 1.0).

Ours: a 1000-message (~28k-token) conversation posted to a real uvicorn on 127.0.0.1 with SmolLM2's
ChatML template pasted as `dialect="custom"` (no `{% generation %}` tags: roles come from
attribution, the template renders in the sandboxed worker), lints included, the JSON answer read
and parsed by the client. Anchor: `apply_chat_template(tokenize=True, return_dict=True,
return_assistant_tokens_mask=True)` in this process on the tagged twin of the same template.
Floor: the bare Rust tokenizer encoding the same rendered text (no request could be faster).

Both sides (and the columnar shape, `"format": "columns"`) run interleaved, REPEATS each, after a
warm-up; medians in wall-clock and CPU time (for HTTP: this client plus the server and its
template workers, read from /proc). An HTTP call is timed until the whole answer has arrived;
what the client's JSON parser then costs depends on the client and is printed apart. The answer
sizes are printed in bytes per token. The last line is the ratio of the wall-clock medians,
default shape / anchor. Before it, the server's own work for the same request is timed in this
process, step by step (best of BREAKDOWN_REPS): where the time goes, without HTTP.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from render_vs_hf import TAGGED_CHATML
from serve import children, uvicorn_server

from app.api.responses import encode_json
from app.service import render as service
from app.service.requests import RenderAnswerRequest
from app.settings import Settings
from app.templating.worker import WorkerPool
from app.tokenizers.registry import load_tokenizer

REPEATS = int(os.environ.get("BENCH_REPS", "9"))
WARMUP = 3
BREAKDOWN_REPS = 7
MESSAGES = 1000
WORDS = ("masking", "padding", "labels", "tokens", "loss", "turns", "template", "why", "because")


def conversation(n: int = MESSAGES) -> list[dict[str, str]]:
    """A system prompt and alternating user/assistant turns, ~28 tokens per message."""
    messages = [{"role": "system", "content": "You are a careful assistant for ML engineers."}]
    for i in range(n - 1):
        words = [WORDS[(i * k + k) % len(WORDS)] for k in range(1, 4)]
        text = ", ".join(f"{w} {i}.{j}" for j, w in enumerate(words))
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its live children (the template workers)."""
    total = 0.0
    for p in (pid, *children(pid)):
        try:
            with open(f"/proc/{p}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def timed(fn: Callable[[], object], pid: int | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process plus the server's, if any)."""
    server = cpu_seconds(pid) if pid else 0.0
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu + (cpu_seconds(pid) - server if pid else 0.0)


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def best_ms(fn: Callable[[], object], reps: int = BREAKDOWN_REPS) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def server_breakdown(body: bytes, settings: Settings) -> str:
    """The server's steps for this request body in this process, best of BREAKDOWN_REPS each:
    parsing it, rendering (and the template worker's round trip within), linting, writing the
    answer in both shapes. A checkout whose service has no bytes writer has the dicts written."""
    request = RenderAnswerRequest.model_validate_json(body)
    spec = request.spec()
    waits: list[float] = []
    run = WorkerPool.run

    def timed_run(pool: WorkerPool, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return run(pool, *args, **kwargs)
        finally:
            waits.append(time.perf_counter() - start)

    for _ in range(WARMUP):  # the workers' caches (compiled template, tokenizer, words)
        service.render_messages(request.messages, spec, settings, columns=True)
    WorkerPool.run = timed_run  # type: ignore[method-assign]
    try:
        render_ms = best_ms(
            lambda: service.render_messages(request.messages, spec, settings, columns=True)
        )
    finally:
        WorkerPool.run = run  # type: ignore[method-assign]
    rendered = service.render_messages(request.messages, spec, settings, columns=True)
    lints = service.lint_rendered(rendered, settings)
    write = getattr(service, "rendering_json_bytes", None)
    # Each answer is timed on a rendering of its own: its columns remember what they worked out.
    fresh = [
        service.render_messages(request.messages, spec, settings, columns=True).rendering
        for _ in range(2 * BREAKDOWN_REPS)
    ]

    def default() -> bytes | None:
        rendering = fresh.pop()
        written = write(rendering, lints) if write else None
        return written or encode_json(service.rendering_json(rendering, lints))

    def columnar() -> bytes:
        return encode_json(service.rendering_columns_json(fresh.pop(), lints))

    return (
        f"server steps in-process (best of {BREAKDOWN_REPS}): parse + validate "
        f"{best_ms(lambda: RenderAnswerRequest.model_validate_json(body)):.1f} ms, render "
        f"{render_ms:.1f} ms (template worker round trip {min(waits) * 1000:.1f} ms), lints "
        f"{best_ms(lambda: service.lint_rendered(rendered, settings)):.1f} ms, default answer "
        f"{best_ms(default):.1f} ms, columnar answer {best_ms(columnar):.1f} ms"
    )


def main() -> None:
    settings = Settings.from_env()
    tok = load_tokenizer("smollm2", settings)
    messages = conversation()
    template = str(tok.chat_template)
    payload = {"messages": messages, "tokenizer": "smollm2", "dialect": "custom"}
    payload["template"] = template
    body = json.dumps(payload).encode()
    columns_body = json.dumps({**payload, "format": "columns"}).encode()
    headers = {"Content-Type": "application/json"}
    text = tok.apply_chat_template(messages, tokenize=False)
    backend = tok.backend_tokenizer

    def anchor() -> object:
        return tok.apply_chat_template(
            messages,
            chat_template=TAGGED_CHATML,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )

    def floor() -> object:
        return backend.encode(text, add_special_tokens=False)

    breakdown = server_breakdown(body, settings)
    with uvicorn_server() as (base, process), httpx.Client(base_url=base, timeout=120) as http:

        def post(content: bytes) -> Callable[[], bytes]:
            def call() -> bytes:
                response = http.post("/api/render", content=content, headers=headers)
                response.raise_for_status()
                sizes[content is columns_body] = len(response.content)
                return response.content

            return call

        sizes: dict[bool, int] = {}
        default, columns = post(body), post(columns_body)
        answer = default()
        ours = json.loads(answer)
        ref = anchor()
        assert ours["input_ids"] == list(ref["input_ids"]), "ids differ from apply_chat_template"
        trained = [int(t["trained"]) for t in ours["tokens"]]  # type: ignore[index, union-attr]
        assert trained == list(ref["assistant_masks"]), "masks differ from transformers'"
        try:
            has_columns = "ids" in json.loads(columns())
        except httpx.HTTPStatusError:  # a checkout without the columnar shape
            has_columns = False
        for _ in range(WARMUP):
            default(), anchor(), floor()
            if has_columns:
                columns()
        runs: dict[str, list[tuple[float, float]]] = {"http": [], "cols": [], "hf": [], "floor": []}
        runs["parse"] = []
        for _ in range(REPEATS):
            runs["parse"].append(timed(lambda: json.loads(answer)))
            runs["http"].append(timed(default, process.pid))
            if has_columns:
                runs["cols"].append(timed(columns, process.pid))
            runs["hf"].append(timed(anchor))
            runs["floor"].append(timed(floor))
    tokens = len(ours["input_ids"])  # type: ignore[arg-type]
    (http_w, http_c), (hf_w, hf_c), (fl_w, fl_c) = (
        medians(runs[k]) for k in ("http", "hf", "floor")
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average (1 min) {os.getloadavg()[0]:.1f}"
    )
    print(f"conversation: {len(messages)} messages, {tokens:,} tokens; {REPEATS} runs each")
    print(breakdown)
    print(f"floor, bare tokenizer encode: {fl_w * 1000:.1f} ms wall, {fl_c * 1000:.1f} ms CPU")
    print(
        f"transformers apply_chat_template + assistant mask: {hf_w * 1000:.1f} ms wall, "
        f"{hf_c * 1000:.1f} ms CPU ({hf_w / fl_w:.1f}x the floor)"
    )
    if has_columns:
        col_w, col_c = medians(runs["cols"])
        print(
            f'POST /api/render "format": "columns": {col_w * 1000:.1f} ms wall, '
            f"{col_c * 1000:.1f} ms CPU ({col_w / fl_w:.1f}x the floor), "
            f"{sizes[True] / tokens:.1f} bytes/token; ratio {col_w / hf_w:.2f}"
        )
    print(
        f"POST /api/render, default shape: {http_w * 1000:.1f} ms wall, {http_c * 1000:.1f} ms "
        f"CPU ({http_w / fl_w:.1f}x the floor), {sizes[False] / tokens:.1f} bytes/token"
    )
    parse_w, _ = medians(runs["parse"])
    print(f"(json.loads of the default answer costs the client {parse_w * 1000:.1f} ms)")
    print(f"CPU ratio (client + server + workers / transformers): {http_c / hf_c:.2f}")
    print(f"P1e ratio (HTTP end to end / transformers in-process, <= 1.0): {http_w / hf_w:.2f}")


if __name__ == "__main__":
    main()
