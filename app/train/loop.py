"""The training loop: exact gradient-accumulation loss, padding-free packing, NEFTune, DDP.

Loss of one optimizer step = (sum of token losses over every trained token of the whole
gradient-accumulation window, on every rank) / (number of those tokens). Every rank sees the same
deterministic window, so it knows that count without communication; each micro-batch's backward
uses the global count, so the gradient equals the one of a single large batch.

Packed micro-batches are one padding-free row whose ``position_ids`` restart per conversation;
transformers then masks attention across conversations (block-diagonal causal mask for SDPA/eager,
varlen kernels for flash attention).

Held-out evaluation: a few conversations are kept out of training (`split_held_out`, the same ones
for a seed) and their mean trained-token loss is measured before the first step, every
`eval_every` steps and after the last, in eval mode, so without NEFTune's noise: the curve that says
whether noise helped, which the training loss (higher with noise, by design) cannot.

Design concession: logits are only computed where a label is trained (``logits_to_keep``), which
requires a transformers causal LM that accepts that argument (all current ones do).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.chat.batching import pack_sequences, pad_batch
from app.chat.tokens import IGNORE_INDEX
from app.train.distributed import Dist
from app.train.neftune import enable_neftune

Example = dict[str, list[int]]


@dataclass(frozen=True)
class LoopConfig:
    """What one arm of a job trains with."""

    steps: int
    batch_size: int
    grad_accum: int = 1
    learning_rate: float = 5e-5
    warmup_steps: int = 0
    neftune_alpha: float = 0.0
    neftune_mode: str = "paper"
    pack: bool = False
    seed: int = 0
    pad_id: int = 0
    max_grad_norm: float = 1.0
    eval_every: int = 0


def windows(n_examples: int, window: int, seed: int) -> Iterator[list[int]]:
    """Indices of each optimizer step's examples: a fresh seeded permutation every epoch.

    Example: windows(4, 3, 0) -> [2, 0, 1], [3, <first of epoch 2>, ...], ...
    """
    epoch, stream = 0, list[int]()
    while True:
        while len(stream) < window:
            generator = torch.Generator().manual_seed(seed + epoch)
            stream += torch.randperm(n_examples, generator=generator).tolist()
            epoch += 1
        yield stream[:window]
        stream = stream[window:]


def trained_tokens(seqs: list[Example]) -> int:
    """Labels the loss sees: the model shifts by one, so a sequence's first label never counts."""
    return sum(sum(1 for label in s["labels"][1:] if label != IGNORE_INDEX) for s in seqs)


def model_inputs(seqs: list[Example], pack: bool, pad_id: int, device: Any) -> dict[str, Tensor]:
    """One packed row (no padding, no attention mask) or a right-padded batch."""
    if pack:
        rows = pack_sequences(seqs, max_length=sum(len(s["input_ids"]) for s in seqs))
        keys = ("input_ids", "labels", "position_ids")
    else:
        rows = pad_batch(seqs, pad_id, padding_side="right")
        keys = ("input_ids", "labels", "attention_mask")
    return {
        key: torch.tensor([r[key] for r in rows], dtype=torch.long, device=device) for key in keys
    }


def summed_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Sum of next-token cross-entropy over trained labels, logits only where they are needed."""
    labels = batch.pop("labels")
    targets = labels[:, 1:]
    keep = (targets != IGNORE_INDEX).any(0).nonzero().squeeze(-1)
    if keep.numel() == 0:
        keep = torch.zeros(1, dtype=torch.long, device=labels.device)
    logits = model(**batch, logits_to_keep=keep, use_cache=False).logits
    return F.cross_entropy(
        logits.float().flatten(0, 1),
        targets[:, keep].flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def split_held_out(
    examples: list[Example], count: int, seed: int
) -> tuple[list[Example], list[Example]]:
    """(to train on, held out): at most `count` and at most a fifth of the examples held out.

    Example: 60 examples, count 8 -> (52, 8); 4 examples -> (4, 0): too few to spare one.
    """
    held = min(count, len(examples) // 5)
    if held == 0:
        return examples, []
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    out = set(order[:held])
    return [e for i, e in enumerate(examples) if i not in out], [examples[i] for i in sorted(out)]


@torch.no_grad()
def held_out_loss(
    model: nn.Module,
    examples: list[Example],
    config: LoopConfig,
    dist: Dist,
    should_stop: Callable[[], bool] = lambda: False,
) -> float | None:
    """Mean next-token loss per trained token over `examples`, in eval mode (no NEFTune noise);
    None when asked to stop between two batches (a long evaluation never delays a cancel)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=dist.device)
    mine = examples[dist.rank :: dist.world]
    stopped = False
    for start in range(0, len(mine), config.batch_size):
        if should_stop():
            stopped = True
            break
        with dist.autocast():
            batch = model_inputs(
                mine[start : start + config.batch_size], config.pack, config.pad_id, dist.device
            )
            total += summed_loss(model, batch).float()
    model.train(was_training)
    if dist.any(stopped):
        return None
    return float(dist.sum(total)) / max(1, trained_tokens(examples))


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then linear decay to 0. Example: lr_factor(0, 10, 2) -> 0.5"""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (steps - step) / max(1, steps - warmup))


# Long: the training step is one loop with its accumulation, clipping, schedule and reporting
# side by side, as the reference trainers write it; split, the order of those steps would hide.
def train(
    model: nn.Module,
    examples: list[Example],
    config: LoopConfig,
    dist: Dist,
    *,
    emit: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
    held_out: list[Example] | None = None,
) -> int:
    """Train for config.steps optimizer steps (or until asked to stop); returns the steps done.

    Each step emits {"step", "loss", "lr", ...}; with `held_out` and `config.eval_every`, step 0,
    every eval_every-th step and the last one also emit {"step", "eval_loss"}.
    """
    torch.manual_seed(config.seed)
    handle = None
    if config.neftune_alpha > 0:
        generator = torch.Generator(device=dist.device).manual_seed(config.seed + 7919 * dist.rank)
        handle = enable_neftune(model, config.neftune_alpha, config.neftune_mode, generator)
    wrapped = dist.wrap(model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=0.0, fused=True
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.steps, config.warmup_steps)
    )

    def evaluate(step: int) -> None:
        if held_out and config.eval_every:
            loss = held_out_loss(model, held_out, config, dist, should_stop)
            if loss is not None:
                emit({"step": step, "eval_loss": loss})

    model.train()
    done = 0
    try:
        evaluate(0)
        for step, window in zip(
            range(config.steps),
            windows(len(examples), config.batch_size * config.grad_accum, config.seed),
            strict=False,
        ):
            if dist.any(should_stop()):
                break
            started = time.perf_counter()
            seqs = [examples[i] for i in window]
            loss, tokens = accumulate(wrapped, seqs, config, dist)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.perf_counter() - started
            done = step + 1
            emit(
                {
                    "step": done,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": float(norm),
                    "tokens": tokens,
                    "tokens_per_s": tokens / elapsed if elapsed else 0.0,
                }
            )
            if done % max(1, config.eval_every) == 0 or done == config.steps:
                evaluate(done)
    finally:
        if handle is not None:
            handle.remove()
        model.eval()
    return done


def accumulate(
    wrapped: nn.Module, seqs: list[Example], config: LoopConfig, dist: Dist
) -> tuple[float, int]:
    """Forward/backward every micro-batch of this rank; returns (window loss, window tokens)."""
    count = max(1, trained_tokens(seqs))
    micros = [seqs[i : i + config.batch_size] for i in range(0, len(seqs), config.batch_size)]
    total = torch.zeros((), device=dist.device)
    for index, micro in enumerate(micros):
        mine = micro[dist.rank :: dist.world]
        sync = index == len(micros) - 1
        context = contextlib.nullcontext() if sync else dist.no_sync(wrapped)
        with context:
            with dist.autocast():
                batch = model_inputs(mine, config.pack, config.pad_id, dist.device)
                loss_sum = summed_loss(wrapped, batch)
            # DDP averages gradients over ranks; scaling by world makes that a plain sum.
            (loss_sum * (dist.world / count)).backward()
        total += loss_sum.detach()
    return float(dist.sum(total)) / count, sum(len(s["input_ids"]) for s in seqs)
