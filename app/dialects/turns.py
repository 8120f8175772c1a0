"""What the model generates in each assistant turn of a Jinja template: trained = generated.

At inference the model is handed the generation prompt (what `add_generation_prompt=True`
appends) and writes until it emits its end-of-turn marker. So an assistant turn's generated text
starts where the template's generation prompt ends inside that turn, learned once per template
from a probe (app.templating.tracking.Cue), and ends with the turn's end-of-turn marker, found as
text, whether the tokenizer has it as one special token or splits it. Inside that stretch the
parts are told apart (reasoning, tool calls, content, markup) so views can shade them.

Example: ChatML "<|im_start|>assistant\\nHi<|im_end|>\\n", cue head "<|im_start|>assistant\\n":
         generated "Hi<|im_end|>", eot "<|im_end|>", parts [content "Hi"].

Design concession: a turn's end-of-turn marker is the last known end marker inside the turn's own
output (harmony writes `<|end|>` between channels and the model goes on to `<|return|>`), else a
role marker that opens the next turn right after it (GLM's `<|user|>`, which the model emits to
stop). A template that writes neither teaches no stop: the turn then ends with its content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from app.chat.masking import subtract
from app.chat.messages import REASONING_FIELDS, Message
from app.chat.tokens import MessageSpan
from app.templating.tracking import Cue

# End-of-turn markers of the families in use, as text (matched even when split into tokens).
END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|eot|>",
    "<|eom|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<turn|>",
    "</s>",
    "<|END_OF_TURN_TOKEN|>",
    "<|END_RESPONSE|>",
    "<｜end▁of▁sentence｜>",
    "<|end▁of▁sentence|>",
    "[|endofturn|]",
    "<|endoftext|>",
    "<|end_of_text|>",
)
# Formats whose turns end with the next role's marker, which the model emits to stop (GLM's
# generation config stops on `<|user|>` and `<|observation|>`), keyed by their assistant header.
_NEXT_STOPS = {"<|assistant|>": re.compile(r"\s*(<\|user\|>|<\|observation\|>|<\|system\|>)")}
# Tool results some templates write inside the assistant's own turn (Gemma 4): the model stops
# at the opener, which it generates; what follows up to the closer is the tool's.
_TOOL_OPENERS = ("tool_response>", "<｜tool▁output▁begin｜>", "<tool_result>", "[TOOL_RESULTS]")
_TOOL_RESULTS = re.compile(
    r"(<\|tool_response>|<tool_response>|<｜tool▁output▁begin｜>|<tool_result>|\[TOOL_RESULTS\])"
    r".*?(<tool_response\|>|</tool_response>|<｜tool▁output▁end｜>|</tool_result>|\[/TOOL_RESULTS\])",
    re.DOTALL,
)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_ANALYSIS = re.compile(r"<\|channel\|>analysis<\|message\|>.*?(?:<\|end\|>|$)", re.DOTALL)
_SPACES = re.compile(r"\s*")
_OPENER = re.compile(r"<[^<>\s/]{1,40}>\n?$")


class Scan(NamedTuple):
    """What a rendered text holds at all, looked up once so turns skip the searches they need
    not make."""

    think: bool
    analysis: bool
    tool_results: bool

    @classmethod
    def of(cls, text: str) -> Scan:
        return cls(
            "<think>" in text,
            "<|channel|>analysis" in text,
            any(opener in text for opener in _TOOL_OPENERS),
        )


class Turn(NamedTuple):
    """An assistant turn's generated stretch [start, end), its end-of-turn marker, and the tool
    results inside it that the model does not write."""

    start: int
    end: int
    eot: tuple[int, int] | None
    holes: list[tuple[int, int]]


@lru_cache(maxsize=32)
def end_pattern(extra: frozenset[str]) -> re.Pattern[str]:
    """The end markers (the known ones and a tokenizer's own), longest first."""
    texts = sorted({*END_MARKERS, *(t for t in extra if t)}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, texts)))


def generated_turn(
    text: str,
    own: Sequence[tuple[int, int]],
    span: MessageSpan,
    cue: Cue | None,
    ends: re.Pattern[str],
    scan: Scan,
    after_tool: bool = False,
) -> Turn:
    """The generated stretch of an assistant message whose own output chunks are `own`
    (`after_tool`: the message before it is a tool result; `scan`: what the whole text holds)."""
    r0, hi = own[0][0], own[-1][1]
    if cue is not None and after_tool and cue.after_tool is not None:
        cue = cue.after_tool
    start = _start(text, r0, cue) if cue is not None else span.content_start
    start = min(start, hi)
    eot = _last_end(ends, text, start, hi)
    if eot is None:  # closed right after its own output (a final EOS, a close-late template)
        m = _SPACES.match(text, hi)
        after = ends.match(text, m.end() if m else hi)
        eot = after.span() if after else None
    if eot is None and cue is not None:
        stops = next((p for h, p in _NEXT_STOPS.items() if h in cue.head), None)
        m = stops.match(text, hi) if stops is not None else None
        eot = m.span(1) if m else None
    if eot is not None:
        end = eot[1]
    else:
        content_end = span.content_end if span.content_end > start else start
        end = min(max(content_end, start + len(text[start:hi].rstrip())), hi)
    holes = (
        [(m.end(1), m.end()) for m in _TOOL_RESULTS.finditer(text, start, end)]
        if scan.tool_results
        else []
    )
    return Turn(start, end, eot, holes)


def _start(text: str, r0: int, cue: Cue) -> int:
    head, back = cue.head, cue.back
    if head:
        at = r0 + (len(head) if text.startswith(head, r0) else _common(head, text, r0))
    elif back and text.endswith(back, 0, r0):
        at = r0 - len(back)
    else:
        at = r0
    # What the prompt writes beyond the answered probe's text (`<think>\n` of a prompt whose
    # training text writes `<think></think>`) is prompt wherever the text has it too.
    if not cue.missing:
        return at
    n = _common(cue.missing, text, at)
    while 0 < n < len(cue.missing) and cue.missing[n - 1] not in "\n >":
        n -= 1  # only up to a clean edge: `<|` of the answer's own `<|tool_call>` is not prompt
    return at + n


def _common(a: str, text: str, at: int) -> int:
    n = 0
    for x, y in zip(a, text[at : at + len(a)], strict=False):
        if x != y:
            break
        n += 1
    return n


def _last_end(ends: re.Pattern[str], text: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The last end marker wholly inside text[lo:hi]: looked for near the end first, where it
    almost always is (only the glue follows it), then, if none is there, everywhere."""
    for a in (max(lo, hi - 64), lo):
        last = None
        for m in ends.finditer(text, a, hi):
            last = m
        if last is not None:
            return last.span()
        if a == lo:
            break
    return None


def turn_parts(
    text: str, turn: Turn, span: MessageSpan, message: Message, scan: Scan, found: bool = True
) -> list[tuple[int, int, str]]:
    """The reasoning, tool-call and content ranges inside a generated turn (the rest is markup:
    headers, channels, the end-of-turn marker). `found`: whether the message's content was
    located; where a template rewrote it, what is left of the turn is its content."""
    lo, hi = turn.start, turn.eot[0] if turn.eot else turn.end
    parts: list[tuple[int, int, str]] = [(a, b, "content") for a, b in turn.holes]
    for pattern, present in ((_THINK, scan.think), (_ANALYSIS, scan.analysis)):
        if not present:
            continue
        for m in pattern.finditer(text, lo, hi):
            if m.end() > m.start():
                parts.append((m.start(), m.end(), "reasoning"))
    if not parts and message.extra:
        reasoning = next(
            (message.extra.get(k) for k in REASONING_FIELDS if message.extra.get(k)), None
        )
        if isinstance(reasoning, str) and reasoning.strip():
            at = text.find(reasoning.strip(), lo, hi)
            if at != -1:
                parts.append((at, at + len(reasoning.strip()), "reasoning"))
    calls = _call_start(text, message, lo, hi, span)
    if calls is not None:
        stop = min([hi, *(a for a, _ in turn.holes if a > calls)])
        parts.append((calls, stop, "tool_call"))
    c0, c1 = (max(span.content_start, lo), min(span.content_end, hi)) if found else (lo, hi)
    if c1 > c0:
        parts.extend(_minus((c0, c1), parts, "content"))
    return sorted(parts)


def _call_start(text: str, message: Message, lo: int, hi: int, span: MessageSpan) -> int | None:
    calls = message.extra.get("tool_calls") if message.extra else None
    if not calls or not isinstance(calls, list):
        return None
    first = calls[0]
    function = first.get("function", first) if isinstance(first, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        return None
    after = span.content_end if span.content_end > span.content_start else lo
    at = text.find(name, max(lo, after), hi)
    if at == -1:
        at = text.find(name, lo, hi)
    if at == -1:
        return None
    line = max(text.rfind("\n", lo, at) + 1, lo)
    opener = _OPENER.search(text, lo, line)  # a tag on the line before that opens the call
    return opener.start() if opener is not None else line


def _minus(
    rng: tuple[int, int], others: Sequence[tuple[int, int, str]], part: str
) -> list[tuple[int, int, str]]:
    pieces = [rng]
    for a, b, _ in others:
        pieces = subtract(pieces, a, b)
    return [(s, e, part) for s, e in pieces if e > s]


def injected_prefix(
    text: str, first: MessageSpan, ends: re.Pattern[str], bos: int
) -> tuple[int, int] | None:
    """A turn the template writes on its own before the first message (a default system prompt,
    SmolLM2's and Qwen's): text from after the BOS to the end of a complete turn (its end marker
    and the glue after it) that lies before the first message's content."""
    last = _last_end(ends, text, bos, first.content_start)
    if last is None:
        return None
    end = last[1]
    while end < first.content_start and text[end] in "\n ":
        end += 1
    body = text[bos:end].strip()
    if not body or ends.fullmatch(body):
        return None
    return bos, end
