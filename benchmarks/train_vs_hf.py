"""P4: fine-tune tokens/s against transformers' Trainer with neftune_noise_alpha.

Same model (SmolLM2's architecture and real 49k vocabulary, scaled down in depth and width so a
CPU finishes: set BENCH_LAYERS / BENCH_HIDDEN, or BENCH_FULL=1 for SmolLM2-135M as is), same
variable-length chat data (demo questions stitched into 1-8 turn conversations, rendered with
SmolLM2's tokenizer, assistant-only labels, cut at 256 tokens), same batch (4) and optimizer
(AdamW, constant lr). Throughput = real (non-padding) tokens over steps 2..N (the first step's
allocations are not counted) divided by wall seconds and by the process's CPU seconds. Runs are
interleaved; on a CPU shared with other work the ratios use each arm's best wall-clock run of
REPEATS (the run least slowed by others, as timeit takes the minimum); medians are printed too.

Arms: the Trainer padded to the longest in each batch with neftune_noise_alpha=5 (the anchor);
ours padded with NEFTune (paper scaling); ours padded without NEFTune (overhead); ours packed
padding-free with NEFTune. The last lines printed are the ratios.
On a CUDA machine it also prints MFU = 6 * N * tokens/s / peak (BENCH_PEAK_TFLOPS, default 989).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    DataCollatorForSeq2Seq,
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer
from app.train.data import load_demo
from app.train.distributed import setup
from app.train.loop import LoopConfig, train

STEPS = int(os.environ.get("BENCH_STEPS", "6"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
BATCH, MAX_LENGTH, ALPHA, LR = 4, 256, 5.0, 1e-4
SMOLLM2 = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
)


def model_config() -> LlamaConfig:
    if os.environ.get("BENCH_FULL") == "1":
        return LlamaConfig(**SMOLLM2)
    hidden = int(os.environ.get("BENCH_HIDDEN", "256"))
    return LlamaConfig(
        **{
            **SMOLLM2,
            "hidden_size": hidden,
            "intermediate_size": hidden * 8 // 3,
            "num_hidden_layers": int(os.environ.get("BENCH_LAYERS", "6")),
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
        }
    )


def fresh_model(device: torch.device) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = model_config()
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).to(device)
    return model.to(torch.bfloat16) if device.type == "cuda" else model


def chat_data(tokenizer, n: int = 96) -> list[dict[str, list[int]]]:
    """Variable-length conversations: 1-8 question/answer turns from the demo set."""
    pairs = [
        (c["messages"][-2]["content"], c["messages"][-1]["content"])
        for c in load_demo()["conversations"]
    ]
    rng = random.Random(0)
    examples = []
    for _ in range(n):
        turns = rng.sample(pairs, rng.randint(1, 8))
        messages = [
            Message(role, text) for q, a in turns for role, text in (("user", q), ("assistant", a))
        ]
        r = render(messages, get_dialect("chatml"), tokenizer, RenderSpec(max_length=MAX_LENGTH))
        examples.append({"input_ids": r.input_ids, "labels": r.labels})
    return examples


def clocks() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds); on CUDA the CPU clock is meaningless."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        now = time.perf_counter()
        return now, now
    return time.process_time(), time.perf_counter()


def rates(
    tokens: int, first: tuple[float, float], last: tuple[float, float]
) -> tuple[float, float]:
    return tokens / (last[0] - first[0]), tokens / (last[1] - first[1])


def run_ours(examples, device, *, pack: bool, alpha: float) -> tuple[float, float]:
    model = fresh_model(device)
    stamps: list[tuple[tuple[float, float], int]] = []

    def emit(metric):
        stamps.append((clocks(), metric["tokens"]))

    config = LoopConfig(
        steps=STEPS,
        batch_size=BATCH,
        learning_rate=LR,
        neftune_alpha=alpha,
        pack=pack,
        pad_id=2,
        seed=0,
    )
    train(model, examples, config, setup({}), emit=emit, should_stop=lambda: False)
    return rates(sum(t for _, t in stamps[1:]), stamps[0][0], stamps[-1][0])


class Stamps(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(clocks())


class CountingCollator(DataCollatorForSeq2Seq):
    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        self.counts.append(int(batch["attention_mask"].sum()))
        return batch


def run_hf(examples, tokenizer, device) -> tuple[float, float]:
    model = fresh_model(device)
    collator = CountingCollator(tokenizer, padding=True, label_pad_token_id=-100)
    collator.counts = []
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=STEPS,
            per_device_train_batch_size=BATCH,
            learning_rate=LR,
            lr_scheduler_type="constant",
            neftune_noise_alpha=ALPHA,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            seed=0,
            dataloader_num_workers=0,
            use_cpu=device.type != "cuda",
            bf16=device.type == "cuda",
            remove_unused_columns=False,
            disable_tqdm=True,
        )
        Trainer(
            model=model,
            args=args,
            train_dataset=examples,
            data_collator=collator,
            callbacks=[stamps],
        ).train()
    # the dataloader may prefetch one batch beyond the last step
    return rates(sum(collator.counts[1:STEPS]), stamps.times[0], stamps.times[-1])


def main() -> None:
    hf_logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    settings = Settings.from_env()
    tokenizer = load_tokenizer("smollm2", settings)
    device = setup({}).device
    examples = chat_data(tokenizer)
    lengths = [len(e["input_ids"]) for e in examples]
    config = model_config()
    params = sum(p.numel() for p in fresh_model(torch.device("cpu")).parameters())
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"device {device}, torch {torch.__version__}"
    )
    print(
        f"model: SmolLM2 architecture, {config.num_hidden_layers} layers, hidden "
        f"{config.hidden_size}, vocab {config.vocab_size}, {params / 1e6:.1f}M params"
    )
    print(
        f"data: {len(examples)} conversations, {min(lengths)}-{max(lengths)} tokens "
        f"(mean {statistics.mean(lengths):.0f}); batch {BATCH}, {STEPS} steps x {REPEATS}"
    )
    arms = {
        "hf_trainer_padded_neftune": lambda: run_hf(examples, tokenizer, device),
        "ours_padded_neftune": lambda: run_ours(examples, device, pack=False, alpha=ALPHA),
        "ours_padded_no_noise": lambda: run_ours(examples, device, pack=False, alpha=0.0),
        "ours_packed_neftune": lambda: run_ours(examples, device, pack=True, alpha=ALPHA),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in arms}
    for _ in range(REPEATS):
        for name, arm in arms.items():
            results[name].append(arm())
    best = {name: max(w for _, w in runs) for name, runs in results.items()}
    for name, runs in results.items():
        cpu, wall = (statistics.median(v) for v in zip(*runs, strict=True))
        print(
            f"{name:27s} best {best[name]:7.1f} tokens/s; median {wall:7.1f} tokens/s, "
            f"{cpu:7.1f} tokens/CPU-s (runs [CPU, wall]: "
            f"{json.dumps([[round(c), round(w)] for c, w in runs])})"
        )
    if device.type == "cuda":
        peak = float(os.environ.get("BENCH_PEAK_TFLOPS", "989")) * 1e12
        for name, value in best.items():
            print(f"MFU {name}: {6 * params * value / peak:.1%}")
    anchor = best["hf_trainer_padded_neftune"]
    overhead = best["ours_padded_no_noise"] / best["ours_padded_neftune"] - 1
    print(f"P4 padded ours/HF Trainer: {best['ours_padded_neftune'] / anchor:.2f}x (bar >= 1.0)")
    print(f"P4 packed ours/HF Trainer: {best['ours_packed_neftune'] / anchor:.2f}x (bar >= 1.5)")
    print(f"P4 NEFTune overhead: {overhead:+.1%} (bar <= 3%)")


if __name__ == "__main__":
    main()
