"""NEFTune: uniform noise on the input embeddings during training, scaled per sequence.

The paper adds ``U(-1, 1) * alpha / sqrt(L * d)`` to the embeddings, where (its footnote) L is each
sequence's own length. transformers' hook uses the padded length instead, noises padding too, and
under padding-free packing takes the whole packed row as L. ``mode="paper"`` follows the paper,
counting each packed segment (a new one starts wherever ``position_ids`` is 0) and each row's real
tokens (``attention_mask``); ``mode="hf"`` reproduces transformers for comparison.

Design concession: the hook learns the batch's ``attention_mask`` / ``position_ids`` from a
forward pre-hook on the model, so it works for any causal LM called with keyword arguments, but not
for a model whose forward receives them positionally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

MODES = ("paper", "hf")


def token_lengths(
    shape: tuple[int, int],
    *,
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    device: Any = None,
) -> Tensor:
    """For every token, the length L of its sequence (or packed segment); 0 on padding.

    Example: position_ids [[0, 1, 2, 0, 1]] -> [[3, 3, 3, 2, 2]];
             attention_mask [[1, 1, 0]] -> [[2, 2, 0]].
    """
    batch, width = shape
    mask = (
        torch.ones(shape, device=device)
        if attention_mask is None
        else attention_mask.to(device=device, dtype=torch.float32)
    )
    if position_ids is None:
        segment = torch.zeros(shape, dtype=torch.long, device=device)
    else:
        segment = (position_ids.to(device) == 0).long().cumsum(-1)
        segment = segment.expand(batch, width)
    counts = torch.zeros(batch, width + 1, device=device).scatter_add_(1, segment, mask)
    return counts.gather(1, segment) * mask


def add_neftune_noise(
    embeds: Tensor,
    alpha: float,
    *,
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    mode: str = "paper",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Return ``embeds + U(-1, 1) * alpha / sqrt(L * d)`` for embeddings of shape (batch, L, d).

    Example: one row of 3 real tokens and 1 pad, d=4, alpha=4 (paper) -> |noise| <= 4/sqrt(3*4)
    on the real tokens and exactly 0 on the pad; in "hf" mode every token gets
    |noise| <= 4/sqrt(4*4).
    """
    if mode not in MODES:
        raise ValueError(f"neftune mode must be one of {MODES}, not {mode!r}")
    batch, width, dim = embeds.shape
    unit = torch.empty(embeds.shape, dtype=embeds.dtype, device=embeds.device)
    unit.uniform_(-1.0, 1.0, generator=generator)
    if mode == "hf":
        return embeds + unit * (alpha / math.sqrt(width * dim))
    lengths = token_lengths(
        (batch, width),
        attention_mask=attention_mask,
        position_ids=position_ids,
        device=embeds.device,
    )
    scale = torch.where(lengths > 0, alpha / torch.sqrt(lengths.clamp(min=1) * dim), 0.0)
    return embeds + unit * scale.unsqueeze(-1).to(embeds.dtype)


@dataclass
class NEFTuneHandle:
    """What `enable_neftune` installed; `remove()` takes the noise away again."""

    alpha: float
    mode: str
    generator: torch.Generator | None = None
    batch: dict[str, Tensor | None] = field(default_factory=dict)
    hooks: list[Any] = field(default_factory=list)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()
        self.batch.clear()


def enable_neftune(
    model: nn.Module, alpha: float, mode: str = "paper", generator: torch.Generator | None = None
) -> NEFTuneHandle:
    """Add NEFTune noise to ``model``'s input embeddings while ``model.training`` is true.

    Example: handle = enable_neftune(model, 5.0, "paper"); ...train...; handle.remove()
    """
    if mode not in MODES:
        raise ValueError(f"neftune mode must be one of {MODES}, not {mode!r}")
    if alpha < 0 or not math.isfinite(alpha):
        raise ValueError(f"neftune alpha must be a finite number >= 0, not {alpha}")
    handle = NEFTuneHandle(alpha=alpha, mode=mode, generator=generator)
    embeddings = model.get_input_embeddings()

    def remember(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # A 4D mask is already a full attention pattern: lengths then come from position_ids.
        mask = kwargs.get("attention_mask")
        handle.batch["attention_mask"] = mask if mask is not None and mask.dim() == 2 else None
        handle.batch["position_ids"] = kwargs.get("position_ids")

    def noise(module: nn.Module, _inputs: tuple[Any, ...], output: Tensor) -> Tensor:
        if not module.training or handle.alpha == 0:
            return output
        return add_neftune_noise(
            output,
            handle.alpha,
            mode=handle.mode,
            generator=handle.generator,
            attention_mask=handle.batch.get("attention_mask"),
            position_ids=handle.batch.get("position_ids"),
        )

    handle.hooks.append(model.register_forward_pre_hook(remember, with_kwargs=True))
    handle.hooks.append(embeddings.register_forward_hook(noise))
    return handle
