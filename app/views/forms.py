"""Form and query-string state of the editors, in the shape of the /api/render request body.

Design concession: the editors post plain form fields (repeated `role`/`content` pairs, one field
per option) instead of JSON, so the same state round-trips through a permalink query string and
works without JavaScript. A hidden `v` field says "this is a submitted form", which is what lets an
absent checkbox mean False rather than "use the default".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.chat.spec import TRAIN_ON
from app.errors import InputError

PADDING_SIDES = ("right", "left")


class MultiMapping(Protocol):
    """Starlette's FormData and QueryParams both offer this."""

    def get(self, key: str, /) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...
    def __contains__(self, key: object) -> bool: ...


@dataclass
class Target:
    tokenizer: str
    dialect: str
    template: str | None = None


@dataclass
class EditorState:
    """Everything one editor form holds. Example: EditorState(messages=[...], tokenizer="qwen3")."""

    messages: list[dict[str, str]] = field(default_factory=list)
    tokenizer: str = "smollm2"
    dialect: str = "chatml"
    template: str | None = None
    train_on: str = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = None
    add_special_tokens: bool = False
    targets: list[Target] = field(default_factory=list)
    padding_side: str = "right"
    conversations: str = ""
    pack_length: int | None = None

    def render_request(self, target: Target | None = None) -> dict[str, Any]:
        """The /api/render body for this state (under `target`'s tokenizer+dialect if given)."""
        pick = target or Target(self.tokenizer, self.dialect, self.template)
        return {
            "messages": self.messages,
            "tokenizer": pick.tokenizer,
            "dialect": pick.dialect,
            "template": pick.template if pick.dialect == "custom" else None,
            "train_on": self.train_on,
            "train_on_eot": self.train_on_eot,
            "add_generation_prompt": self.add_generation_prompt,
            "max_length": self.max_length,
            "add_special_tokens": self.add_special_tokens,
        }


def _choice(data: MultiMapping, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(name) or default
    if value not in allowed:
        raise InputError(
            f"{name} is {value!r}; it must be one of {', '.join(allowed)}.", field=name
        )
    return value


def _length(data: MultiMapping, name: str = "max_length") -> int | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(
            f"{name} is {raw!r}; give a whole number of tokens, at least 1, "
            "or leave it empty for no limit.",
            field=name,
        )
    return int(raw)


def _messages(data: MultiMapping) -> list[dict[str, str]]:
    roles, contents = data.getlist("role"), data.getlist("content")
    if len(roles) != len(contents):
        raise InputError(
            f"The form has {len(roles)} roles but {len(contents)} contents; every turn needs both.",
            field="messages",
        )
    # Browsers submit textarea line breaks as CRLF; the text the user typed had plain LF.
    return [
        {"role": str(r), "content": str(c).replace("\r\n", "\n")}
        for r, c in zip(roles, contents, strict=True)
    ]


def _targets(data: MultiMapping) -> list[Target]:
    toks, dials = data.getlist("target_tokenizer"), data.getlist("target_dialect")
    temps = data.getlist("target_template")
    if len(toks) != len(dials):
        raise InputError("Every compare column needs a tokenizer and a dialect.", field="targets")
    temps = [*temps, *[""] * (len(toks) - len(temps))]
    return [
        Target(str(t), str(d), str(p).replace("\r\n", "\n") or None)
        for t, d, p in zip(toks, dials, temps, strict=False)
    ]


def parse_state(data: MultiMapping, defaults: EditorState, submitted: bool = False) -> EditorState:
    """Read a submitted form or permalink query; a query without the `v` marker means `defaults`.

    Example: role=user&content=Hi&tokenizer=qwen3&dialect=chatml&v=1
             -> EditorState(messages=[{"role": "user", "content": "Hi"}], train_on_eot=False, ...)
    """
    if not submitted and "v" not in data:
        return defaults
    template = (data.get("template") or "").replace("\r\n", "\n") or None
    return dataclasses.replace(
        defaults,
        messages=_messages(data),
        tokenizer=data.get("tokenizer") or defaults.tokenizer,
        dialect=data.get("dialect") or defaults.dialect,
        template=template,
        train_on=_choice(data, "train_on", TRAIN_ON, defaults.train_on),
        train_on_eot="train_on_eot" in data,
        add_generation_prompt="add_generation_prompt" in data,
        max_length=_length(data),
        add_special_tokens="add_special_tokens" in data,
        targets=_targets(data) or defaults.targets,
        padding_side=_choice(data, "padding_side", PADDING_SIDES, defaults.padding_side),
        conversations=(data.get("conversations") or "").replace("\r\n", "\n"),
        pack_length=_length(data, "pack_length"),
    )
