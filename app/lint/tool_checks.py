"""Checks on modern conversations: tool calls, tool results, tool lists and reasoning.

Design concession: whether the template wrote a call, a tool list or a reasoning text is judged by
looking for the data's own strings (the function name, the argument keys, the tool names, the
first characters of the reasoning) in the rendered text, which works for any template without
parsing its output format; a template that rewrites them beyond recognition is reported as
dropping them. Every check first asks the messages whether they hold anything of the kind, so the
plain rows of a dataset cost one pass over their `extra` fields.

Example: SmolLM2's template on [user, assistant with tool_calls=[get_weather(...)], tool, ...]
         -> tool-calls-dropped: messages[1] is trained as an empty answer without its call
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from app.chat.messages import REASONING_FIELDS, Message
from app.chat.tokens import Finding, MessageSpan
from app.lint.context import LintContext, has_tools, holds_more_than_text, renders_think
from app.lint.registry import check
from app.lint.turn_checks import turn_tokens, turn_trained

_INLINE_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_EMPTY_THINK = re.compile(r"<think>\s*</think>")
_PROBE_CHARS = 60  # enough of a reasoning text to recognise it, short enough to survive edits


class Call(NamedTuple):
    """One tool call of the data: the message that makes it, its id, name and arguments."""

    message: int
    id: str | None
    name: str | None
    arguments: Any


def _calls_of(message: Message, k: int) -> list[Call]:
    """The tool calls of message `k`, whatever the spelling (OpenAI's `function` wrapper or not).

    Example: {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {}}}]}
             -> [Call(k, "c1", "f", {})]
    """
    raw = message.extra.get("tool_calls") if message.extra else None
    if not isinstance(raw, list):
        return []
    calls = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        function = item.get("function", item)
        function = function if isinstance(function, Mapping) else {}
        name = function.get("name")
        calls.append(
            Call(
                k,
                item.get("id") if isinstance(item.get("id"), str) else None,
                name if isinstance(name, str) and name else None,
                function.get("arguments"),
            )
        )
    return calls


def _all_calls(ctx: LintContext) -> list[Call]:
    """Every tool call of the conversation, in order; [] at once for rows without extra fields."""
    conversation = ctx.conversation
    if not conversation or not any(m.extra for m in conversation):
        return []
    found: list[Call] = ctx.cached(
        "tool-calls",
        lambda: [c for k, m in enumerate(conversation) for c in _calls_of(m, k)],
    )
    return found


def _spans(ctx: LintContext) -> dict[int, MessageSpan]:
    spans: dict[int, MessageSpan] = ctx.cached(
        "spans-by-message", lambda: {s.message: s for s in ctx.rendered().spans}
    )
    return spans


def _messages(numbers: Sequence[int]) -> str:
    return ", ".join(str(k) for k in list(dict.fromkeys(numbers))[:8])


def _argument_keys(arguments: Any) -> list[str]:
    """What of a call's arguments should show in the text: the keys of an object, or of the
    object a JSON string holds (other strings: nothing, as a template may escape them any way).

    Example: '{"city": "Paris"}' -> ["city"]; {"a": 1, "b": 2} -> ["a", "b"]; "x=1" -> []
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return []
    if isinstance(arguments, Mapping):
        return [str(key) for key in arguments]
    return []


def _written(call: Call, text: str) -> bool:
    """Whether `text` (the call's turn) holds the call's name and, if it has any, one of its
    argument keys."""
    if call.name is not None and call.name not in text:
        return False
    keys = _argument_keys(call.arguments)
    return not keys or any(key in text for key in keys)


@check(
    "tool-calls-dropped",
    "error",
    "The template leaves out the tool calls of an assistant message: the model is trained on an "
    "answer without its call (warning when the turn is untrained).",
    scope="rendering",
    when=holds_more_than_text,
)
def tool_calls_dropped(ctx: LintContext) -> Iterator[Finding]:
    calls = _all_calls(ctx)
    if not calls or ctx.rendering is None:
        return
    text, spans = ctx.rendering.text, _spans(ctx)
    dropped: dict[int, list[Call]] = {}
    for call in calls:
        span = spans.get(call.message)
        if span is not None and not _written(call, text[span.start : span.end]):
            dropped.setdefault(call.message, []).append(call)
    if not dropped:
        return
    trained = [k for k in dropped if turn_trained(ctx, spans[k])]
    names = sorted({c.name or "(unnamed)" for group in dropped.values() for c in group})
    said = (
        f"The template does not write the tool calls of assistant message(s) "
        f"{_messages(list(dropped))} ({', '.join(names[:6])}): the text of those turns lacks "
        "the function name or its arguments."
    )
    if trained:
        said += (
            f" Message(s) {_messages(trained)} are trained all the same, so the model learns to "
            "answer a request for a tool with what is left (often an empty answer and its "
            "end-of-turn marker) and never learns to call."
        )
    else:
        said += (
            " Those turns are untrained, but the tool results that follow answer a call the "
            "model never sees."
        )
    yield ctx.finding(
        "tool-calls-dropped",
        said + " Use a template that renders `tool_calls` (the model's own, if it was tuned for "
        "tools), or drop these rows.",
        [i for k in dropped for i in turn_tokens(ctx, spans[k])],
        severity=None if trained else "warning",
    )


def _tool_names(tools: Any) -> list[str]:
    """The function names of a `tools` list (OpenAI's `function` wrapper or bare; each spec an
    object or its JSON text, as RenderSpec stores it).

    Example: [{"type": "function", "function": {"name": "get_weather"}}] -> ["get_weather"]
    """
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        return []
    names = []
    for spec in tools:
        try:
            tool = json.loads(spec) if isinstance(spec, str) else spec
        except ValueError:
            continue
        function = tool.get("function", tool) if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


@check(
    "tools-not-rendered",
    "warning",
    "Tools are given, but the template writes none of their names: the model never sees the "
    "tool list it is trained to call from.",
    scope="rendering",
    when=has_tools,
)
def tools_not_rendered(ctx: LintContext) -> Iterator[Finding]:
    names = _tool_names(ctx.spec.tools if ctx.spec is not None else None)
    if not names or ctx.rendering is None:
        return
    text = ctx.rendering.text
    if any(name in text for name in names):
        return
    yield ctx.finding(
        "tools-not-rendered",
        f"The request gives {len(names)} tool(s) ({', '.join(names[:6])}), but the rendered "
        "text names none of them: this template does not write `tools`, so the model is trained "
        "without the tool list that the inference prompt will carry, and learns to call (or not "
        "call) tools it was never shown. Use a template that renders `tools` (the model's own, "
        "if it was tuned for tools), or put the tool descriptions in the system message.",
    )


def _reasoning_of(message: Message) -> str | None:
    """The reasoning a message carries: a reasoning field, or an inline <think>…</think>.

    Example: Message("assistant", "<think>2+2=4</think>4") -> "2+2=4"
    """
    for key in REASONING_FIELDS:
        value = message.extra.get(key) if message.extra else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    if "<think>" in message.content:
        inline = _INLINE_THINK.search(message.content)
        if inline is not None and inline.group(1).strip():
            return inline.group(1).strip()
    return None


@check(
    "reasoning-dropped",
    "warning",
    "The template leaves out the reasoning of an assistant message (Qwen3 drops it before the "
    "last user message): those turns train answers without their reasoning (info when they are "
    "untrained).",
    scope="rendering",
    when=holds_more_than_text,
)
def reasoning_dropped(ctx: LintContext) -> Iterator[Finding]:
    conversation, rendering = ctx.conversation, ctx.rendering
    if not conversation or rendering is None:
        return
    if not any(m.extra or "<think>" in m.content for m in conversation if m.role == "assistant"):
        return
    spans, text = _spans(ctx), rendering.text
    dropped: list[int] = []
    kept: list[int] = []
    for k, message in enumerate(conversation):
        reasoning = _reasoning_of(message) if message.role == "assistant" else None
        span = spans.get(k)
        if reasoning and span is not None:
            found = reasoning[:_PROBE_CHARS] in text[span.start : span.end]
            (kept if found else dropped).append(k)
    if not dropped:
        return
    trained = [k for k in dropped if turn_trained(ctx, spans[k])]
    yield ctx.finding(
        "reasoning-dropped",
        _reasoning_dropped_said(dropped, trained, kept),
        [i for k in (trained or dropped) for i in turn_tokens(ctx, spans[k])],
        severity=None if trained else "info",
    )


def _reasoning_dropped_said(dropped: list[int], trained: list[int], kept: list[int]) -> str:
    """The advice for reasoning the template left out: some turns' (Qwen3 keeps only the turns
    after the last user message) or every turn's (a template that writes no reasoning)."""
    said = (
        f"The template leaves out the reasoning of assistant message(s) {_messages(dropped)} "
        "(the data has it; the rendered turns do not)"
    )
    if kept:
        said += f" but keeps that of message(s) {_messages(kept)}"
    if not trained:
        return said + "; they are untrained context, so only the prompt differs from the data."
    said += f", and message(s) {_messages(trained)} are trained: they teach the model to give "
    if kept:
        return said + (
            "those answers without thinking first, while the later answers teach it to think. "
            "Split the conversation so that each reasoning turn is the last one of its row, "
            "train only the last answer (train_on=last_assistant), or use a template that keeps "
            "the reasoning of every turn."
        )
    return said + (
        "those answers without the reasoning that led to them. Use a template that renders "
        "`reasoning_content` (a thinking model's own), or drop the reasoning from the data if "
        "the model should not think."
    )


def _generated(span: MessageSpan) -> tuple[int, int]:
    """Where an assistant turn's own text lies: from its start (a prompt's `<think>\\n`
    included) to its end-of-turn marker."""
    end = span.eot_start if span.eot_start is not None else span.end
    return span.start, end


def _think_problem(text: str, message: Message) -> tuple[int, str] | None:
    """Where a turn's think block goes wrong and how: an unclosed `<think>`, or a closed one with
    nothing after it although the message has content (so its answer went inside).

    Example: ("<think>so 4.", Message("assistant", "<think>so 4.")) -> (0, "is never closed")
    """
    opened = text.rfind("<think>")
    closed = text.rfind("</think>")
    if opened != -1 and closed < opened:
        return opened, "is never closed"
    if closed == -1 or text[closed + len("</think>") :].strip():
        return None
    if not message.content.strip() or _calls_of(message, 0):
        return None  # an empty message is empty-answer's to report
    return max(opened, 0), "has nothing after it"


@check(
    "answer-in-think",
    "warning",
    "A trained assistant turn opens a think block it never closes, or puts its whole answer "
    "inside the think block: the model learns to answer inside its reasoning.",
    scope="rendering",
    when=renders_think,
)
def answer_in_think(ctx: LintContext) -> Iterator[Finding]:
    conversation, rendering = ctx.conversation, ctx.rendering
    if not conversation or rendering is None or "think>" not in rendering.text:
        return
    text = rendering.text
    for span in rendering.spans:
        if span.role != "assistant" or span.message >= len(conversation):
            continue
        lo, hi = _generated(span)
        problem = _think_problem(text[lo:hi], conversation[span.message])
        if problem is None or not turn_trained(ctx, span):
            continue
        at, how = problem
        yield ctx.finding(
            "answer-in-think",
            f"The think block of assistant message {span.message} {how}, so its answer is "
            "trained as reasoning: the model learns to answer inside <think>, and a parser that "
            "splits on </think> finds no answer. Close the block with </think> before the answer "
            "(or move the reasoning to `reasoning_content`).",
            ctx.tokens_in(lo + at, hi),
        )


@check(
    "empty-think-trained",
    "info",
    "An empty think block (<think></think>) is trained: rows like this teach a thinking model "
    "to skip thinking.",
    scope="rendering",
    when=renders_think,
)
def empty_think_trained(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    if rendering is None or "</think>" not in rendering.text:
        return
    trained, tokens, spans = ctx.view.trained, rendering.tokens, _spans(ctx)
    turns: list[int] = []
    prompted: list[int] = []  # turns whose block the generation prompt writes
    found: list[int] = []
    for m in _EMPTY_THINK.finditer(rendering.text):
        hit = [i for i in ctx.tokens_in(m.start(), m.end()) if trained[i]]
        owner = next((tokens[i].message for i in hit if tokens[i].message is not None), None)
        if not hit or owner is None:
            continue
        found += hit
        turns.append(owner)
        start = spans[owner].gen_start if owner in spans else None
        if start is not None and m.start() < start:
            prompted.append(owner)
    if not found:
        return
    yield ctx.finding(
        "empty-think-trained",
        f"{len(turns)} empty think block(s) are trained (assistant message(s) "
        f"{_messages(turns)}). "
        + (
            f"In message(s) {_messages(prompted)} the generation prompt already writes the "
            "block, so the model never generates it; it is trained there because the "
            "template's {% generation %} tags or train_on include it (see "
            "tags-differ-from-generated). "
            if prompted
            else "That is right for this template: its generation prompt does not write the "
            "block, so the model writes it at inference. "
        )
        + "But each row with an empty block teaches a thinking model to skip thinking; if the "
        "model should think, give those turns their reasoning, and keep the rows without it "
        "for the thinking-off mode (enable_thinking=false), where the prompt writes the block.",
        found,
    )


class _Result(NamedTuple):
    message: int
    id: str | None
    name: str | None


def _unmatched(
    conversation: Sequence[Message], calls: list[Call]
) -> tuple[list[_Result], list[Call]]:
    """Tool results that answer no call, and calls that no result answers, matched by
    tool_call_id where the data has ids, else by name, else in order. A call in the last message
    is awaiting its result (the row ends there) and is not counted.

    Example: [call f (id c1), tool (id c2)] -> ([tool c2], [call f])
    """
    pending: list[Call] = []
    orphans: list[_Result] = []
    by_message: dict[int, list[Call]] = {}
    for call in calls:
        by_message.setdefault(call.message, []).append(call)
    for k, message in enumerate(conversation):
        pending += by_message.get(k, [])
        if message.role != "tool":
            continue
        tid, name = message.extra.get("tool_call_id"), message.extra.get("name")
        result = _Result(
            k, tid if isinstance(tid, str) else None, name if isinstance(name, str) else None
        )
        match = _match(result, pending)
        if match is None:
            orphans.append(result)
        else:
            pending.remove(match)
    last = len(conversation) - 1
    return orphans, [c for c in pending if c.message != last]


def _match(result: _Result, pending: list[Call]) -> Call | None:
    if result.id is not None and any(c.id for c in pending):
        return next((c for c in pending if c.id == result.id), None)
    if result.name is not None and any(c.name for c in pending):
        return next((c for c in pending if c.name == result.name), None)
    return pending[0] if pending else None


@check(
    "tool-call-unmatched",
    "warning",
    "A tool result answers no call, or a call gets no result before the conversation goes on.",
    scope="rendering",
    when=holds_more_than_text,
)
def tool_call_unmatched(ctx: LintContext) -> Iterator[Finding]:
    conversation = ctx.conversation
    if not conversation or not any(m.extra or m.role == "tool" for m in conversation):
        return
    orphans, unanswered = _unmatched(conversation, _all_calls(ctx))
    spans = _spans(ctx) if ctx.rendering is not None else {}

    def where(k: int) -> list[int]:
        span = spans.get(k)
        return [] if span is None else ctx.tokens_in(span.start, span.end)

    for result in orphans:
        ident = f" (tool_call_id {result.id!r})" if result.id else ""
        yield ctx.finding(
            "tool-call-unmatched",
            f"messages[{result.message}] (tool){ident} answers no tool call: no earlier "
            "assistant message makes a call it could be the result of. The model is trained "
            "on answers that follow tool output nobody asked for. Add the missing call, or fix "
            "the tool_call_id.",
            where(result.message),
        )
    for call in unanswered:
        ident = f" (id {call.id!r})" if call.id else ""
        yield ctx.finding(
            "tool-call-unmatched",
            f"messages[{call.message}] calls {call.name or 'a tool'}{ident}, but no tool message "
            "answers it before the conversation goes on: the model is trained to carry on as if "
            "it had a result it never got. Add the tool's result after the call, or drop the "
            "call.",
            where(call.message),
        )


@check(
    "tool-arguments-mixed",
    "info",
    "Tool-call arguments are JSON strings in some calls and objects in others.",
    scope="rendering",
    when=holds_more_than_text,
)
def tool_arguments_mixed(ctx: LintContext) -> Iterator[Finding]:
    calls = _all_calls(ctx)
    if len(calls) < 2:
        return
    strings = [c.message for c in calls if isinstance(c.arguments, str)]
    objects = [c.message for c in calls if isinstance(c.arguments, Mapping)]
    if not strings or not objects:
        return
    yield ctx.finding(
        "tool-arguments-mixed",
        f"Tool-call arguments are JSON strings in message(s) {_messages(strings)} and objects in "
        f"message(s) {_messages(objects)}. Templates that write `arguments | tojson` encode a "
        'string a second time (`"{\\"city\\": ...}"`), so one conversation can teach two '
        "formats for the same call; others write each kind differently. Convert them to one "
        "kind (objects, as transformers documents) before training.",
    )


@check(
    "tool-call-eot-untrained",
    "error",
    "A trained assistant turn that calls a tool has its end-of-turn marker untrained: the "
    "model never learns to stop after a call and wait for the result.",
    scope="rendering",
    when=holds_more_than_text,
)
def tool_call_eot_untrained(ctx: LintContext) -> Iterator[Finding]:
    calls = _all_calls(ctx)
    if not calls or ctx.rendering is None:
        return
    spans, trained = _spans(ctx), ctx.view.trained
    silent = []
    for k in dict.fromkeys(c.message for c in calls):
        span = spans.get(k)
        if span is None or span.eot_start is None or span.eot_end is None:
            continue  # no marker at all is no-end-of-turn's to report
        eot = ctx.tokens_in(span.eot_start, span.eot_end)
        if eot and not any(trained[i] for i in eot) and turn_trained(ctx, span):
            silent.append((k, eot))
    if not silent:
        return
    yield ctx.finding(
        "tool-call-eot-untrained",
        f"Assistant message(s) {_messages([k for k, _ in silent])} call a tool and are trained, "
        "but the end-of-turn marker after the call is not: the model never learns to stop "
        "after a call, so at inference it goes on to write the tool's result itself instead of "
        "handing over to the tool. Train the end-of-turn marker of tool-call turns "
        "(train_on_eot=true).",
        [i for _, eot in silent for i in eot],
    )
