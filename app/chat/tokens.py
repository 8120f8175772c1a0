"""Token records and the result of rendering one conversation.

Design concession: a token's `text` is its exact slice of the rendered string
(`rendering.text[start:end]`). Byte-level pieces that split a multi-byte character get the
character on the token that completes it, so the texts always concatenate back to `text`.
Tokens and message spans are plain (not frozen) dataclasses: an 8k-token rendering builds 8k of
them, and frozen construction costs about four times as much; treat them as read-only all the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

IGNORE_INDEX = -100
Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}  # most severe first


@dataclass(slots=True)
class Token:
    """One token of a rendering.

    Example: Token(index=0, id=1, text="<|im_start|>", role="system", message=0,
                   special=True, trained=False, start=0, end=12, part="markup")
    """

    index: int
    id: int
    text: str
    role: str | None
    message: int | None
    special: bool
    trained: bool
    start: int
    end: int
    part: str = "markup"

    @property
    def label(self) -> int:
        return self.id if self.trained else IGNORE_INDEX

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "role": self.role,
            "message": self.message,
            "special": self.special,
            "trained": self.trained,
            "start": self.start,
            "end": self.end,
            "part": self.part,
        }


@dataclass(slots=True)
class MessageSpan:
    """Where one message sits in the rendered text (character offsets, end exclusive).

    `start:end` is the whole turn (header, content, end-of-turn token); `content_start:content_end`
    the message content as it appears after the template's own transformation (e.g. strip());
    `eot_start:eot_end` the end-of-turn marker that closes the turn, if any; for an assistant
    turn, `gen_start:gen_end` is what the model generates (after the generation prompt, up to and
    including the end-of-turn marker), when the dialect knows it.
    """

    message: int
    role: str
    start: int
    end: int
    content_start: int
    content_end: int
    eot_start: int | None = None
    eot_end: int | None = None
    gen_start: int | None = None
    gen_end: int | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A lint finding: a registry code, a severity, advice, and the tokens involved."""

    code: str
    severity: Severity
    message: str
    tokens: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "tokens": list(self.tokens),
        }


@dataclass
class Rendering:
    """Everything the views, lints and trainer need about one rendered conversation."""

    text: str
    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int]
    tokens: Sequence[Token]  # Token records, or TokenColumns for dataset rows
    spans: list[MessageSpan]
    dialect: str
    findings: list[Finding] = field(default_factory=list)
    truncated_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_count(self) -> int:
        return len(self.labels) - self.labels.count(IGNORE_INDEX)  # counted in C

    def stats(self) -> dict[str, Any]:
        role_counts = getattr(self.tokens, "role_counts", None)  # TokenColumns: from kinds
        counts = role_counts() if role_counts else Counter(tok.role for tok in self.tokens)
        by_role: dict[str, int] = {}
        for role, count in counts.items():  # first-seen order, as a loop would give
            key = role or "none"
            by_role[key] = by_role.get(key, 0) + count
        return {
            "tokens": len(self.input_ids),
            "trained": self.trained_count,
            "truncated": self.truncated_tokens,
            "by_role": by_role,
        }
