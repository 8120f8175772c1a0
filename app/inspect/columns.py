"""Column mapping: which column of a dataset holds the messages, the prompt, the answers, the
label, and which keys of a message hold its role and content.

Example: ColumnMap(messages="dialog", role="speaker", content="text").apply(
             {"dialog": [{"speaker": "user", "text": "Hi"}]})
         -> {"messages": [{"role": "user", "content": "Hi"}]}

Design concession: a mapping is guessed from the first row only, and only when exactly one
column could hold the messages (a list of objects) and its objects have exactly one key whose
values are role names; anything else is left to an explicit mapping, so a guess never
silently reads the wrong column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from app.chat.messages import ROLE_ALIASES, ROLES
from app.errors import InputError

# The column names each shape is read from (TRL's dataset formats and the chat formats).
SHAPE_COLUMNS = (
    "messages",
    "conversations",
    "instruction",
    "prompt",
    "completion",
    "chosen",
    "rejected",
    "label",
    "input_ids",
)
# Columns whose values are conversations (lists of messages) once mapped.
MESSAGE_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")
ROLE_NAMES = frozenset(ROLES) | frozenset(ROLE_ALIASES)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Source column for each canonical column (None: the canonical name itself), and the
    message keys holding role and content (None: `role` / `content`)."""

    messages: str | None = None
    prompt: str | None = None
    completion: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    label: str | None = None
    role: str | None = None
    content: str | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def to_json(self) -> dict[str, str]:
        """The mapping's set entries. Example: ColumnMap(messages="dialog").to_json()
        -> {"messages": "dialog"}"""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with its mapped columns under their canonical names (a new dict; `row` when
        the mapping is empty)."""
        if self.empty:
            return row
        out = dict(row)
        for name in (*MESSAGE_COLUMNS, "label"):
            source = getattr(self, name)
            if source is not None and source != name:
                if source not in out:
                    raise InputError(
                        f"The row has no column {source!r} (mapped to {name}).", field=name
                    )
                out[name] = out.pop(source)
        if self.role is not None or self.content is not None:
            for name in MESSAGE_COLUMNS:
                if isinstance(out.get(name), list):
                    out[name] = [self._message(m) for m in out[name]]
        return out

    def _message(self, message: Any) -> Any:
        if not isinstance(message, Mapping):
            return message
        out = dict(message)
        for key, source in (("role", self.role), ("content", self.content)):
            if source is not None and source != key and source in out:
                out[key] = out.pop(source)
        return out


def column_map(values: Mapping[str, Any]) -> ColumnMap:
    """A ColumnMap from form or CLI values (blank ones ignored); unknown names are a 422.

    Example: column_map({"messages": "dialog", "role": ""}) -> ColumnMap(messages="dialog")
    """
    known = {f.name for f in fields(ColumnMap)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"Unknown column mapping {', '.join(unknown)}; map any of {', '.join(sorted(known))}.",
            field="columns",
        )
    given: dict[str, str] = {}
    for name, value in values.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise InputError(f"The column for {name} must be a column name.", field=name)
        given[name] = value.strip()
    return ColumnMap(**given)


def guess_columns(row: Mapping[str, Any], given: ColumnMap) -> ColumnMap:
    """`given`, completed from the first row when that is unambiguous: the one column holding
    a list of objects becomes `messages`, and the one key of those objects whose values are
    role names becomes `role` (the other string key, `content`).

    Example: guess_columns({"id": 1, "turns": [{"speaker": "user", "text": "Hi"}]}, ColumnMap())
             -> ColumnMap(messages="turns", role="speaker", content="text")
    """
    try:
        mapped = given.apply(dict(row)) if not given.empty else row
    except InputError as exc:  # a mapping that misses on the first row misses the dataset
        raise InputError(
            f"{exc.message[:-1]}; the first row's columns are {', '.join(map(str, row))}.",
            field=exc.field,
        ) from None
    if any(name in mapped for name in SHAPE_COLUMNS):
        return given if given.role or given.content else _guess_keys(mapped, given)
    lists = [k for k, v in row.items() if _is_message_list(v)]
    if len(lists) != 1:
        return given
    return _guess_keys({"messages": row[lists[0]]}, replace(given, messages=lists[0]))


def _guess_keys(row: Mapping[str, Any], given: ColumnMap) -> ColumnMap:
    messages = next((row[n] for n in MESSAGE_COLUMNS if _is_message_list(row.get(n))), None)
    if messages is None:
        return given
    keys = set(messages[0])
    if "role" in keys or {"from", "value"} <= keys:
        return given
    roles = [k for k in keys if all(_is_role(m.get(k)) for m in messages if isinstance(m, dict))]
    texts = [k for k in keys - set(roles) if isinstance(messages[0].get(k), str)]
    if len(roles) != 1 or len(texts) != 1:
        return given
    return replace(given, role=roles[0], content=texts[0])


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


def _is_role(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in ROLE_NAMES
