"""The built-in dialects, each a few lines that follow its reference formatting.

- chatml: the official ChatML templates (SmolLM2, Qwen2.5 when a system message is given).
- llama2: Meta's `chat_completion`: per (user, assistant) pair
  BOS + "[INST] {user.strip()} [/INST] {answer.strip()} " + EOS, the system prompt folded into the
  first user turn as "<<SYS>>\\n{system}\\n<</SYS>>\\n\\n" before stripping. The prompt ends at
  "[/INST]", so the answer's content starts at the space after it (the model generates it).
- llama3: Meta's `ChatFormat`: <|begin_of_text|>, then per message <|start_header_id|>role
  <|end_header_id|> "\\n\\n" content.strip() <|eot_id|>, each piece encoded on its own.
- mistral: Mistral-7B-Instruct v0.2's template; a system prompt is prepended to the first user
  turn followed by a blank line.
- gemma: the official Gemma 3 template (system folded into the first user turn, content trimmed).
- phi3, zephyr, alpaca: their published formats (see each builder).

Design concession: message content is encoded as plain text even when it spells a control token
(Meta's references do the same); where this differs from tokenizing the whole string, the
renderer reports a boundary-merge finding.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.chat.layout import Part, Segment, Specials
from app.chat.messages import Message
from app.dialects.base import (
    BuiltinDialect,
    check_alternation,
    check_system_first,
    strip_segments,
)

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def _bos(specials: Specials) -> list[Segment]:
    return [Segment(specials.bos, None, "bos", marker=True)] if specials.bos else []


def _eos(specials: Specials, message: int | None, part: str = "eot") -> list[Segment]:
    if not specials.eos:
        return []
    return [Segment(specials.eos, message, part, marker=True)]  # type: ignore[arg-type]


def _alternating(messages: Sequence[Message], dialect: str) -> int:
    """Check an optional first system message then user/assistant turns; return where turns
    start (1 after a system message, else 0)."""
    start = 1 if messages and messages[0].role == "system" else 0
    check_alternation(messages, dialect, start)
    return start


def build_chatml(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    out: list[Segment] = []
    for k, m in enumerate(messages):
        out += [
            Segment("<|im_start|>", k, "header", True),
            Segment(f"{m.role}\n", k, "header"),
            Segment(m.content, k, "content"),
            Segment("<|im_end|>", k, "eot", True),
            Segment("\n", k, "glue"),
        ]
    if gen:
        out += [
            Segment("<|im_start|>", None, "prompt", True),
            Segment("assistant\n", None, "prompt"),
        ]
    return out


def build_llama3(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    out = [Segment("<|begin_of_text|>", None, "bos", True)]

    def header(role: str, owner: int | None, part: Part) -> list[Segment]:
        return [
            Segment("<|start_header_id|>", owner, part, True),
            Segment(role, owner, part),
            Segment("<|end_header_id|>", owner, part, True),
            Segment("\n\n", owner, part),
        ]

    for k, m in enumerate(messages):
        out += header(m.role, k, "header")
        out += [Segment(m.content.strip(), k, "content"), Segment("<|eot_id|>", k, "eot", True)]
    if gen:
        out += header("assistant", None, "prompt")
    return out


def build_llama2(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    start = _alternating(messages, "llama2")
    out: list[Segment] = []
    for k in range(start, len(messages), 2):
        prompt = [Segment("[INST] ", k, "header")]
        if start and k == start:
            prompt += [
                Segment("<<SYS>>\n", 0, "header"),
                Segment(messages[0].content, 0, "content"),
                Segment("\n<</SYS>>\n\n", 0, "glue"),
            ]
        body = strip_segments(prompt[1:] + [Segment(messages[k].content, k, "content")])
        out += _bos(specials) + [prompt[0], *body, Segment(" [/INST]", k, "header")]
        if k + 1 < len(messages):
            # The prompt ends at "[/INST]": the space before the answer is generated with it.
            answer = " " + messages[k + 1].content.strip()
            out += [
                Segment(answer, k + 1, "content"),
                Segment(" ", k + 1, "gap"),
                *_eos(specials, k + 1),
            ]
    return out


def build_mistral(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    start = _alternating(messages, "mistral")
    out = _bos(specials)
    for k in range(start, len(messages)):
        m = messages[k]
        if m.role == "user":
            out.append(Segment("[INST] ", k, "header"))
            if start and k == start:
                out += [Segment(messages[0].content, 0, "content"), Segment("\n\n", 0, "glue")]
            out += [Segment(m.content, k, "content"), Segment(" [/INST]", k, "header")]
        else:
            out += [Segment(m.content, k, "content"), *_eos(specials, k)]
    return out


def build_gemma(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    start = _alternating(messages, "gemma")
    out = _bos(specials)
    for k in range(start, len(messages)):
        m = messages[k]
        role = "model" if m.role == "assistant" else m.role
        out += [Segment("<start_of_turn>", k, "header", True), Segment(f"{role}\n", k, "header")]
        if start and k == start:
            out += [Segment(messages[0].content, 0, "content"), Segment("\n\n", 0, "glue")]
        out += [
            Segment(m.content.strip(), k, "content"),
            Segment("<end_of_turn>", k, "eot", True),
            Segment("\n", k, "glue"),
        ]
    if gen:
        out += [
            Segment("<start_of_turn>", None, "prompt", True),
            Segment("model\n", None, "prompt"),
        ]
    return out


def build_phi3(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    """Phi-3: <|role|>\\n{content}<|end|>\\n per message."""
    out: list[Segment] = []
    for k, m in enumerate(messages):
        out += [
            Segment(f"<|{m.role}|>", k, "header", True),
            Segment("\n", k, "header"),
            Segment(m.content, k, "content"),
            Segment("<|end|>", k, "eot", True),
            Segment("\n", k, "glue"),
        ]
    if gen:
        out += [Segment("<|assistant|>", None, "prompt", True), Segment("\n", None, "prompt")]
    return out


def build_zephyr(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    """Zephyr: <|role|>\\n{content}</s>\\n per message (the markers are plain text)."""
    out: list[Segment] = []
    for k, m in enumerate(messages):
        out += [
            Segment(f"<|{m.role}|>\n", k, "header"),
            Segment(m.content, k, "content"),
            *_eos(specials, k),
            Segment("\n", k, "glue"),
        ]
    if gen:
        out.append(Segment("<|assistant|>\n", None, "prompt"))
    return out


def build_alpaca(messages: Sequence[Message], specials: Specials, gen: bool) -> list[Segment]:
    """Alpaca: preamble, then "### Instruction:\\n..." / "### Response:\\n...</s>" turns."""
    check_system_first(messages, "alpaca")
    out = _bos(specials)
    start = 0
    if messages and messages[0].role == "system":
        out += [Segment(messages[0].content, 0, "content"), Segment("\n\n", 0, "glue")]
        start = 1
    else:
        out.append(Segment(ALPACA_PREAMBLE + "\n\n", None, "header"))
    for k in range(start, len(messages)):
        m = messages[k]
        if m.role == "user":
            out += [
                Segment("### Instruction:\n", k, "header"),
                Segment(m.content, k, "content"),
                Segment("\n\n", k, "glue"),
            ]
        else:  # assistant: the declared roles and check_system_first leave nothing else
            out += [
                Segment("### Response:\n", k, "header"),
                Segment(m.content, k, "content"),
                *_eos(specials, k),
            ]
            if k + 1 < len(messages):
                out.append(Segment("\n\n", k, "glue"))
    if gen:
        out.append(Segment("### Response:\n", None, "prompt"))
    return out


BUILTINS: tuple[BuiltinDialect, ...] = (
    BuiltinDialect(
        "chatml",
        "ChatML",
        "<|im_start|>role\\n...<|im_end|>\\n turns (SmolLM2, Qwen, many open models).",
        ("<|im_start|>", "<|im_end|>"),
        build_chatml,
    ),
    BuiltinDialect(
        "llama2",
        "Llama 2 chat",
        "Meta's [INST] format: BOS/EOS around every user/assistant "
        "pair, system folded into the first turn in <<SYS>>.",
        ("<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"),
        build_llama2,
        default_eos="</s>",
        roles=("system", "user", "assistant"),
    ),
    BuiltinDialect(
        "llama3",
        "Llama 3 chat",
        "Meta's ChatFormat: header tokens around the role, "
        "<|eot_id|> after each message, each piece encoded on its own.",
        ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        build_llama3,
        split_text=True,
    ),
    BuiltinDialect(
        "mistral",
        "Mistral Instruct",
        "[INST] user [/INST]answer</s> (Mistral-7B-Instruct "
        "v0.2); a system prompt opens the first user turn.",
        ("<s>", "</s>", "[INST]", "[/INST]"),
        build_mistral,
        default_eos="</s>",
        roles=("system", "user", "assistant"),
    ),
    BuiltinDialect(
        "gemma",
        "Gemma 3",
        "<start_of_turn>user/model ... <end_of_turn>; the system prompt is "
        "folded into the first user turn.",
        ("<bos>", "<start_of_turn>", "<end_of_turn>"),
        build_gemma,
        roles=("system", "user", "assistant"),
    ),
    BuiltinDialect(
        "phi3",
        "Phi-3",
        "<|user|>\\n...<|end|>\\n turns (Phi-3 / Phi-3.5 instruct).",
        ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        build_phi3,
    ),
    BuiltinDialect(
        "zephyr",
        "Zephyr",
        "<|user|>\\n...</s>\\n turns with plain-text role markers (HuggingFaceH4 Zephyr).",
        ("<|user|>", "<|assistant|>", "</s>"),
        build_zephyr,
        default_eos="</s>",
    ),
    BuiltinDialect(
        "alpaca",
        "Alpaca",
        "Stanford Alpaca's instruction/response prompt, one response "
        "per instruction, EOS after each response.",
        ("### Instruction:", "### Response:"),
        build_alpaca,
        roles=("system", "user", "assistant"),
    ),
)
