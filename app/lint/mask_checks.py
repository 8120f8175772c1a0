"""Three ways to find the assistant tokens, compared: message attribution (what Maskscope
trains), marker matching (what a completion-only collator does) and `{% generation %}` tags
(what transformers' `return_assistant_tokens_mask` does, when the template has them).

Design concession: each method is reduced to "assistant content plus its end-of-turn token";
the generation-tag method needs the template re-rendered by transformers, so it runs only in
the deep pass and only for the tokenizer's own template.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from app.chat.tokens import Finding
from app.lint.context import LintContext, has_render_flags
from app.lint.markers import LeadIn, Turns, as_mask, marker_ranges, merged_ranges
from app.lint.registry import check

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


def mask_by_attribution(ctx: LintContext) -> list[bool]:
    """Tokens the model generates in an assistant turn (its content or, where the dialect
    knows it, everything after the generation prompt), through its end-of-turn marker."""
    assert ctx.rendering is not None
    return as_mask(len(ctx.rendering.tokens), attribution_ranges(ctx))


def attribution_ranges(ctx: LintContext) -> list[tuple[int, int]]:
    """The token ranges `mask_by_attribution` marks, one per assistant turn."""
    assert ctx.rendering is not None
    out = []
    index = ctx.index()
    starts, ends = index.starts, index.ends
    for span in ctx.rendering.spans:
        if span.role != "assistant":
            continue
        if span.gen_start is not None and span.gen_end is not None:
            start, end = span.gen_start, span.gen_end
        else:
            start = span.content_start
            end = span.eot_end if span.eot_end is not None else span.content_end
        # `index.overlapping(start, end)`, inlined: this runs for every turn of every row.
        out.append((bisect_right(ends, start), bisect_left(starts, end)))
    return out


def mask_by_response_marker(ctx: LintContext) -> list[bool] | None:
    """Completion-only matching, as users configure it: the assistant lead-in (with its trailing
    newline, "<|im_start|>assistant\n") tokenized alone, or without the newline when that form
    is never found; training runs from after it through the next end-of-turn id."""
    assert ctx.rendering is not None
    ranges = response_marker_ranges(ctx)
    return None if ranges is None else as_mask(len(ctx.rendering.tokens), ranges)


def response_marker_ranges(ctx: LintContext) -> list[tuple[int, int]] | None:
    """The token ranges `mask_by_response_marker` marks (None: no assistant marker)."""
    assert ctx.rendering is not None
    turns = ctx.turns()
    lead = turns.best.get("assistant")
    if lead is None:
        return None
    search = ctx.search()
    # What the markers' texts make of it, the same for every row of a template: remembered.
    key = ("marker-matching", lead.text, tuple(turns.header_texts.items()), turns.eot_ids)
    full, bare, stops, eots = ctx.shared(key, lambda: _matching(ctx, lead, turns))
    response = full if search.find(full) != -1 else bare
    return marker_ranges(search, response, eots, stops)


def _matching(
    ctx: LintContext, lead: LeadIn, turns: Turns
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, ...], ...], frozenset[int]]:
    """How a completion-only collator is configured from these markers: the assistant lead-in
    tokenized alone with its trailing whitespace and without, the other roles' markers (where a
    turn stops when no end-of-turn id comes first) and the end-of-turn ids (with EOS)."""
    encode, tokenizer = ctx.facts.encode, ctx.tokenizer
    stops = tuple(
        encode(tokenizer, text) for role, text in turns.header_texts.items() if role != "assistant"
    )
    eos = ctx.facts.eos_id
    eots = turns.eot_ids | {eos} if eos is not None else turns.eot_ids
    return encode(tokenizer, lead.text), encode(tokenizer, lead.marker), stops, eots


def mask_by_generation_tags(ctx: LintContext) -> list[bool] | None:
    """transformers' assistant mask, where the tokenizer's own template has generation tags."""
    template = getattr(ctx.tokenizer, "chat_template", None)
    if (
        ctx.dialect != "tokenizer"
        or not isinstance(template, str)
        or not GENERATION_TAG.search(template)
        or not ctx.conversation
    ):
        return None
    out = ctx.tokenizer.apply_chat_template(
        [m.to_dict() for m in ctx.conversation],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert ctx.rendering is not None
    if list(out["input_ids"]) != list(ctx.rendering.input_ids):
        return None
    return [bool(v) for v in out["assistant_masks"]]


@check(
    "mask-methods-disagree",
    "warning",
    "Generation tags, message attribution and marker matching give different assistant positions.",
    scope="rendering",
)
def mask_methods_disagree(ctx: LintContext) -> Iterator[Finding]:
    if ctx.rendering is None or not ctx.rendering.tokens:
        return
    by_rule, by_marker = attribution_ranges(ctx), response_marker_ranges(ctx)
    tags = mask_by_generation_tags(ctx) if ctx.deep else None
    if tags is None and (
        by_marker is None
        or by_rule == by_marker  # the usual row, at once: equal ranges mark equal masks
        or merged_ranges(by_rule) == merged_ranges(by_marker)
    ):
        return  # the two agree, which their ranges show without a mask
    size = len(ctx.rendering.tokens)
    methods = {
        "message attribution": as_mask(size, by_rule),
        "marker matching": None if by_marker is None else as_mask(size, by_marker),
    }
    if ctx.deep:
        methods["generation tags"] = tags
    present = {name: mask for name, mask in methods.items() if mask is not None}
    if len(present) < 2:
        return
    masks = list(present.values())
    if all(m == masks[0] for m in masks[1:]):
        return
    differ = [i for i in range(len(masks[0])) if len({m[i] for m in masks}) > 1]
    if not differ:
        return
    first = differ[0]
    says = ", ".join(
        f"{name}: {'trained' if mask[first] else 'not trained'}" for name, mask in present.items()
    )
    yield ctx.finding(
        "mask-methods-disagree",
        f"{len(differ)} token(s) are assistant tokens by one method and not by another (token "
        f"{first}: {says}). A trainer using the other method trains different tokens; prefer "
        "message attribution, or fix the data/markers where they disagree.",
        differ,
    )


@check(
    "tags-differ-from-generated",
    "info",
    "The template's {% generation %} tags train other tokens than the model generates.",
    scope="rendering",
    when=has_render_flags,
)
def tags_differ_from_generated(ctx: LintContext) -> Iterator[Finding]:
    """Tags decide what trains (as in TRL and transformers); say where they part from trained =
    generated: extra tokens (glue, a header the prompt wrote) are info, generated tokens the
    tags leave out are a warning (the model never learns to write them)."""
    rendering = ctx.rendering
    if rendering is None or not rendering.meta.get("tagged") or ctx.train_on != "assistant":
        return
    if not ctx.train_on_eot:
        return
    rule = mask_by_attribution(ctx)
    trained = [bool(t.trained) for t in rendering.tokens]
    missing = [i for i, (r, t) in enumerate(zip(rule, trained, strict=True)) if r and not t]
    extra = [i for i, (r, t) in enumerate(zip(rule, trained, strict=True)) if t and not r]
    if missing:
        yield ctx.finding(
            "tags-differ-from-generated",
            f"{len(missing)} token(s) the model writes at inference are outside the template's "
            f"{{% generation %}} tags (first: token {missing[0]}, "
            f"{ctx.token_text(missing[0])!r}): a trainer using the tags never teaches them. "
            "Widen the tags to what follows the generation prompt, up to the end-of-turn marker.",
            missing,
            severity="warning",
        )
    if extra:
        yield ctx.finding(
            "tags-differ-from-generated",
            f"{len(extra)} token(s) inside the template's {{% generation %}} tags are not "
            f"generated at inference (first: token {extra[0]}, {ctx.token_text(extra[0])!r}, "
            "e.g. glue after the end-of-turn marker or a header the prompt already wrote): "
            "trainers that use the tags (TRL, transformers) train them; harmless as a rule.",
            extra,
        )
