"""Checks that need only ids, trained flags and roles: they run on renderings and on
pre-tokenized dataset rows alike.

Design concession: roles of pre-tokenized rows come from whatever attribution the caller could do
(re-rendering their `messages`, or none); without roles, `prompt-trained` stays silent rather
than guessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress

from app.chat.tokens import Finding
from app.lint.context import LintContext
from app.lint.registry import check

PROMPT_ROLES = frozenset({"system", "developer", "user", "tool"})


@check("double-bos", "error", "Two BOS tokens at the start of a sequence.", scope="tokens")
def double_bos(ctx: LintContext) -> Iterator[Finding]:
    bos, ids = ctx.facts.bos_id, ctx.view.ids
    if bos is None:
        return
    name = ctx.facts.token_text(ctx.tokenizer, bos)
    for start in ctx.view.segments:
        if start + 1 < len(ids) and ids[start] == bos and ids[start + 1] == bos:
            yield ctx.finding(
                "double-bos",
                f"The sequence starts with two BOS tokens ({name})"
                ": the template already writes BOS and the tokenizer adds another. Tokenize the "
                "rendered text with add_special_tokens=False, or drop bos_token from the template.",
                [start, start + 1],
            )


@check(
    "eot-untrained",
    "error",
    "The end-of-turn/EOS token closing a trained turn is not trained.",
    scope="tokens",
)
def eot_untrained(ctx: LintContext) -> Iterator[Finding]:
    trained = ctx.view.trained
    missed = [i for i in ctx.view.eots if i > 0 and trained[i - 1] and not trained[i]]
    if not missed:
        return
    deliberate = not ctx.train_on_eot
    yield ctx.finding(
        "eot-untrained",
        f"{len(missed)} trained turn(s) end with an end-of-turn token that is not trained, so the "
        "model never learns to stop. "
        + (
            "Set train_on_eot to true."
            if deliberate
            else "Keep the end-of-turn token's label (do not mask it with -100)."
        ),
        missed,
        severity="warning" if deliberate else None,
    )


@check(
    "pad-is-eos",
    "info",
    "The pad token equals the EOS/end-of-turn token (a hazard for collators that mask by id).",
    scope="tokens",
)
def pad_is_eos(ctx: LintContext) -> Iterator[Finding]:
    pad = ctx.facts.pad_id
    if pad is None or (pad != ctx.facts.eos_id and pad not in ctx.eot_ids):
        return
    where = ctx.search().find_all((pad,))
    # A property of the tokenizer, not of these labels: damage done by a collator that masked
    # padding by id shows as eot-untrained, so this stays info wherever it is found.
    trained, ids = ctx.view.trained, ctx.view.ids
    masked = ctx.rendering is None and any(
        i > 0 and ids[i] == pad and trained[i - 1] and not trained[i] for i in ctx.view.eots
    )
    said = ctx.shared(("pad-is-eos", pad, masked), lambda: _pad_is_eos_said(ctx, pad, masked))
    yield ctx.finding("pad-is-eos", said, where)


def _pad_is_eos_said(ctx: LintContext, pad: int, masked: bool) -> str:
    """The advice of pad-is-eos (the same for every row of a tokenizer but for `masked`)."""
    return (
        f"The pad token {ctx.facts.token_text(ctx.tokenizer, pad)} is also the end-of-turn/EOS "
        "token: a collator that masks padding by id also masks every EOS, and the model never "
        "learns to stop. Set a distinct pad token (e.g. a reserved special token) or mask "
        "padding by attention_mask, not by id."
        + (
            " This row's end-of-turn tokens are masked (see eot-untrained): a likely cause."
            if masked
            else " These labels are unaffected."
        )
    )


@check("no-trained-tokens", "error", "Nothing in the sample is trained.", scope="tokens")
def no_trained_tokens(ctx: LintContext) -> Iterator[Finding]:
    if ctx.view.ids and not any(ctx.view.trained):
        yield ctx.finding(
            "no-trained-tokens",
            "No token of this sample is trained: it costs compute and teaches nothing. Check that "
            "it has an assistant turn that survives truncation, or change train_on.",
        )


@check(
    "prompt-trained",
    "warning",
    "System/user/tool tokens are trained (info when train_on=all).",
    scope="tokens",
)
def prompt_trained(ctx: LintContext) -> Iterator[Finding]:
    roles, trained = ctx.view.roles, ctx.view.trained
    # The roles of trained tokens, gathered in C, answer most rows: this runs on every row.
    if PROMPT_ROLES.isdisjoint(compress(roles, trained)):
        return
    hit = [i for i in compress(range(len(trained)), trained) if roles[i] in PROMPT_ROLES]
    chosen = ctx.train_on == "all"
    by_role = sorted({roles[i] or "none" for i in hit})
    yield ctx.finding(
        "prompt-trained",
        f"{len(hit)} {'/'.join(by_role)} token(s) are trained"
        + (
            " because train_on=all was chosen."
            if chosen
            else ": the model learns to write prompts. Mask them with -100 (train_on=assistant)."
        ),
        hit,
        severity="info" if chosen else None,
    )


@check(
    "trailing-glue-trained",
    "warning",
    "Whitespace after the end-of-turn token is trained.",
    scope="tokens",
)
def trailing_glue_trained(ctx: LintContext) -> Iterator[Finding]:
    if ctx.train_on == "all":
        return
    ids, trained = ctx.view.ids, ctx.view.trained
    hit = [
        i + 1
        for i in ctx.view.eots
        if i + 1 < len(ids) and trained[i + 1] and not ctx.token_text(i + 1).strip()
    ]
    if hit:
        yield ctx.finding(
            "trailing-glue-trained",
            f"{len(hit)} whitespace token(s) right after an end-of-turn token are trained: the "
            "model learns to emit them after stopping. Stop the label mask at the end-of-turn "
            "token.",
            hit,
        )
