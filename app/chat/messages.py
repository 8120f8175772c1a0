"""Conversations: roles, messages, and parsing of the common dataset row formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. `extra` carries template-visible fields beyond role/content (tool_calls, name...)."""

    role: str
    content: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "role": self.role, "content": self.content}


Conversation = list[Message]
