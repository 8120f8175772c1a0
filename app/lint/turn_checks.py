"""Checks on the assistant turns themselves: how they end, what they hold, where they stand.

Design concession: a turn counts as trained when any token between its content and its
end-of-turn marker is trained, so `train_on`, `last_assistant` and per-message `train` flags are
all read off the labels rather than re-derived; the role order is judged on the messages as
given, since a template that refuses an order raises before any check runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.chat.messages import REASONING_FIELDS
from app.chat.tokens import Finding, MessageSpan, Severity
from app.lint.context import LintContext, holds_more_than_text, renders_think
from app.lint.registry import check


def turn_tokens(ctx: LintContext, span: MessageSpan) -> list[int]:
    end = span.eot_end if span.eot_end is not None else max(span.content_end, span.end)
    return ctx.tokens_in(span.content_start, end)


def turn_trained(ctx: LintContext, span: MessageSpan) -> bool:
    return any(ctx.view.trained[i] for i in turn_tokens(ctx, span))


def _complete(ctx: LintContext, span: MessageSpan) -> bool:
    """The turn lies wholly before any max_length cut (truncation-cuts-answer speaks for the
    others)."""
    rendering = ctx.rendered()
    return not rendering.truncated_tokens or span.end < ctx.index().ends[-1]


@check(
    "no-end-of-turn",
    "error",
    "The template writes no end-of-turn marker after trained assistant turns.",
    scope="rendering",
)
def no_end_of_turn(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None or not rendering.tokens:
        return
    open_turns = [
        s
        for s in rendering.spans
        if s.role == "assistant"
        and s.eot_start is None
        and _complete(ctx, s)
        and turn_trained(ctx, s)
    ]
    if not open_turns:
        return
    first = open_turns[0]
    after = rendering.text[first.content_end : first.content_end + 24]
    eos = ctx.facts.eos or "the tokenizer's end-of-turn token"
    yield ctx.finding(
        "no-end-of-turn",
        f"Assistant message(s) {', '.join(str(s.message) for s in open_turns[:8])} end without "
        "an end-of-turn token (EOS or the tokenizer's end-of-turn token; after message "
        f"{first.message} the text goes on with {after!r}): no trained token tells the model "
        "to stop, so at inference it runs on into the next turn. Make the template write "
        f"{eos} right after each assistant message.",
        [i for s in open_turns for i in turn_tokens(ctx, s)[-1:]],
    )


@check(
    "empty-answer",
    "warning",
    "A trained assistant message is empty: the row teaches the model to answer nothing.",
    scope="rendering",
    when=holds_more_than_text,
)
def empty_answer(ctx: LintContext) -> Iterator[Finding]:
    rendering, conversation = ctx.rendering, ctx.conversation
    if rendering is None or not conversation:
        return
    empty = [
        s
        for s in rendering.spans
        if s.role == "assistant"
        and s.message < len(conversation)
        and not conversation[s.message].content.strip()
        and not conversation[s.message].extra.get("tool_calls")
        and turn_trained(ctx, s)
    ]
    if not empty:
        return
    thinks = any(conversation[s.message].extra.get(k) for s in empty for k in REASONING_FIELDS)
    yield ctx.finding(
        "empty-answer",
        f"Assistant message(s) {', '.join(str(s.message) for s in empty[:8])} are empty (no "
        "text, no tool call), yet trained: only "
        + ("their reasoning and " if thinks else "")
        + "the template's markup around them (the end-of-turn marker) is learned, so the row "
        "teaches the model to answer nothing. Drop these rows or turns, or fill in the answer.",
        [i for s in empty for i in turn_tokens(ctx, s)],
    )


@check(
    "role-order",
    "warning",
    "The roles are in an order chat models are not used in: an assistant turn first, or two "
    "turns of one role in a row (info for two user turns, or untrained turns).",
    scope="rendering",
)
def role_order(ctx: LintContext) -> Iterator[Finding]:
    rendering, conversation = ctx.rendering, ctx.conversation
    if rendering is None or not conversation:
        return
    roles = [m.role for m in conversation]
    opening = next((k for k, role in enumerate(roles) if role != "system"), None)
    # Each message k with the role of message k - 1 (pairs read with zip: every row asks).
    odd = [
        k
        for k, (before, role) in enumerate(zip(roles, roles[1:], strict=False), 1)
        if role == before and role in ("user", "assistant")
    ]
    if opening is not None and roles[opening] == "assistant":
        odd.insert(0, opening)
    if not odd:  # the usual case: nothing to look at
        return
    spans = {s.message: s for s in rendering.spans}
    for k in odd:
        span = spans.get(k)
        trained = span is not None and turn_trained(ctx, span)
        said = _out_of_order(k, roles, opening, trained)
        if said is not None:
            where = [] if span is None else ctx.tokens_in(span.start, span.end)
            yield ctx.finding("role-order", said[0], where, severity=said[1])


def _out_of_order(
    k: int, roles: list[str], opening: int | None, trained: bool
) -> tuple[str, Severity | None] | None:
    """What is wrong with message `k`'s place (and the severity, None: the registry's), if any.

    Example: (1, ["user", "user"], 0, False) -> ("messages[1] (user) directly follows ...", "info")
    """
    role, previous = roles[k], roles[k - 1] if k else None
    context = "; it is untrained, so it only sets context."
    severity: Severity | None = None if trained else "info"
    if k == opening and role == "assistant":
        return (
            f"messages[{k}] (assistant) opens the conversation: no user message comes before it"
            + (
                ", yet it is trained, so the model learns to speak unprompted. Add the user "
                "message it answers, or leave the turn untrained."
                if trained
                else context
            ),
            severity,
        )
    if role == previous == "assistant":
        return (
            f"messages[{k}] (assistant) directly follows messages[{k - 1}] (assistant)"
            + (
                ", and it is trained: at inference the model's turn ends with its end-of-turn "
                "marker and the next message is the user's, so it is trained to start a second "
                "answer in a place it never gets to. Merge the two answers, or insert the user "
                "message between them."
                if trained
                else context
            ),
            severity,
        )
    if role == previous == "user":
        said = (
            f"messages[{k}] (user) directly follows messages[{k - 1}] (user): templates that "
            "expect alternating turns refuse this, and the model sees two user turns where it "
            "was trained on one. Merge them if the model was tuned on alternating turns."
        )
        return said, "info"
    return None


@check(
    "history-end-trained",
    "warning",
    "Earlier harmony answers are trained with <|end|>, which is no stop token at inference.",
    scope="rendering",
    when=renders_think,
)
def history_end_trained(ctx: LintContext) -> Iterator[Finding]:
    """gpt-oss's template closes the last answer with `<|return|>` (a stop token) and rewrites
    every earlier final answer to end with `<|end|>` (not one): trained, those turns teach the
    model to end an answer with a token generation does not stop at."""
    rendering = ctx.rendering
    if rendering is None or "<|channel|>final" not in rendering.text:
        return
    text = rendering.text
    hit = [
        s
        for s in rendering.spans
        if s.role == "assistant"
        and s.eot_start is not None
        and text[s.eot_start : s.eot_end] == "<|end|>"
        and "<|channel|>final" in text[s.start : s.eot_start]
        and turn_trained(ctx, s)
    ]
    if not hit:
        return
    yield ctx.finding(
        "history-end-trained",
        f"Assistant message(s) {', '.join(str(s.message) for s in hit[:8])} are earlier final "
        "answers, which the harmony template closes with <|end|> instead of <|return|>; they are "
        "trained, so the model learns to end answers with a token generation does not stop at. "
        "Train only the last answer (train_on=last_assistant, one sample per turn).",
        [i for s in hit for i in ctx.tokens_in(s.eot_start or 0, s.eot_end or 0)],
    )
