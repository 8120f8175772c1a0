"""Checks that render the conversation again: prefix stability and training vs inference.

Design concession: prefix stability is checked at most at `MAX_CUTS` assistant turns (the first
ones), because each cut is a full render; a template that only diverges late in very long
conversations can slip through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from app.chat.tokens import IGNORE_INDEX, Finding, Rendering
from app.lint.context import LintContext
from app.lint.markers import TokenIndex
from app.lint.registry import check

MAX_CUTS = 4
# Longer conversations are checked on a short sample (system message + the last turns), so the
# re-renders stay cheap for an 8k-token playground conversation.
DEEP_MAX_MESSAGES = 16
SAMPLE_TAIL = 6


def _sample(ctx: LintContext) -> tuple[list[Any], Rendering, bool]:
    """The conversation and training rendering the deep checks compare against; `sampled` says
    the sample is not the whole conversation (token indices then do not apply). Both deep
    checks use it, so it is made once per lint (a sample costs a re-render)."""
    sample: tuple[list[Any], Rendering, bool] = ctx.cached("deep-sample", lambda: _make_sample(ctx))
    return sample


def _make_sample(ctx: LintContext) -> tuple[list[Any], Rendering, bool]:
    conversation, rendering = list(ctx.conversation or []), ctx.rendering
    assert rendering is not None
    if len(conversation) <= DEEP_MAX_MESSAGES:
        return conversation, rendering, False
    head = conversation[:1] if conversation[0].role == "system" else []
    start = len(conversation) - SAMPLE_TAIL
    while start < len(conversation) and conversation[start].role != "user":
        start += 1
    small = head + conversation[start:]
    return small, ctx.rerender(small, max_length=None), True


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where a and b differ over their common length, or None.

    Example: ([1, 2, 3], [1, 5, 3, 4]) -> 1; ([1, 2], [1, 2, 3]) -> None
    """
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None


@check(
    "template-not-prefix-stable",
    "warning",
    "Rendering the first k messages is not a prefix of rendering all of them (info when no "
    "trained token differs).",
    scope="deep",
)
def template_not_prefix_stable(ctx: LintContext) -> Iterator[Finding]:
    if ctx.rendering is None or not ctx.conversation or ctx.renderer is None:
        return
    conversation, rendering, sampled = _sample(ctx)
    cuts = [k for k, m in enumerate(conversation[:-1]) if m.role == "assistant"][:MAX_CUTS]
    full = rendering.input_ids
    for k in cuts:
        part = ctx.rerender(conversation[: k + 1], add_generation_prompt=False, max_length=None)
        at = _first_difference(part.input_ids, full)
        if at is None and len(part.input_ids) > len(full) and not rendering.truncated_tokens:
            at = len(full)
        if at is None:
            continue
        trained = _trained_from(rendering, k, at)
        yield ctx.finding(
            "template-not-prefix-stable",
            f"Rendering messages 0..{k} is not a prefix of rendering all {len(conversation)}"
            f"{' (of a sample: the system message and the last turns)' if sampled else ''}: "
            f"they differ from token {at} on (the template rewrites earlier turns, e.g. strips "
            "reasoning, or closes the text differently). "
            + (
                f"Assistant message {k} is trained as the whole conversation writes it, not as "
                "the model generates it (where it is the last turn); train on one sample per "
                "assistant turn (train_on=last_assistant on each prefix)."
                if trained
                else f"No trained token of assistant message {k} differs: the earlier turns "
                "are context, written as the template writes them at inference too."
            ),
            [] if sampled else list(range(at, min(at + 8, len(full)))),
            severity=None if trained else "info",
        )
        return


def _trained_from(rendering: Rendering, message: int, at: int) -> bool:
    """Whether any token of `message`'s turn from token `at` on is trained."""
    span = next((s for s in rendering.spans if s.message == message), None)
    if span is None:
        return False
    end = TokenIndex(rendering).overlapping(span.start, span.end).stop
    return any(label != IGNORE_INDEX for label in rendering.labels[at:end])


@check(
    "train-inference-mismatch",
    "warning",
    "The training render up to the last assistant header differs from the inference render.",
    scope="deep",
)
def train_inference_mismatch(ctx: LintContext) -> Iterator[Finding]:
    if ctx.rendering is None or not ctx.conversation or ctx.renderer is None:
        return
    conversation, rendering, sampled = _sample(ctx)
    last = max((k for k, m in enumerate(conversation) if m.role == "assistant"), default=None)
    span = next((s for s in rendering.spans if s.message == last), None)
    if not last or span is None:
        return
    if rendering.truncated_tokens and span.eot_end is None:
        return  # max_length cut or dropped the last answer: truncation-cuts-answer says so
    prompt = ctx.rerender(conversation[:last], add_generation_prompt=True, max_length=None)
    begins = span.content_start if span.gen_start is None else span.gen_start
    cut = next((t.index for t in rendering.tokens if t.end > begins), len(rendering.tokens))
    train_ids = list(rendering.input_ids[:cut])
    infer_ids = list(prompt.input_ids)
    if train_ids == infer_ids:
        return
    at = _first_difference(train_ids, infer_ids)
    at = min(len(train_ids), len(infer_ids)) if at is None else at
    yield ctx.finding(
        "train-inference-mismatch",
        f"Up to the last assistant answer, the training render ({len(train_ids)} tokens) and "
        f"the inference prompt with add_generation_prompt=True ({len(infer_ids)} tokens) differ "
        f"from token {at} on: the model is trained after a prompt it will not get at inference. "
        "Use the same template and options for both."
        + (" (Checked on a sample: the system message and the last turns.)" if sampled else ""),
        [] if sampled else list(range(at, max(cut, at + 1))),
    )
