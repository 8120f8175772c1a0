"""What a causal LM makes of each token of a rendering: log-probability, entropy, loss.

`score_ids` runs one plain forward pass over the ids (no cache, no sampling) and reads the
logits of position i-1 for token i: `logprob[i] = log softmax(logits[i-1])[ids[i]]` and
`entropy[i] = -sum p log p` of that same distribution; token 0 has neither (nothing predicts
it). These are the figures transformers' own loss is made of: the mean of `-logprob` over the
trained tokens is the SFT loss of the row.

Design concession: the whole sequence goes through the model at once (exact, the same numbers as
`model(ids).logits`), bounded by the max_score_tokens setting rather than windowed; only the
softmax over the vocabulary is taken in slices of positions, so the extra memory beyond the
logits themselves stays small.

Example: score_ids(model, [1, 9690, 198]) -> TokenScores(logprobs=[None, -3.2, -0.01],
                                                         entropies=[None, 4.1, 0.2])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.chat.tokens import IGNORE_INDEX, Rendering
from app.lint.markers import TokenIndex

if TYPE_CHECKING:
    import torch

# Positions whose softmax is taken at once: 1024 x a 50k vocabulary is 200 MB of fp32.
SLICE = 1024


@dataclass(frozen=True)
class TokenScores:
    """Per-token figures, index-aligned with the ids; None for token 0."""

    logprobs: list[float | None]
    entropies: list[float | None]


@dataclass(frozen=True)
class Stop:
    """One trained end-of-turn marker: its first token, its message, and the probability the
    model gives the whole marker (the product over its tokens, when it is split into several)."""

    token: int
    message: int
    probability: float

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "message": self.message, "probability": self.probability}


def score_ids(model: Any, input_ids: Sequence[int]) -> TokenScores:
    """One forward pass of `model` over `input_ids`; log-probabilities and entropies per token."""
    import torch  # heavy: loaded when something is first scored, not when the server starts

    if len(input_ids) < 2:
        return TokenScores([None] * len(input_ids), [None] * len(input_ids))
    device = next(model.parameters()).device
    ids = torch.tensor([list(input_ids)], dtype=torch.long, device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits[0]
        logprobs, entropies = _next_token_figures(logits[:-1], ids[0, 1:])
    return TokenScores([None, *logprobs], [None, *entropies])


def _next_token_figures(logits: torch.Tensor, targets: torch.Tensor) -> tuple[list[Any], list[Any]]:
    """log p(target) and the entropy of each row's softmax, a slice of rows at a time."""
    import torch  # heavy: see score_ids

    logprobs: list[torch.Tensor] = []
    entropies: list[torch.Tensor] = []
    for start in range(0, logits.shape[0], SLICE):
        z = logits[start : start + SLICE].float()
        lse = torch.logsumexp(z, dim=-1)
        picked = z.gather(1, targets[start : start + SLICE, None])[:, 0]
        # clamped: rounding can put a near-certain token a hair above log 1 or entropy below 0
        logprobs.append((picked - lse).clamp(max=0.0))
        # -sum p log p = lse - sum p z, with p = exp(z - lse)
        entropies.append((lse - (torch.exp(z - lse[:, None]) * z).sum(-1)).clamp(min=0.0))
    return torch.cat(logprobs).tolist(), torch.cat(entropies).tolist()


def mean_trained_loss(scores: TokenScores, labels: Sequence[int]) -> float | None:
    """Mean of -logprob over the trained tokens (the SFT loss of this row), None when nothing
    past token 0 is trained. Example: logprobs [None, -1.0, -3.0], labels [-100, 5, 7] -> 2.0
    """
    losses = [
        -lp
        for lp, label in zip(scores.logprobs, labels, strict=True)
        if lp is not None and label != IGNORE_INDEX
    ]
    return sum(losses) / len(losses) if losses else None


def stops(rendering: Rendering, scores: TokenScores) -> list[Stop]:
    """The probability of each trained end-of-turn marker that closes a message."""
    index = TokenIndex(rendering)
    out: list[Stop] = []
    for span in rendering.spans:
        if span.eot_start is None or span.eot_end is None:
            continue
        tokens = [
            i
            for i in index.overlapping(span.eot_start, span.eot_end)
            if rendering.labels[i] != IGNORE_INDEX and scores.logprobs[i] is not None
        ]
        if tokens:
            total = sum(scores.logprobs[i] or 0.0 for i in tokens)
            out.append(Stop(tokens[0], span.message, math.exp(total)))
    return out
