"""Trained = generated (DESIGN.md §4), worked out from prefix renders alone, without Maskscope.

For each assistant message k of a conversation rendered as T = render(messages):
- its generated text starts where the inference prompt P_k = render(messages[:k],
  add_generation_prompt=True) ends, when T starts with P_k. When it does not, the template's
  training text disagrees with its inference prompt: the turn starts where they part (or after
  the end of the prompt, where T holds it a little further on), and says so (`prompt_mismatch`);
- it ends at the end of the first end-of-turn/stop string (STOP_STRINGS and the tokenizer's EOS)
  found at or after the start, but no later than where the next message's text begins. That bound
  is found by rendering the whole conversation again with the next message's content replaced by
  a sentinel: the two texts part where that content begins. A turn without a stop string before
  the bound ends where it ends when rendered as the last message (`marker` is None: the template
  writes no end-of-turn, so the reference can only guess what the model generates);
- GLM-4 (text opening with `[gMASK]`) also stops on the next role's header, `<|user|>` or
  `<|observation|>`, as its generation config does;
- harmony (gpt-oss, whose text holds `<|channel|>`) stops on `<|return|>`, `<|call|>` and
  `<|end|>`; there, and in Muse's ATEM format, a marker followed at once by `<|start|>assistant`
  continues the same generation: the model writes the next channel's header itself.
Where two renders part, they part before a tag both merely begin (`</s>` and `<|user|>`).
Tool results are never part of a turn: their messages are not assistant messages.

A token is trained when its character span overlaps a generated span (transformers' rule for
`return_assistant_tokens_mask`).

Example: for ChatML, T = P_1 + "Hello<|im_end|>\\n" where
         P_1 = "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n", so turn 1 is
         "Hello<|im_end|>": the "\\n" after the marker is glue the model never writes.

Design concession: the bound relies on the template writing the next message's content (or
something that changes with it); when it writes none of the later contents, the bound is the end
of the text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, Any]]
# (messages, add_generation_prompt) -> the template's text
Render = Callable[[Messages, bool], str]

# End-of-turn and stop strings of the model families in the zoo. Each ends a turn, so the model
# generates it; anything the template writes after it (newlines, the next header) is glue.
STOP_STRINGS: tuple[str, ...] = (
    "<|im_end|>",  # ChatML: Qwen, SmolLM, LFM2, Nemotron, Phi-4, Falcon-H1
    "<|eot_id|>",  # Llama 3
    "<|eom_id|>",  # Llama 3.1, after a tool call
    "<|eot|>",  # Llama 4
    "<|eom|>",  # Llama 4 after a tool call, Jamba
    "<|end|>",  # Phi-3
    "<end_of_turn>",  # Gemma 1-3
    "<turn|>",  # Gemma 4
    "</s>",  # Llama 2, Mistral
    "<|END_OF_TURN_TOKEN|>",  # Cohere, Aya, Command A
    "<｜end▁of▁sentence｜>",  # DeepSeek
    "<|return|>",  # gpt-oss, last answer
    "<|call|>",  # gpt-oss, tool call
    "<|endoftext|>",
    "<end_of_utterance>",  # Idefics3, SmolVLM
    "[|endofturn|]",  # EXAONE
)
# GLM-4 (text opening with [gMASK]) has no end-of-turn marker: it stops by generating the next
# role's header. Elsewhere (Metharme, Phi-3) <|user|> is a header the model does not write.
GLM_PREFIX = "[gMASK]"
GLM_STOPS: tuple[str, ...] = ("<|user|>", "<|observation|>")
HARMONY_STOPS: tuple[str, ...] = ("<|return|>", "<|call|>", "<|end|>")
# In <|start|>-framed formats (harmony, Muse's ATEM) the model opens its own next message: a
# marker followed at once by this continues the same generation.
CONTINUES = "<|start|>assistant"
# Replaces the next message's content to find where that content begins in the text.
SENTINEL = "\u2603\u2604"
# Markup that two texts may share the opening of while they already differ: <|user|> and </s>.
TAGS = (("<", ">"), ("[", "]"))
MAX_TAG = 32


@dataclass(frozen=True)
class Turn:
    """The text the model generates for assistant message `message`: text[start:end]."""

    message: int
    start: int
    end: int
    prompt_mismatch: bool = False  # text does not start with the inference prompt
    marker: str | None = None  # the stop string that ends the turn; None: no marker found


@dataclass(frozen=True)
class Reference:
    text: str
    turns: tuple[Turn, ...]

    @property
    def spans(self) -> list[tuple[int, int]]:
        return [(t.start, t.end) for t in self.turns]


class ReferenceError(RuntimeError):
    """A prefix render the reference needs failed; the message names which."""


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix. Example: common_prefix("abc", "abd") -> 2"""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    low, high = 0, n  # a[:low] == b[:low], a[:high] != b[:high]
    while high - low > 1:
        mid = (low + high) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid
    return low


def parting(a: str, b: str) -> int:
    """Where two texts part: their common prefix, but never ending inside a tag. Where both
    continue with the same opening of different tags (`</s>` and `<|user|>`), they part where
    that tag begins.

    Example: parting("Blue.<|user|>", "Blue.</s>") -> 5; parting("ab", "abc") -> 2
    """
    n = common_prefix(a, b)
    if n == min(len(a), len(b)):
        return n
    cut = n
    for opener, closer in TAGS:
        at = a.rfind(opener, max(0, n - MAX_TAG), n)
        if at != -1 and closer not in a[at:n] and not any(c.isspace() for c in a[at:n]):
            cut = min(cut, at)
    return cut


def stop_strings(eos_token: str | None) -> tuple[str, ...]:
    """STOP_STRINGS plus the tokenizer's own EOS."""
    return STOP_STRINGS + ((eos_token,) if eos_token and eos_token not in STOP_STRINGS else ())


def _first_stop(text: str, start: int, bound: int, stops: Iterable[str]) -> tuple[int, str] | None:
    """(position, stop) of the earliest stop beginning in text[start:bound + 1], longest first."""
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop, start, bound + len(stop))
        if at != -1 and (
            best is None or at < best[0] or (at == best[0] and len(stop) > len(best[1]))
        ):
            best = (at, stop)
    return best


def _turn_end(text: str, start: int, bound: int, stops: Sequence[str]) -> tuple[int, str | None]:
    """Where the generation from `start` stops, and on which marker (None: none before bound)."""
    harmony = "<|channel|>" in text
    if harmony:
        stops = HARMONY_STOPS
    elif text.startswith(GLM_PREFIX):
        stops = (*stops, *GLM_STOPS)
    pos = start
    while True:
        found = _first_stop(text, pos, bound, stops)
        if found is None:
            return bound, None
        at, stop = found
        end = at + len(stop)
        if text.startswith(CONTINUES, end):
            pos = end
            continue
        return end, stop


def _render(render: Render, messages: Messages, generation_prompt: bool, what: str) -> str:
    try:
        return render(messages, generation_prompt)
    except Exception as exc:  # the template's own raise_exception or a Jinja error
        raise ReferenceError(f"rendering {what} failed: {exc}") from exc


def _next_message_start(render: Render, messages: Messages, text: str, k: int) -> int:
    """Where the text of the first message after k that the template writes begins."""
    for j in range(k + 1, len(messages)):
        changed = [dict(m) for m in messages]
        changed[j]["content"] = SENTINEL
        other = _render(render, changed, False, f"the conversation with message {j} changed")
        if other != text:
            return parting(text, other)
    return len(text)


def _as_last_end(render: Render, messages: Messages, text: str, k: int) -> int:
    """How far turn k's text agrees with its rendering as the conversation's last message."""
    alone = _render(render, messages[: k + 1], False, f"messages[:{k + 1}]")
    return parting(text, alone)


def _turn_start(text: str, prompt: str) -> int:
    """Where the generation begins: the end of the prompt when the text starts with it. Where
    they part, the part of the prompt the text lacks is skipped, and the longest end of the prompt
    that the text continues with right there (holding more than whitespace) is still prompt.

    Example: text "<s>[INST] Hi[/INST] Yes", prompt "<s>[INST] Sys. Hi[/INST]" -> 19
    """
    at = parting(text, prompt)
    if at == len(prompt):
        return at
    rest = prompt[at:]
    for size in range(min(len(rest), len(text) - at), 0, -1):
        seen = text[at : at + size]
        if rest.endswith(seen) and not seen.isspace():
            return at + size
    return at


def generated_turns(render: Render, messages: Messages, stops: Sequence[str]) -> Reference:
    """Every assistant turn's generated span in render(messages), by the rule above."""
    text = _render(render, messages, False, "the conversation")
    turns = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(render, messages[:k], True, f"the prompt messages[:{k}]")
        start = _turn_start(text, prompt)
        bound = _next_message_start(render, messages, text, k)
        end, marker = _turn_end(text, start, bound, stops)
        if marker is None:
            end = max(start, min(bound, _as_last_end(render, messages, text, k)))
        turns.append(Turn(k, start, end, not text.startswith(prompt), marker))
    return Reference(text, tuple(turns))


def trained_positions(
    offsets: Sequence[tuple[int, int]], spans: Iterable[tuple[int, int]]
) -> set[int]:
    """Indices of the tokens whose character span overlaps a generated span.

    Example: trained_positions([(0, 2), (2, 5), (5, 6)], [(3, 5)]) -> {1}
    """
    spans = [(a, b) for a, b in spans if b > a]
    return {
        i for i, (start, end) in enumerate(offsets) if any(start < b and end > a for a, b in spans)
    }
