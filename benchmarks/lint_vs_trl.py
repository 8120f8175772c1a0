"""P3: preprocess + lint 5,000 conversations vs TRL SFTTrainer's preprocessing.

Ours: `maskscope inspect`'s core (stream the JSONL, render every row with SmolLM2's own chat
template, labels, all per-row lints, the deep lints on probe rows, the processed JSONL written).
Anchor: TRL `SFTTrainer._prepare_dataset` with `assistant_only_loss=True` on the same rows and
tokenizer, its template given `{% generation %}` tags by Maskscope's verified export (TRL needs
them), with TRL's default `dataset_num_proc` (one process). The trainer is built on a 4-row
dataset first, so only the 5,000-row preprocessing is timed; datasets caching is off. Both
produce input_ids + labels; the script checks that they agree row for row.

Both run in this one process, measured in wall-clock and in CPU time (`time.process_time`, all
threads), BENCH_REPS times each (default 3), alternating, and the best run of each side is kept:
this machine's speed drifts by tens of percent within a minute, and the best of interleaved runs
compares the two at the same speed. SmolLM2's tokenizer takes Maskscope's word cache
(app.tokenizers.words: exact ids, repeated words looked up), which runs in the main thread;
tokenizers without one are encoded by Rust on a second core while the previous batch is linted,
so there the wall clock is below the CPU time. TRL runs in one thread. BENCH_WORKERS=n also
times Maskscope with n worker processes (wall clock). The floor printed beside them is the bare
Rust tokenizer encoding the same rendered texts, one call per text; the word cache goes below
it, and its cost alone is printed too. The last two lines are the ratios TRL / Maskscope in CPU
time and in wall-clock time (the time a user waits); the target is >= 2.0.
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.inspect.export import export_generation_template
from app.service.inspect import inspect_stream, prepare
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer

ROWS = 5_000
WORDS = (
    "the",
    "model",
    "learns",
    "to",
    "answer",
    "questions",
    "about",
    "data",
    "tokens",
    "masks",
    "labels",
    "while",
    "trainer",
    "shifts",
    "targets",
    "inside",
    "its",
    "loss",
    "padding",
    "never",
    "counts",
    "every",
    "turn",
    "ends",
    "with",
    "own",
    "marker",
    "naïve",
    "café",
)


def conversations(n: int, seed: int = 0) -> list[dict]:
    """n chats: a system message, then 1-3 user/assistant exchanges of 3-60 words each."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))).capitalize() + "."

    rows = []
    for _ in range(n):
        messages = [{"role": "system", "content": "You answer briefly."}]
        for _ in range(rng.randint(1, 3)):
            messages += [
                {"role": "user", "content": text()},
                {"role": "assistant", "content": text()},
            ]
        rows.append({"messages": messages})
    return rows


def run_maskscope(rows: list[dict], dialect: str, settings: Settings, workers: int = 1):
    data = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    out = io.StringIO()
    options = prepare(settings, tokenizer="smollm2", dialect=dialect)
    start, cpu = time.perf_counter(), time.process_time()
    inspector = inspect_stream(io.BytesIO(data), options, export=out, workers=workers)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    processed = [json.loads(line) for line in out.getvalue().splitlines()]
    return seconds, cpu, inspector.summary, processed


def trl_preprocessor(rows: list[dict], tokenizer, template: str):
    """A function that runs TRL's preprocessing of `rows` once: (wall, cpu, prepared rows)."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    datasets.disable_caching()
    datasets.logging.disable_progress_bar()
    tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tok.chat_template = template
    model = AutoModelForCausalLM.from_pretrained(str(Settings.from_env().assets_dir / "smollm2"))
    tmp = tempfile.mkdtemp()
    args = SFTConfig(
        output_dir=tmp,
        assistant_only_loss=True,
        max_length=None,
        report_to=[],
        padding_free=False,
        use_cpu=True,
        bf16=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        processing_class=tok,
        train_dataset=datasets.Dataset.from_list(rows[:4]),
    )
    dataset = datasets.Dataset.from_list(rows)

    def run():
        start, cpu = time.perf_counter(), time.process_time()
        prepared = trainer._prepare_dataset(dataset, tok, args, False, None, "train")
        return time.perf_counter() - start, time.process_time() - cpu, prepared

    return run


def encode_floor(tokenizer, texts: list[str]) -> tuple[float, float]:
    """(wall, CPU) of the bare Rust tokenizer encoding every rendered text once, one at a
    time as a preprocessing map does: no preprocessing can cost less."""
    backend = tokenizer.backend_tokenizer
    start, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        backend.encode(text, add_special_tokens=False)
    return time.perf_counter() - start, time.process_time() - cpu


def word_cache_floor(tokenizer, texts: list[str]) -> tuple[float, float] | None:
    """(wall, CPU) of Maskscope's word cache (app.tokenizers.words) making the same ids, warm:
    below the Rust call, since repeated words are looked up; None where it does not apply."""
    from app.chat.encoding import tokenizer_info

    words = tokenizer_info(tokenizer).words
    if words is None:
        return None
    words.many(texts)
    start, cpu = time.perf_counter(), time.process_time()
    words.many(texts)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    logging.disable(logging.WARNING)
    settings = Settings.from_env()
    tokenizer = load_tokenizer("smollm2", settings)
    rows = conversations(ROWS)
    exported = export_generation_template(tokenizer, "tokenizer", settings)
    assert exported["verification"]["ok"], exported["notes"]

    run_trl = trl_preprocessor(rows, tokenizer, exported["template"])
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    ours, theirs, floors = [], [], []
    for _ in range(max(1, int(os.environ.get("BENCH_REPS", "3")))):
        ours.append(run_maskscope(rows, "tokenizer", settings))
        theirs.append(run_trl())
        floors.append(encode_floor(tokenizer, texts))
    single, single_cpu = min(r[0] for r in ours), min(r[1] for r in ours)
    trl_seconds, trl_cpu = min(r[0] for r in theirs), min(r[1] for r in theirs)
    summary, processed, prepared = ours[-1][2], ours[-1][3], theirs[-1][2]
    workers = int(os.environ.get("BENCH_WORKERS", "0"))
    parallel = run_maskscope(rows, "tokenizer", settings, workers)[0] if workers > 1 else None

    agree = sum(
        1
        for mine, theirs in zip(processed, prepared, strict=True)
        if mine["input_ids"] == theirs["input_ids"] and mine["labels"] == theirs["labels"]
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()}, python {platform.python_version()}, load average (1 min) "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"rows: {ROWS:,}, tokens: {summary.tokens:,}, trained: {summary.trained_tokens:,}, "
        f"lint codes: {dict(summary.codes)}"
    )
    print(f"rows whose input_ids and labels equal TRL's: {agree:,} / {ROWS:,}")
    print(
        f"runs of each (alternating, best kept): {len(ours)}; Maskscope CPU seconds per run: "
        f"{', '.join(f'{r[1]:.2f}' for r in ours)}; TRL: "
        f"{', '.join(f'{r[1]:.2f}' for r in theirs)}"
    )
    print(
        f"Maskscope inspect, 1 process: {single:7.2f} s wall, {single_cpu:7.2f} s CPU "
        f"({ROWS / single_cpu:,.0f} rows per CPU-second)"
    )
    print(
        f"TRL SFTTrainer preprocessing: {trl_seconds:7.2f} s wall, {trl_cpu:7.2f} s CPU "
        f"({ROWS / trl_cpu:,.0f} rows per CPU-second)"
    )
    if parallel is not None:
        print(
            f"Maskscope inspect, {workers} processes: {parallel:.2f} s wall "
            f"(ratio TRL / Maskscope wall {trl_seconds / parallel:.2f}x)"
        )
    floor_cpu = min(f[1] for f in floors)
    print(
        f"floor, the Rust tokenizer alone on the rendered texts: {min(f[0] for f in floors):7.2f} "
        f"s wall, {floor_cpu:7.2f} s CPU (Maskscope {single_cpu / floor_cpu:.1f}x the floor, "
        f"TRL {trl_cpu / floor_cpu:.1f}x)"
    )
    cached = word_cache_floor(tokenizer, texts)
    if cached is not None:
        print(
            f"the word cache alone on the same texts (warm, the same ids): {cached[0]:7.2f} s "
            f"wall, {cached[1]:7.2f} s CPU ({cached[1] / floor_cpu:.2f}x the Rust tokenizer)"
        )
    print(f"ratio TRL / Maskscope, CPU time: {trl_cpu / single_cpu:.2f}x")
    print(f"ratio TRL / Maskscope, wall clock: {trl_seconds / single:.2f}x")


if __name__ == "__main__":
    main()
