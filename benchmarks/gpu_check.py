"""The GPU path, checked in one run on a CUDA machine that has PyTorch and nothing to download.

    python benchmarks/gpu_check.py                      # on the GPU machine (assets fetched)
    python benchmarks/gpu_check.py --device cpu --quick # smoke test of this script on a CPU

(a) runs the test suite's GPU-relevant tests (training loop, NEFTune, job processes, jobs API,
    scores); (b) trains the demo with the real SmolLM2-135M in bf16 autocast with padding-free
    packing (flash-attention varlen kernels when `flash_attn` imports, SDPA otherwise) and checks
    the first steps' losses against the same steps on the CPU in fp32, within TOLERANCE (relative);
    (c) tokens/s and MFU of our loop against transformers' Trainer with neftune_noise_alpha on the
    same device, padded and packed (benchmarks/train_vs_hf.py's arms, at SmolLM2-135M's full size);
    (d) times POST /api/score on an 8k-token conversation against one plain transformers forward
    pass of the same ids (P6), when the server has that route. Prints one table; exit code 1 when
    a check fails.

`--quick` shrinks every part so a CPU finishes in about a minute (a test runs it): a random
2-layer model with SmolLM2's vocabulary stands in for the real one in (c), three steps of batch 2
in (b), a ~300-token conversation in (d), and one fast test file in (a). Figures from a quick run
only say the script works.

Design concession: (b) and (c) run in this process, one after the other, so the device is
measured warm and shared with nothing but this script; MFU counts 6 x parameters x tokens/s
(no attention FLOPs) against the peak of --peak-tflops (default: 989, an H100/H200's dense bf16).
Example: python benchmarks/gpu_check.py --device cpu --quick -> a 4-row table, exit 0
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TOLERANCE = 0.03  # bf16 autocast vs fp32: first-step losses agree to <1%, three steps to <3%
GPU_TESTS = [
    "tests/train/test_loop.py",
    "tests/train/test_neftune.py",
    "tests/train/test_job.py",
    "tests/api/test_jobs.py",
    "tests/score",
]
QUICK_TESTS = ["tests/train/test_summary.py"]


@dataclass
class Row:
    check: str
    figure: str
    bar: str
    ok: bool | None  # None: skipped or informational
    seconds: str = ""  # wall and CPU seconds of the part that made the row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="device peak, bf16")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c,d")
    return parser.parse_args(argv)


def run_tests(quick: bool) -> Row:
    """(a) pytest on the GPU-relevant tests, in a child process (CUDA visible to it)."""
    paths = [p for p in (QUICK_TESTS if quick else GPU_TESTS) if (ROOT / p).exists()]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    last = (result.stdout.strip().splitlines() or ["no output"])[-1]
    return Row(
        f"(a) tests: {' '.join(paths)}",
        f"{last} ({time.perf_counter() - started:.0f} s)",
        "all pass",
        result.returncode == 0,
    )


def attention_kind(device: str) -> str:
    if device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def demo_losses(device: str, quick: bool, attn: str) -> list[float]:
    """The first steps of the demo fine-tune (packed, NEFTune alpha 5), on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from app.settings import Settings
    from app.tokenizers.registry import load_tokenizer
    from app.train.data import load_data, render_examples
    from app.train.distributed import Dist
    from app.train.loop import LoopConfig, train
    from app.train.spec import JobSpec, resolve_model

    settings = Settings.from_env()
    spec = JobSpec(max_length=64 if quick else 256)
    tokenizer = load_tokenizer("smollm2", settings)
    data = load_data({"dataset": "demo"})
    examples = render_examples(data.conversations, spec.render_spec(), tokenizer, settings)
    torch.manual_seed(0)
    if quick:  # a random 2-layer model with SmolLM2's vocabulary: the path, not the figures
        config = LlamaConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
        )
        config._attn_implementation = attn
        model = LlamaForCausalLM(config).to(device)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            resolve_model("smollm2", settings),
            dtype=torch.float32,
            attn_implementation=attn,
            use_safetensors=True,
        ).to(device)
    loop = LoopConfig(
        steps=3,
        batch_size=2 if quick else 8,
        learning_rate=2e-4,
        neftune_alpha=5.0,
        pack=True,
        pad_id=tokenizer.pad_token_id or 0,
    )
    losses: list[float] = []
    dist = Dist(device=torch.device(device))
    train(
        model,
        examples,
        loop,
        dist,
        emit=lambda m: losses.append(m["loss"]),
        should_stop=lambda: False,
    )
    return losses


def check_losses(device: str, quick: bool) -> Row:
    """(b) the device's bf16 packed run against the CPU's fp32 run, step by step."""
    attn = attention_kind(device)
    on_device = demo_losses(device, quick, attn)
    on_cpu = demo_losses("cpu", quick, "sdpa")
    worst = max(abs(a - b) / b for a, b in zip(on_device, on_cpu, strict=True))
    pairs = ", ".join(f"{a:.4f}/{b:.4f}" for a, b in zip(on_device, on_cpu, strict=True))
    precision = "bf16 autocast" if device == "cuda" else "fp32"
    return Row(
        f"(b) demo losses, {device} {precision} {attn} packed vs CPU fp32",
        f"{pairs}; worst {worst:.2%}",
        f"<= {TOLERANCE:.0%} relative",
        worst <= TOLERANCE,
    )


def throughput(device: str, quick: bool, peak_tflops: float) -> list[Row]:
    """(c) train_vs_hf's arms on `device`: tokens/s, and MFU on CUDA."""
    os.environ.setdefault("BENCH_STEPS", "3" if quick else "20")
    if quick:
        os.environ.setdefault("BENCH_LAYERS", "2")
        os.environ.setdefault("BENCH_HIDDEN", "64")
    else:
        os.environ.setdefault("BENCH_FULL", "1")
    import torch
    import train_vs_hf as bench

    from app.settings import Settings
    from app.tokenizers.registry import load_tokenizer

    tokenizer = load_tokenizer("smollm2", Settings.from_env())
    examples = bench.chat_data(tokenizer, n=24 if quick else 96)
    target = torch.device(device)
    params = sum(p.numel() for p in bench.fresh_model(torch.device("cpu")).parameters())
    rates = {
        "HF Trainer padded, neftune_noise_alpha=5": bench.run_hf(examples, tokenizer, target)[1],
        "ours padded, NEFTune": bench.run_ours(examples, target, pack=False, alpha=5.0)[1],
        "ours packed, NEFTune": bench.run_ours(examples, target, pack=True, alpha=5.0)[1],
    }
    anchor_name = "HF Trainer padded, neftune_noise_alpha=5"
    rows = []
    for name, rate in rates.items():
        mfu = f", MFU {6 * params * rate / (peak_tflops * 1e12):.1%}" if device == "cuda" else ""
        ratio = rate / rates[anchor_name]
        wanted = 1.5 if "packed" in name else 1.0
        bar = "anchor" if name == anchor_name else f">= {wanted}x (P4)"
        ok = None if name == anchor_name else ratio >= wanted
        rows.append(
            Row(
                f"(c) {name} ({params / 1e6:.0f}M params)",
                f"{rate:,.0f} tokens/s ({ratio:.2f}x){mfu}",
                bar,
                ok if not quick else None,
            )
        )
    return rows


def score_timing(device: str, quick: bool) -> Row:
    """(d) POST /api/score of a long conversation vs one plain forward pass of the same ids."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings.from_env()
    app = create_app(settings)
    if "/api/score" not in app.openapi()["paths"]:
        return Row("(d) /api/score", "skipped: this server has no /api/score route", "-", None)
    import torch
    from transformers import AutoModelForCausalLM

    from app.train.data import load_demo
    from app.train.spec import resolve_model

    target = 256 if quick else 8_000
    pairs = [c["messages"][-2:] for c in load_demo()["conversations"]]
    messages: list[dict[str, str]] = []
    body = {"tokenizer": "smollm2", "dialect": "chatml"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        ids: list[int] = []
        while len(ids) < target and len(messages) < settings.max_messages:
            messages += pairs[len(messages) // 2 % len(pairs)]
            if len(messages) % 40 == 0 or len(messages) >= 400:
                rendered = client.post("/api/render", json={**body, "messages": messages})
                rendered.raise_for_status()
                ids = rendered.json()["input_ids"]
        scored = {**body, "model": "smollm2", "messages": messages}
        client.post("/api/score", json=scored)  # load the model once
        started = time.perf_counter()
        response = client.post("/api/score", json=scored)
        served = time.perf_counter() - started
    if response.status_code != 200:
        return Row(
            "(d) /api/score", f"HTTP {response.status_code}: {response.text[:120]}", "-", False
        )
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model("smollm2", settings), dtype=torch.float32, use_safetensors=True
    ).to(device)
    tensor = torch.tensor([ids], device=device)
    with torch.no_grad():
        model(input_ids=tensor)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        model(input_ids=tensor)
        if device == "cuda":
            torch.cuda.synchronize()
        plain = time.perf_counter() - started
    ratio = served / plain
    return Row(
        f"(d) /api/score, {len(ids):,} tokens vs one transformers forward pass",
        f"{served * 1000:.0f} ms vs {plain * 1000:.0f} ms ({ratio:.2f}x)",
        "<= 1.3x (P6)",
        None if quick else ratio <= 1.3,
    )


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    width = max(len(r.check) for r in rows)
    figure = max(len(r.figure) for r in rows)
    for r in rows:
        status = {True: "ok", False: "FAIL", None: "-"}[r.ok]
        print(f"{r.check:<{width}}  {r.figure:<{figure}}  {r.bar:<18}  {status:<4}  {r.seconds}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import platform

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu --quick for a smoke test")
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    skip = set(filter(None, args.skip.split(",")))
    parts = {
        "a": lambda: [run_tests(args.quick)],
        "b": lambda: [check_losses(args.device, args.quick)],
        "c": lambda: throughput(args.device, args.quick, args.peak_tflops),
        "d": lambda: [score_timing(args.device, args.quick)],
    }
    rows: list[Row] = []
    for key, part in parts.items():
        if key in skip:
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        made = part()
        made[
            -1
        ].seconds = f"{time.perf_counter() - wall:.0f} s, {time.process_time() - cpu:.0f} s CPU"
        rows += made
    header = (
        f"gpu_check on {args.device} ({name or platform.machine()}), torch {torch.__version__}"
        f"{', quick (smoke test: figures say nothing)' if args.quick else ''}"
    )
    print_table(rows, header)
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
