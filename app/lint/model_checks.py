"""Checks that need a model: what a causal LM's per-token scores say about the training labels.

They run only when a rendering was scored (`POST /api/score`, `maskscope score`, ranking a
dataset by loss), with the figures in `ctx.model`; everywhere else the scope "model" is skipped.

Design concession: the thresholds are settings, not learned: a small model finds many tokens
surprising, so the defaults flag only what is far out (a stop the model gives under 20 %, a
token under e^-12 ≈ 6e-6).

Example: an answer cut mid-sentence, then <|im_end|> -> model-does-not-stop at that <|im_end|>
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from app.chat.tokens import Finding
from app.lint.context import LintContext
from app.lint.registry import check

SHOWN = 8  # tokens named in one message


@check(
    "model-does-not-stop",
    "warning",
    "The model gives a trained end-of-turn marker a low probability where the answer ends.",
    scope="model",
)
def model_does_not_stop(ctx: LintContext) -> Iterator[Finding]:
    if ctx.model is None:
        return
    low = [s for s in ctx.model.stops if s[2] < ctx.model.min_stop_probability]
    if not low:
        return
    names = ", ".join(f"message {m} ({p:.1%})" for _, m, p in low[:SHOWN])
    yield ctx.finding(
        "model-does-not-stop",
        f"The model gives the end-of-turn marker after {names} less than "
        f"{ctx.model.min_stop_probability:.0%} (the lint_min_stop_probability setting): at "
        "inference it would rarely stop there. Either the answer ends where the model does not "
        "expect it to (cut mid-sentence?), or the marker is not this model's own end-of-turn "
        "(a different template?). Training on it teaches the stop, but a run whose stop stays "
        "this unlikely is the one that never ends.",
        [t for t, _, _ in low],
    )


@check(
    "extreme-token-loss",
    "warning",
    "Trained tokens the model finds extremely unlikely (loss above a threshold).",
    scope="model",
)
def extreme_token_loss(ctx: LintContext) -> Iterator[Finding]:
    if ctx.model is None:
        return
    limit = ctx.model.max_token_loss
    hot = [
        (i, -lp)
        for i, lp in enumerate(ctx.model.logprobs)
        if lp is not None and ctx.view.trained[i] and -lp > limit
    ]
    if not hot:
        return
    worst = sorted(hot, key=lambda item: -item[1])[:SHOWN]
    texts = ctx.view.texts
    shown = ", ".join(
        f"{texts[i]!r} at token {i} ({loss:.1f})" if texts is not None else f"token {i}"
        for i, loss in worst
    )
    yield ctx.finding(
        "extreme-token-loss",
        f"{len(hot)} trained token(s) have a loss above {limit:g} nats (probability under "
        f"{math.exp(-limit):.1g}; the lint_max_token_loss setting): {shown}. Such tokens "
        "dominate the gradient: check them for label noise, a typo, mangled text or a wrong "
        "template.",
        [i for i, _ in hot],
    )
