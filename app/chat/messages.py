"""Conversations: roles, messages, and parsing of the common dataset row formats.

Design concession: parsing is strict about structure (unknown roles, non-string content and empty
conversations are errors that name the offending field) but lenient about role spellings that the
popular dataset formats use (`human`/`gpt` in ShareGPT, `model` in Gemma-style data).

Example:
    parse_row({"conversations": [{"from": "human", "value": "Hi"},
                                 {"from": "gpt", "value": "Hello"}]})
    -> [Message(role="user", content="Hi"), Message(role="assistant", content="Hello")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import InputError, LimitError

# `developer`: OpenAI's name for the system message of newer models.
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool")
_ROLE_SET = frozenset(ROLES)
# Where an assistant message's reasoning is held: transformers' `reasoning_content`, and the
# spellings other datasets and templates use (gpt-oss's `thinking`).
REASONING_FIELDS: tuple[str, ...] = ("reasoning_content", "thinking", "reasoning")
# Content part types a message may carry (OpenAI and HF spellings), and what each one is.
PART_KINDS: dict[str, str] = {
    "text": "text",
    "image": "image",
    "image_url": "image",
    "audio": "audio",
    "input_audio": "audio",
}

# Spellings found in public datasets, mapped to the four roles.
ROLE_ALIASES: dict[str, str] = {
    "human": "user",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. `extra`: template-visible fields beyond role/content (tool_calls, name...).
    `parts`: the content as a list of parts ({"type": "text", "text": ...}, images...) when it
    was given so; templates get that list, and `content` is its text parts joined."""

    role: str
    content: str
    extra: dict[str, Any] = field(default_factory=dict)
    parts: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        content = self.content if self.parts is None else self.parts
        return {**self.extra, "role": self.role, "content": content}

    def train_override(self) -> bool | None:
        """Whether `train` / `weight` (0 or 1) says this message is trained; None: not said."""
        if "train" in self.extra:
            return bool(self.extra["train"])
        if "weight" in self.extra:
            return bool(self.extra["weight"])
        return None


Conversation = list[Message]


def check_text(value: str, where: str) -> str:
    """`value`, or InputError naming `where` when it holds a lone surrogate (JSON allows
    `"\\ud800"`, but no UTF-8 tokenizer can encode it).

    Example: check_text("a\\ud800", "messages[0].content") -> InputError(field=that where)
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where} holds a lone surrogate (U+{ord(value[exc.start]):04X} at character "
            f"{exc.start:,}); send valid Unicode text.",
            field=where,
        ) from None
    return value


def _encodable(text: str) -> bool:
    """Whether `text` holds no lone surrogate (what `check_text` refuses)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_role(raw: Any, where: str) -> str:
    """Map a role spelling to one of ROLES or raise InputError naming `where`."""
    if not isinstance(raw, str):
        raise InputError(f"{where} must be a string, one of {', '.join(ROLES)}.", field=where)
    role = raw.strip().lower()
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        raise InputError(
            f"{where} is {raw!r}; it must be one of {', '.join(ROLES)} "
            "(or human/gpt in ShareGPT rows).",
            field=where,
        )
    return role


def message_from_dict(
    item: Any, where: str, role_key: str = "role", content_key: str = "content"
) -> Message:
    """Build a Message from one mapping; other keys (tool_calls, name...) go to `extra`."""
    if type(item) is dict and len(item) == 2:  # the common row: a role and a plain text
        role, content = item.get(role_key), item.get(content_key)
        if (
            type(content) is str
            and type(role) is str
            and role in _ROLE_SET
            and (content.isascii() or _encodable(content))
        ):
            return Message(role, content, {})
    if not isinstance(item, Mapping):
        raise InputError(
            f"{where} must be an object with '{role_key}' and '{content_key}'.", field=where
        )
    if role_key not in item:
        raise InputError(f"{where} has no '{role_key}'.", field=f"{where}.{role_key}")
    raw = item[role_key]
    role = raw if raw in ROLES else normalize_role(raw, f"{where}.{role_key}")
    content = item.get(content_key)
    if content is None and (item.get("tool_calls") or role == "assistant"):
        content = ""  # an assistant turn carrying only tool calls
    parts = None
    if isinstance(content, list):
        parts = content
        content = _parts_text(parts, f"{where}.{content_key}")
    if not isinstance(content, str):
        raise InputError(
            f"{where}.{content_key} must be a string, got {type(content).__name__}.",
            field=f"{where}.{content_key}",
        )
    check_text(content, f"{where}.{content_key}")
    extra = (
        {}
        if len(item) == 2
        else {  # two keys: just the role and the content
            k: v for k, v in item.items() if k not in (role_key, content_key) and v is not None
        }
    )
    for key, value in extra.items():
        check_strings(value, f"{where}.{key}")
    if "train" in extra or "weight" in extra:
        _check_train(extra, where)
    return Message(role=role, content=content, extra=extra, parts=parts)


def _parts_text(parts: list[Any], where: str) -> str:
    """The text parts of a content list joined; every part is checked.

    Example: [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]
             -> "ab"
    """
    texts = []
    for i, part in enumerate(parts):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in PART_KINDS:
            raise InputError(
                f"{at} must be an object whose 'type' is one of {', '.join(PART_KINDS)}.",
                field=at,
            )
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InputError(f"{at}.text must be a string.", field=f"{at}.text")
            texts.append(check_text(text, f"{at}.text"))
        else:
            check_strings(part, at)
    return "".join(texts)


def _check_train(extra: Mapping[str, Any], where: str) -> None:
    """`train` is a bool and `weight` 0 or 1 (OpenAI's fine-tuning format), and they agree."""
    train, weight = extra.get("train"), extra.get("weight")
    if "train" in extra and not isinstance(train, bool):
        raise InputError(f"{where}.train must be true or false.", field=f"{where}.train")
    if "weight" in extra and (isinstance(weight, bool) or weight not in (0, 1)):
        raise InputError(f"{where}.weight must be 0 or 1.", field=f"{where}.weight")
    if "train" in extra and "weight" in extra and bool(weight) != train:
        raise InputError(
            f"{where} has train {str(train).lower()} but weight {weight}; give one of them.",
            field=f"{where}.weight",
        )


def check_strings(value: Any, where: str) -> None:
    """`check_text` on every string inside a JSON value (tool_calls, name...)."""
    pending = [(value, where)]
    while pending:
        node, at = pending.pop()
        if isinstance(node, str):
            check_text(node, at)
        elif isinstance(node, Mapping):
            pending += [(v, f"{at}.{k}") for k, v in node.items()]
            pending += [(k, at) for k in node if isinstance(k, str)]
        elif isinstance(node, list):
            pending += [(v, f"{at}[{i}]") for i, v in enumerate(node)]


def validate_conversation(
    conversation: Sequence[Message],
    *,
    max_messages: int | None = None,
    max_chars: int | None = None,
) -> None:
    """Raise InputError/LimitError for an empty or oversized conversation or a bad message."""
    if not conversation:
        raise InputError("The conversation is empty; give at least one message.", field="messages")
    if max_messages is not None and len(conversation) > max_messages:
        raise LimitError(
            f"The conversation has {len(conversation):,} messages; the limit is "
            f"{max_messages:,} (max_messages setting).",
            field="messages",
            setting="max_messages",
        )
    total = 0
    for i, message in enumerate(conversation):
        if message.role not in ROLES:
            raise InputError(
                f"messages[{i}].role is {message.role!r}; it must be one of {', '.join(ROLES)}.",
                field=f"messages[{i}].role",
            )
        if not isinstance(message.content, str):
            raise InputError(
                f"messages[{i}].content must be a string.", field=f"messages[{i}].content"
            )
        total += len(message.content)
    if max_chars is not None and total > max_chars:
        raise LimitError(
            f"The conversation has {total:,} characters of content; the limit is "
            f"{max_chars:,} (max_chars setting).",
            field="messages",
            setting="max_chars",
        )


def parse_messages(items: Any, where: str = "messages") -> Conversation:
    """Parse an OpenAI/HF `messages` list."""
    if not isinstance(items, list):
        raise InputError(f"{where} must be a list of messages.", field=where)
    conversation = [message_from_dict(item, f"{where}[{i}]") for i, item in enumerate(items)]
    validate_conversation(conversation)
    return conversation


def parse_sharegpt(items: Any, where: str = "conversations") -> Conversation:
    """Parse a ShareGPT `conversations` list of {from, value} turns."""
    if not isinstance(items, list):
        raise InputError(f"{where} must be a list of turns.", field=where)
    conversation = [
        message_from_dict(item, f"{where}[{i}]", "from", "value") for i, item in enumerate(items)
    ]
    validate_conversation(conversation)
    return conversation


def parse_alpaca(row: Mapping[str, Any]) -> Conversation:
    """Parse an Alpaca row: instruction (+ input) becomes the user turn, output the answer.

    Example: {"instruction": "Add", "input": "1+1", "output": "2"}
             -> [user "Add\\n\\n1+1", assistant "2"]
    """
    parts = {}
    for key in ("instruction", "input", "output", "system"):
        value = row.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InputError(f"'{key}' must be a string.", field=key)
        parts[key] = check_text(value, key)
    prompt = parts["instruction"] + (f"\n\n{parts['input']}" if parts["input"] else "")
    conversation = [Message("user", prompt), Message("assistant", parts["output"])]
    if parts["system"]:
        conversation.insert(0, Message("system", parts["system"]))
    return conversation


def parse_row(row: Any) -> Conversation:
    """Parse one dataset row in any of the three formats (or a bare list of messages)."""
    if isinstance(row, list):
        return parse_messages(row)
    if not isinstance(row, Mapping):
        raise InputError("A row must be a JSON object (or a list of messages).", field="row")
    if "messages" in row:
        return parse_messages(row["messages"])
    if "conversations" in row:
        return parse_sharegpt(row["conversations"])
    if "instruction" in row:
        return parse_alpaca(row)
    raise InputError(
        "The row has none of 'messages', 'conversations' (ShareGPT) or 'instruction' (Alpaca).",
        field="row",
    )
