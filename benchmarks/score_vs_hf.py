"""P6: POST /api/score of an ~8k-token conversation with SmolLM2-135M vs one plain transformers
forward pass of the same ids (ratio of medians, target <= 1.3).

Anchor: `AutoModelForCausalLM.from_pretrained(smollm2)(ids)` in this process, fp32, the ids the
server renders (nothing else: no softmax, no JSON). Ours: the whole request to a real uvicorn on
127.0.0.1 (render, lints, forward pass, log-softmax and entropy per token, the JSON of 8k tokens),
the model loaded by one short warm-up request first. The two are interleaved, RUNS each; wall
clock is timed here, CPU time read from /proc for the server process and from
`time.process_time` for the anchor. The last line printed is the wall-clock ratio of the medians.

Usage: python benchmarks/score_vs_hf.py [--runs 5] [--turns 232]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx
import torch
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serve import conversation, uvicorn_server

from app.settings import Settings

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--turns", type=int, default=232, help="~8k tokens at 232")
    args = parser.parse_args()
    settings = Settings.from_env()
    payload = {
        "messages": conversation(turns=args.turns, words_per_turn=18),
        "tokenizer": "smollm2",
        "dialect": "tokenizer",
        "model": "smollm2",
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    model = AutoModelForCausalLM.from_pretrained(
        settings.assets_dir / "smollm2", dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    with uvicorn_server() as (base, process), httpx.Client(base_url=base, timeout=1800) as http:

        def ours() -> tuple[float, float]:
            cpu, started = cpu_seconds(process.pid), time.perf_counter()
            response = http.post("/api/score", content=body, headers=headers)
            wall = time.perf_counter() - started
            response.raise_for_status()
            return wall, cpu_seconds(process.pid) - cpu

        def anchor(ids: torch.Tensor) -> tuple[float, float]:
            cpu, started = time.process_time(), time.perf_counter()
            with torch.no_grad():
                model(ids)
            return time.perf_counter() - started, time.process_time() - cpu

        # Warm-up on a short conversation (loads the model, warms the code paths) rather than a
        # whole extra 8k pass on each side; the ids come from /api/render, the same render.
        short = {**payload, "messages": payload["messages"][:5]}
        http.post("/api/score", json=short).raise_for_status()
        render = {k: v for k, v in payload.items() if k != "model"}
        rendered = http.post("/api/render", json=render)
        rendered.raise_for_status()
        ids = torch.tensor([rendered.json()["input_ids"]])
        anchor(ids[:, :256])
        mine, theirs = [], []
        for run in range(args.runs):
            theirs.append(anchor(ids))
            mine.append(ours())
            (hf_wall, hf_cpu), (our_wall, our_cpu) = theirs[-1], mine[-1]
            print(
                f"run {run + 1}: forward {hf_wall:.2f} s wall {hf_cpu:.2f} s CPU; "
                f"/api/score {our_wall:.2f} s wall {our_cpu:.2f} s CPU",
                flush=True,
            )
    wall_ours = statistics.median(w for w, _ in mine)
    wall_hf = statistics.median(w for w, _ in theirs)
    cpu_ours = statistics.median(c for _, c in mine)
    cpu_hf = statistics.median(c for _, c in theirs)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"conversation: {len(payload['messages'])} messages, {ids.shape[1]} tokens; "
        f"{args.runs} runs each"
    )
    print(f"transformers forward: median {wall_hf:.2f} s wall, {cpu_hf:.2f} s CPU")
    print(f"POST /api/score:      median {wall_ours:.2f} s wall, {cpu_ours:.2f} s CPU")
    print(f"CPU ratio (/api/score / forward): {cpu_ours / cpu_hf:.2f}")
    print(f"P6 ratio (/api/score / forward, wall, target <= 1.3): {wall_ours / wall_hf:.2f}")


if __name__ == "__main__":
    main()
