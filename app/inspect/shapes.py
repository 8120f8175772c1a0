"""Row shapes beyond a conversation: prompt/completion, preference (prompt/chosen/rejected) and
KTO (prompt/completion/label) rows, read as TRL reads them.

- prompt/completion, conversational (lists of messages): the conversation prompt + completion,
  the completion's messages trained and the prompt's not (TRL's completion-only loss).
- prompt/completion, plain strings: TRL's tokenization, `tokenizer(prompt + completion)` with
  the EOS appended unless the completion ends with it; the completion starts where the ids of
  the prompt alone and of the whole diverge (TRL's `common_prefix_length`).
- preference rows: an explicit `prompt`, or the implicit one TRL's `extract_prompt` takes (the
  longest common prefix of chosen and rejected); each answer is then a prompt/completion row.

Example: shape_of({"prompt": [...], "chosen": [...], "rejected": [...]}) -> "preference"
         completion_conversation({"prompt": [u], "completion": [a]}, "assistant")
         -> {"messages": [u + train False, a + train True]}

Design concession: under `train_on="all"` the prompt's messages are not marked untrained (every
token is trained, as TRL trains without completion-only loss); a message's own `train` or
`weight` always wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.chat.tokenizer import Tokenizer
from app.chat.tokens import IGNORE_INDEX
from app.errors import InputError, MaskscopeError
from app.inspect.reader import RawRow

# A row read as its shape: (kind, the row as the conversation or token row it reads as).
Shaped = tuple[str, RawRow]
# Columns a conversation row keeps when it is rebuilt from a prompt/completion row.
CARRIED = ("tools", "chat_template_kwargs")


def shape_of(row: Mapping[str, Any]) -> str:
    """conversation, tokenized, preference, kto or prompt_completion (cheapest checks first).
    A column that is null in this row counts as absent: a Parquet file of mixed shapes holds
    every shape's columns, null where a row has none."""
    get = row.get
    if get("input_ids") is not None:  # (a pre-tokenized row may carry its messages too)
        return "tokenized"
    if get("messages") is not None or get("conversations") is not None or "instruction" in row:
        return "conversation"
    if get("chosen") is not None and get("rejected") is not None:
        return "preference"
    if get("prompt") is not None and get("completion") is not None:
        return "kto" if get("label") is not None else "prompt_completion"
    return "conversation"


def shape_row(raw: RawRow, tokenizer: Tokenizer, train_on: str) -> Shaped:
    """The row's kind, and the row as what it reads as: a prompt/completion (or KTO) row
    becomes a conversation or a token row; the others stay as they are. A row that cannot
    be read so keeps its kind and carries the error.

    Example: RawRow(1, 0, {"prompt": "a", "completion": " b"})
             -> ("prompt_completion", RawRow(1, 0, {"input_ids": [...], "labels": [...]}))
    """
    row = raw.row
    if raw.error is not None or row is None:
        return "unreadable", raw
    kind = shape_of(row)
    if kind not in ("prompt_completion", "kto"):
        return kind, raw
    try:
        return kind, RawRow(raw.line, raw.offset, _completion_row(row, kind, tokenizer, train_on))
    except MaskscopeError as exc:
        return kind, RawRow(raw.line, raw.offset, None, f"line {raw.line}: {exc.message}")


def _completion_row(
    row: Mapping[str, Any], kind: str, tokenizer: Tokenizer, train_on: str
) -> dict[str, Any]:
    if kind == "kto" and not isinstance(row["label"], bool):
        raise InputError(
            f"label is {row['label']!r}; a KTO row's label is true (desirable) or false.",
            field="label",
        )
    prompt, completion = row["prompt"], row["completion"]
    if is_conversational(prompt) or is_conversational(completion):
        out = completion_conversation(row, train_on)
    else:
        plain = plain_completion(tokenizer, prompt, completion)
        out = {"input_ids": plain.input_ids, "labels": plain.labels}
    if kind == "kto":
        out["label"] = row["label"]  # counted by the summary: desirable or not
    return out


def is_conversational(value: Any) -> bool:
    """A list of message objects (TRL's `is_conversational` for one field)."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], Mapping)


def completion_conversation(
    row: Mapping[str, Any],
    train_on: str,
    prompt: Any = None,
    completion: Any = None,
) -> dict[str, Any]:
    """A conversation row from conversational prompt and completion messages (the row's own,
    or `prompt` / `completion` given), the completion trained and the prompt not."""
    prompt = row["prompt"] if prompt is None else prompt
    completion = row["completion"] if completion is None else completion
    for name, value in (("prompt", prompt), ("completion", completion)):
        if not isinstance(value, list) or not all(isinstance(m, Mapping) for m in value):
            raise InputError(f"{name} must be a list of messages, like the other.", field=name)
    marked = train_on != "all"
    messages = [_trained(m, False) if marked else m for m in prompt]
    messages += [_trained(m, True) if marked else m for m in completion]
    out: dict[str, Any] = {"messages": messages}
    for key in CARRIED:
        if key in row:
            out[key] = row[key]
    return out


def _trained(message: Mapping[str, Any], trained: bool) -> Mapping[str, Any]:
    if "train" in message or "weight" in message:
        return message
    return {**message, "train": trained}


@dataclass(frozen=True, slots=True)
class PlainTokens:
    """A plain prompt/completion tokenized as TRL does: ids, labels, and the prompt alone."""

    input_ids: list[int]
    labels: list[int]
    prompt_ids: list[int]


def plain_completion(tokenizer: Tokenizer, prompt: Any, completion: Any) -> PlainTokens:
    """TRL's plain prompt/completion tokenization: EOS appended unless the completion ends with
    it, `tokenizer(text)` (the tokenizer's own BOS included), the prompt masked up to where the
    two tokenizations diverge.

    Example: ("The sky is", " blue.") -> ids of "<s>The sky is blue.</s>", labels from " blue"
    """
    for name, value in (("prompt", prompt), ("completion", completion)):
        if not isinstance(value, str):
            raise InputError(f"{name} must be a string (or a list of messages).", field=name)
    eos = getattr(tokenizer, "eos_token", None)  # what TRL appends: the tokenizer's own
    if isinstance(eos, str) and eos and not completion.endswith(eos):
        completion += eos
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    ids = list(tokenizer(prompt + completion)["input_ids"])
    start = common_prefix_length(prompt_ids, ids)
    return PlainTokens(ids, [IGNORE_INDEX] * start + ids[start:], prompt_ids)


def common_prefix_length(ids: Sequence[int], other: Sequence[int]) -> int:
    """Leading ids two sequences share. Example: ([1, 2, 3], [1, 2, 4]) -> 2"""
    length = 0
    for a, b in zip(ids, other, strict=False):
        if a != b:
            break
        length += 1
    return length


@dataclass(frozen=True, slots=True)
class Preference:
    """A preference row's prompt and two answers (lists of messages, or strings)."""

    prompt: Any
    chosen: Any
    rejected: Any
    implicit: bool

    @property
    def conversational(self) -> bool:
        return is_conversational(self.chosen) or is_conversational(self.prompt)


def preference_of(row: Mapping[str, Any]) -> Preference:
    """The row's prompt and answers; without a `prompt`, TRL's implicit one (the longest common
    prefix of chosen and rejected, in messages or in characters).

    Example: {"chosen": [u, a1], "rejected": [u, a2]} -> Preference([u], [a1], [a2], True)
    """
    chosen, rejected = row["chosen"], row["rejected"]
    if type(chosen) is not type(rejected) or not isinstance(chosen, list | str):
        raise InputError(
            "chosen and rejected must both be lists of messages or both strings.", field="chosen"
        )
    if "prompt" in row:
        return Preference(row["prompt"], chosen, rejected, False)
    index = 0
    for index in range(min(len(chosen), len(rejected)) + 1):
        if index == min(len(chosen), len(rejected)) or chosen[index] != rejected[index]:
            break
    if isinstance(chosen, str) and index > 0 and chosen[index - 1] == " ":
        index -= 1  # TRL keeps the space with the answers
    return Preference(chosen[:index], chosen[index:], rejected[index:], True)
