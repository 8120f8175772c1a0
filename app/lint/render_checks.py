"""Checks that read one rendering's text and message spans (no re-rendering).

Design concession: "what the template wrote" is everything outside the message content spans;
an injected system prompt or a trailing generation prompt is found there, by text, which works
for any Jinja template without knowing its source.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

from app.chat.sequences import differing_window
from app.chat.tokens import Finding, Severity
from app.lint.context import LintContext, engine_spoke, normalizes
from app.lint.markers import probe_markers
from app.lint.registry import check

ROLE_WORDS = re.compile(r"\b(system|user|assistant|model|tool|human|gpt)\b", re.IGNORECASE)
MIN_PROSE_WORDS = 3
ROLE_HEADER = re.compile(r"^\s*(system|user|assistant|model|developer)[ \t]*(:|\n)", re.IGNORECASE)
_START_OF, _END_OF = attrgetter("start"), attrgetter("end")  # a span's (or token's) bounds
SPECIAL_LOOKING = re.compile(r"<\|[^<>|\s]{1,40}\|>|<[a-z_]{2,40}>|</?s>")


@check(
    "boundary-merge",
    "warning",
    "A token spans two messages, or whole-string and segment-wise tokenization differ "
    "(info when no such token is trained).",
    scope="rendering",
)
def boundary_merge(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None or (
        rendering.findings and any(f.code == "boundary-merge" for f in rendering.findings)
    ):
        return  # the engine already said so, with its own detail
    index = ctx.index()
    starts, ends = index.starts, index.ends
    # Token texts partition the text: only the last token starting before a bound can cross it.
    # (Turns are mostly adjacent: each shared bound is looked up once.)
    bounds = set(map(_START_OF, rendering.spans))
    bounds.update(map(_END_OF, rendering.spans))
    crossing = sorted({i for b in bounds if (i := bisect_left(starts, b) - 1) >= 0 and ends[i] > b})
    if not crossing:
        return
    trained = [i for i in crossing if ctx.view.trained[i]]
    if trained and ctx.train_on != "all":
        # A trained token that reaches into the prompt trains those prompt characters too.
        yield ctx.finding(
            "boundary-merge",
            f"{len(trained)} trained token(s) span two messages (token {trained[0]}: "
            f"{ctx.token_text(trained[0])!r}), so characters of the other message are trained "
            "with them. End the message with whitespace the template keeps, or use a dialect "
            "whose markers are special tokens.",
            trained,
        )
        return
    yield ctx.finding(
        "boundary-merge",
        f"{len(crossing)} token(s) span two messages (token {crossing[0]}: "
        f"{ctx.token_text(crossing[0])!r}); the role shown for them is one of the two, but "
        "their labels do not depend on it"
        + (" (train_on=all trains both)." if trained else " (neither side is trained).")
        + " The tokenizer merges them the same way at inference: nothing to change.",
        crossing,
        severity="info",
    )


@check(
    "content-not-found",
    "warning",
    "The template's output does not contain a message's content: it rewrites or drops it.",
    scope="rendering",
    when=engine_spoke,
)
def content_not_found(ctx: LintContext) -> Iterator[Finding]:
    # Only the engine can tell (it locates every message while attributing the template's
    # output); this check makes its finding part of every lint run, documented under its code.
    rendering = ctx.rendering
    if rendering is not None:
        yield from (f for f in rendering.findings if f.code == "content-not-found")


@check(
    "content-normalized",
    "info",
    "The tokenizer's Unicode normalizer changes message content: the ids encode other "
    "characters than the data holds.",
    scope="rendering",
    when=normalizes,
)
def content_normalized(ctx: LintContext) -> Iterator[Finding]:
    rendering, forms = ctx.rendering, ctx.facts.unicode_forms
    if rendering is None or not forms:
        return
    for span in rendering.spans:
        content = rendering.text[span.content_start : span.content_end]
        if content.isascii():  # ASCII is the same text under every normal form
            continue
        normalized = content
        for form in forms:
            normalized = unicodedata.normalize(form, normalized)
        if normalized == content:
            continue
        start, end, new_end = differing_window(content, normalized)
        yield ctx.finding(
            "content-normalized",
            f"The tokenizer's {'+'.join(forms)} normalizer changes message {span.message} "
            f"({span.role}): {_spelled(content[start:end])} is encoded as "
            f"{_spelled(normalized[start:new_end])}, "
            "so the model is trained on other characters than the data holds (token texts "
            "show the data). "
            f"Normalize the data first (unicodedata.normalize({forms[-1]!r}, text)) so that what "
            "you review is what is trained.",
            ctx.tokens_in(span.content_start + start, span.content_start + end),
        )


def _spelled(text: str, most: int = 6) -> str:
    """Text with its code points, since normal forms often look alike.

    Example: "e\u0301" -> "'é' (U+0065 U+0301)"
    """
    points = " ".join(f"U+{ord(c):04X}" for c in text[:most]) + (" …" if len(text) > most else "")
    return f"{text[:40]!r} ({points})"


@check(
    "special-token-in-content",
    "warning",
    "Message content contains a special-token string that tokenized as the special token.",
    scope="rendering",
)
def special_token_in_content(ctx: LintContext) -> Iterator[Finding]:
    rendering, pattern = ctx.rendering, ctx.facts.special_pattern
    if rendering is None or pattern is None:
        return
    text = rendering.text
    for span in rendering.spans:
        # The pattern is plain literals: searching the window finds what the slice holds.
        if pattern.search(text, span.content_start, span.content_end) is None:
            continue  # the usual message: no special-token text in it
        content = text[span.content_start : span.content_end]
        names = sorted(set(pattern.findall(content)))
        region = ctx.tokens_in(span.content_start, span.content_end)
        hit = [i for i in region if rendering.input_ids[i] in ctx.facts.special_ids]
        where = f"Message {span.message} ({span.role}) contains {', '.join(names)} as text"
        if not hit:
            # Split into plain pieces here; apply_chat_template would make it the real token.
            yield ctx.finding(
                "special-token-in-content",
                f"{where}. It was tokenized as plain text here, but a whole-string tokenization "
                "(apply_chat_template) turns it into the special token: clean it from the data.",
                region,
                severity="info",
            )
            continue
        trained = any(ctx.view.trained[i] for i in hit)
        yield ctx.finding(
            "special-token-in-content",
            f"{where}, and it became the special token: the model sees a fake turn boundary"
            + (" and is trained on it" if trained else "")
            + ". Escape or remove it from the data, or tokenize content with "
            "split_special_tokens=True.",
            hit,
            severity="error" if trained else None,
        )


@check(
    "truncation-cuts-answer",
    "error",
    "max_length cut an assistant answer or its end-of-turn token (warning: dropped whole).",
    scope="rendering",
    when=engine_spoke,
)
def truncation_cuts_answer(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None or not rendering.truncated_tokens or not rendering.tokens:
        return
    cut = ctx.index().ends[-1]
    limit = f"max_length={ctx.spec.max_length if ctx.spec else None}"
    dropped_tokens = f"{rendering.truncated_tokens} tokens dropped"
    # Spans are clipped at the cut: a begun assistant turn whose end-of-turn was dropped is cut,
    # one that starts at the cut was dropped whole.
    answers = [s for s in rendering.spans if s.role == "assistant" and s.eot_end is None]
    cut_one = next((s for s in answers if s.start < cut and s.end >= cut), None)
    dropped = [s.message for s in answers if s.start >= cut]
    later = f"; assistant message(s) {_listed(dropped)} are dropped whole" if dropped else ""
    if cut_one is not None:
        yield ctx.finding(
            "truncation-cuts-answer",
            f"{limit} cuts assistant message {cut_one.message} before its end-of-turn token "
            f"({dropped_tokens}{later}): the model learns an answer that never ends. Raise "
            "max_length, or drop or split over-long conversations.",
            [len(rendering.tokens) - 1],
        )
    elif dropped:
        yield ctx.finding(
            "truncation-cuts-answer",
            f"{limit} drops assistant message(s) {_listed(dropped)} whole ({dropped_tokens}): "
            "they are never trained, and the row ends in a prompt that no answer follows. "
            "Raise max_length, or split the conversation into shorter rows.",
            [len(rendering.tokens) - 1],
            severity="warning",
        )


def _listed(numbers: list[int], most: int = 8) -> str:
    """Example: [3, 5] -> "3, 5"; eleven numbers -> the first eight, then "… (11 in all)" """
    shown = ", ".join(map(str, numbers[:most]))
    return shown if len(numbers) <= most else f"{shown} … ({len(numbers)} in all)"


@check(
    "generation-prompt-in-training",
    "error",
    "A training render ends with an open assistant header.",
    scope="rendering",
)
def generation_prompt_in_training(ctx: LintContext) -> Iterator[Finding]:
    rendering, spec = ctx.rendering, ctx.spec
    if rendering is None:
        return
    tail_start = max(map(_END_OF, rendering.spans), default=0)
    tail = rendering.text[tail_start:].strip()
    if not tail:  # the usual case: nothing after the last message
        return
    if spec is not None and spec.add_generation_prompt:
        conversation = ctx.conversation or []
        if conversation and conversation[-1].role == "assistant":
            where = ctx.tokens_in(tail_start, len(rendering.text))
            yield ctx.finding(
                "generation-prompt-in-training",
                f"add_generation_prompt is ticked on a training render: after the last answer "
                f"the text ends with the inference prompt {tail!r}. {_consequence(ctx, where)} "
                "Untick add_generation_prompt for training data; it is for inference prompts "
                "(conversations that end with a user message).",
                where,
            )
        return
    header = _assistant_header(ctx)
    if header and tail.endswith(header.strip()):
        where = ctx.tokens_in(tail_start, len(rendering.text))
        yield ctx.finding(
            "generation-prompt-in-training",
            f"The training text ends with an open assistant header {header.strip()!r} although "
            f"add_generation_prompt is false: the template appends it unconditionally. "
            f"{_consequence(ctx, where)} Fix the template to emit it only "
            "`{% if add_generation_prompt %}`.",
            where,
        )


def _consequence(ctx: LintContext, where: list[int]) -> str:
    if not (ctx.train_on == "all" and any(ctx.view.trained[i] for i in where)):
        return (
            "Its tokens are untrained here, but every sample then ends in a turn nobody answers: "
            "packing puts the next sample right after it, and a collator that trains whole "
            "sequences teaches the model to open a new turn after its own end-of-turn."
        )
    return (
        "train_on=all trains it: the model learns to open a new assistant turn after finishing one."
    )


def _assistant_header(ctx: LintContext) -> str | None:
    assert ctx.rendering is not None
    markers = ctx.turns()
    if "assistant" in markers.header_texts:
        return markers.header_texts["assistant"]
    if ctx.renderer is None or ctx.spec is None or ctx.dialect is None:
        return None
    probed = probe_markers(ctx.tokenizer, ctx.dialect, ctx.spec, ctx.renderer)
    return probed.header_texts.get("assistant") if probed else None


@check(
    "default-system-injected",
    "warning",
    "The template added a system prompt that is not in the messages.",
    scope="rendering",
)
def default_system_injected(ctx: LintContext) -> Iterator[Finding]:
    rendering, conversation = ctx.rendering, ctx.conversation
    if rendering is None or not rendering.spans:
        return
    if conversation and any(m.role == "system" for m in conversation):
        return
    # Everything the template wrote before the first message's content: markers only, normally.
    first = min(s.content_start for s in rendering.spans)
    before = rendering.text[:first]
    if len(_plain_words(ctx, before)) < MIN_PROSE_WORDS:
        return
    tools = ctx.spec.tools if ctx.spec is not None else None
    names = [n for n in map(_tool_name, tools or ()) if n]
    if any(n in before for n in names):
        return  # the block that lists the tools the row was given: asked for, not a default
    if before.startswith("<|start|>system<|message|>"):
        # Harmony (gpt-oss) writes its system message always: a system message of the
        # conversation becomes the developer message instead, so there is nothing to remove.
        yield ctx.finding(
            "default-system-injected",
            f"The harmony template wrote its system message {_quoted(_prose(ctx, before)[0])} "
            "before the first message, as it does for every conversation (a system message of "
            "yours becomes the developer message). Its knowledge cutoff, date and reasoning "
            "effort are in every sample: set them through chat_template_kwargs "
            "(reasoning_effort, model_identity) if they should differ.",
            ctx.tokens_in(0, first),
            severity="info",
        )
        return
    yield ctx.finding(
        "default-system-injected",
        f"The template wrote {' then '.join(map(_quoted, _prose(ctx, before)))} before the "
        "first message, though the conversation has no system message: a default system prompt. "
        "Every sample then trains with it; pass an explicit system message or remove the default "
        "from the template.",
        ctx.tokens_in(0, first),
    )


def _tool_name(tool: Any) -> str | None:
    """A tool spec's function name (the spec holds each tool as JSON text)."""
    if isinstance(tool, str):
        try:
            tool = json.loads(tool)
        except ValueError:
            return None
    function = tool.get("function", tool) if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def _plain_words(ctx: LintContext, text: str) -> list[str]:
    """Words of `text` that are not special tokens, role names or marker words ([INST], ###).

    Example: "<|im_start|>system\nYou are SmolLM<|im_end|>" -> ["You", "are", "SmolLM"]
    """
    if ctx.facts.special_pattern is not None:
        text = ctx.facts.special_pattern.sub(" ", text)
    return [
        w
        for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text)
        if not ROLE_WORDS.fullmatch(w) and not w.isupper()
    ]


def _prose(ctx: LintContext, text: str) -> list[str]:
    """The pieces of `text` between special tokens that hold prose, each as the template wrote
    it, less a leading role name ("system\n").

    Example: "<|im_start|>system\nYou are a helpful AI<|im_end|>\n<|im_start|>user\n"
             -> ["You are a helpful AI"]
    """
    pieces = ctx.facts.special_pattern.split(text) if ctx.facts.special_pattern else [text]
    kept = []
    for piece in pieces:
        piece = ROLE_HEADER.sub("", piece).strip()
        if len(_plain_words(ctx, piece)) >= MIN_PROSE_WORDS:
            kept.append(piece)
    return kept or [text.strip()]


def _quoted(text: str, most: int = 160) -> str:
    """`text` quoted; cut at the end with "…" when long, never in the middle.

    Example: _quoted("You are a helpful AI assistant") -> "'You are a helpful AI assistant'"
    """
    return repr(text) if len(text) <= most else repr(text[:most].rstrip()) + "…"


@check(
    "dialect-mismatch",
    "error",
    "The dialect's role markers are not single special tokens in this tokenizer, or its "
    "end-of-turn token is not the tokenizer's EOS.",
    scope="rendering",
)
def dialect_mismatch(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None:
        return
    markers = ctx.turns()
    key = ("dialect-mismatch", tuple(markers.header_texts.values()), markers.eot_text)
    broken: list[str] = ctx.shared(key, lambda: _not_tokens(ctx, key[1], key[2]))
    if broken:
        where = [i for m in broken for i in _occurrences(ctx, m)]
        yield ctx.finding(
            "dialect-mismatch",
            f"The markers {', '.join(broken)} of dialect {ctx.dialect!r} are not tokens of this "
            "tokenizer: they split into ordinary pieces, so the model never saw them. Use the "
            "dialect this model was trained with (often 'tokenizer').",
            where,
        )
    eos = ctx.facts.eos_id
    if len(markers.eot_ids) == 1 and eos is not None and eos not in markers.eot_ids:
        yield from _eot_not_eos(ctx, markers.eot_ids)  # (asked here first: every row asks)


def _not_tokens(ctx: LintContext, headers: tuple[str, ...], eot_text: str | None) -> list[str]:
    """The special-looking strings in the markers that this tokenizer splits into several
    tokens (a property of the tokenizer and the marker texts, not of the row)."""
    pieces = set(headers)
    if eot_text:
        pieces.add(eot_text)
    return sorted(
        {
            m
            for text in pieces
            for m in SPECIAL_LOOKING.findall(text)
            if m not in ctx.facts.special_by_text and len(ctx.facts.encode(ctx.tokenizer, m)) > 1
        }
    )


def _occurrences(ctx: LintContext, marker: str) -> list[int]:
    assert ctx.rendering is not None
    text, found = ctx.rendering.text, []
    for m in re.finditer(re.escape(marker), text):
        found.extend(ctx.tokens_in(m.start(), m.end()))
    return found[:64]


def _eot_not_eos(ctx: LintContext, eot_ids: frozenset[int]) -> Iterator[Finding]:
    eos = ctx.facts.eos_id
    if len(eot_ids) != 1 or eos is None or eos in eot_ids:
        return
    (eot,) = eot_ids
    where = [i for i, tid in enumerate(ctx.view.ids) if tid == eot]
    severity: Severity = "info" if eot in ctx.facts.special_ids else "warning"
    yield ctx.finding(
        "dialect-mismatch",
        f"Turns end with {ctx.facts.token_text(ctx.tokenizer, eot)} but the tokenizer's EOS is "
        f"{ctx.facts.token_text(ctx.tokenizer, eos)}: generation stops only where the serving "
        "stack also stops on the end-of-turn token. Set eos_token (or generation_config's "
        "eos_token_id) to it when you save the fine-tuned model.",
        where,
        severity=severity,
    )


@check(
    "response-template-context",
    "warning",
    "The assistant marker tokenizes differently alone than in context.",
    scope="rendering",
)
def response_template_context(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None:
        return
    missed: list[int] = []
    marker = None
    index = ctx.index()
    starts, ends = index.starts, index.ends
    for lead in ctx.lead_ins():
        if lead.role != "assistant":
            continue
        marker = lead.text.rstrip()  # (`lead.marker`)
        alone = ctx.facts.encode(ctx.tokenizer, marker)
        # The tokens the marker overlaps (`ctx.tokens_in`, inlined: this runs for every turn).
        first, stop = bisect_right(ends, lead.start), bisect_left(starts, lead.start + len(marker))
        if first >= stop or not alone:
            continue
        if ctx.search().find(alone, first, stop) == -1:
            missed.extend(range(first, stop))
    if missed:
        yield ctx.finding(
            "response-template-context",
            f"The assistant marker {marker!r} tokenizes differently alone than inside the "
            "conversation: a completion-only collator that searches for its ids misses these "
            "turns. Pass the marker's in-context token ids to the collator, or mask by "
            "message attribution instead.",
            missed,
        )
