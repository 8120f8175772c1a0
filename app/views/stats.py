"""Figures shown beside the chips: counts per role and per part, template overhead.

Design concession: "template overhead" counts tokens that overlap no message content at all; a
token that merges content with a template marker counts as content (it carries some of the
user's text), so the figure is a lower bound on what the template adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.chat.tokens import Rendering

ROLE_ORDER = ("system", "developer", "user", "assistant", "tool")
# The parts of a turn (DESIGN §3.1), in the order the stats list them.
PART_ORDER = ("content", "reasoning", "tool_call", "image", "audio", "markup")


@dataclass
class RoleCount:
    role: str
    tokens: int = 0
    trained: int = 0


@dataclass
class PartCount:
    part: str
    tokens: int = 0
    trained: int = 0


@dataclass
class Summary:
    tokens: int
    trained: int
    overhead: int
    special: int
    truncated: int
    roles: list[RoleCount] = field(default_factory=list)
    parts: list[PartCount] = field(default_factory=list)

    @property
    def trained_share(self) -> float:
        return self.trained / self.tokens if self.tokens else 0.0


def overlaps(rendering: Rendering, ranges: list[tuple[int, int]]) -> list[bool]:
    """For each token, whether its character span overlaps one of `ranges` (one sorted sweep).

    Example: tokens at [0,2) [2,4) [4,6), ranges [(3, 4)] -> [False, True, False]
    """
    spans = sorted((start, end) for start, end in ranges if end > start)
    flags, cursor = [], 0
    for tok in rendering.tokens:
        while cursor < len(spans) and spans[cursor][1] <= tok.start:
            cursor += 1
        flags.append(cursor < len(spans) and spans[cursor][0] < tok.end and tok.end > tok.start)
    return flags


def summarize(rendering: Rendering) -> Summary:
    """Token, trained, special, per-role and per-part counts, and the template overhead.

    Example: ChatML "<|im_start|>user\\nHi<|im_end|>\\n" -> 6 tokens, overhead 5 ("Hi" is content);
             parts [content: 1 token, markup: 5]
    """
    roles: dict[str, RoleCount] = {}
    parts: dict[str, PartCount] = {}
    for tok in rendering.tokens:
        entry = roles.setdefault(tok.role or "none", RoleCount(tok.role or "none"))
        entry.tokens += 1
        entry.trained += tok.trained
        part = parts.setdefault(tok.part, PartCount(tok.part))
        part.tokens += 1
        part.trained += tok.trained
    order = {role: i for i, role in enumerate(ROLE_ORDER)}
    ranked = sorted(roles.values(), key=lambda r: (order.get(r.role, len(order)), r.role))
    content = overlaps(rendering, [(s.content_start, s.content_end) for s in rendering.spans])
    return Summary(
        tokens=len(rendering.tokens),
        trained=sum(tok.trained for tok in rendering.tokens),
        overhead=sum(1 for flag in content if not flag),
        special=sum(tok.special for tok in rendering.tokens),
        truncated=rendering.truncated_tokens,
        roles=ranked,
        parts=[parts[p] for p in PART_ORDER if p in parts]
        + [c for p, c in sorted(parts.items()) if p not in PART_ORDER],
    )
