"""Checks on pre-tokenized rows only: the labels were written by the user, not by our renderer.

Design concession: shifted labels are detected statistically (most trained labels equal the
neighbouring input id rather than their own), so a row with fewer than two trained labels is not
judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.chat.tokens import IGNORE_INDEX, Finding
from app.lint.context import LintContext
from app.lint.registry import check


@check(
    "labels-shifted",
    "error",
    "(pre-tokenized rows) Labels look shifted by one against input_ids.",
    scope="tokenized",
)
def labels_shifted(ctx: LintContext) -> Iterator[Finding]:
    ids, labels = ctx.view.ids, ctx.labels
    if labels is None:
        return
    positions = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    if len(positions) < 2:
        return
    same = sum(1 for i in positions if labels[i] == ids[i])
    ahead = sum(1 for i in positions if i + 1 < len(ids) and labels[i] == ids[i + 1])
    behind = sum(1 for i in positions if i > 0 and labels[i] == ids[i - 1])
    shifted = max(ahead, behind)
    if shifted >= 0.9 * len(positions) and same < 0.5 * len(positions):
        way = (
            "left (labels[i] == input_ids[i+1])"
            if ahead >= behind
            else "right (labels[i] == input_ids[i-1])"
        )
        yield ctx.finding(
            "labels-shifted",
            f"Labels are shifted by one to the {way}. Transformers models shift inside the "
            "loss: give labels aligned with input_ids (labels[i] == input_ids[i] or -100).",
            positions[:64],
        )


@check(
    "labels-equal-inputs",
    "warning",
    "(pre-tokenized rows) Every label equals its input id.",
    scope="tokenized",
)
def labels_equal_inputs(ctx: LintContext) -> Iterator[Finding]:
    ids, labels = ctx.view.ids, ctx.labels
    if labels is None or not ids or len(labels) != len(ids):
        return
    if all(label == tid for label, tid in zip(labels, ids, strict=True)):
        yield ctx.finding(
            "labels-equal-inputs",
            "Every label equals its input id: the prompt, the template markers and any padding "
            "are trained. Set labels to -100 outside the assistant answers.",
        )
