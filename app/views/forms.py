"""Form and query-string state of the editors, in the shape of the /api/render request body.

Design concession: the editors post plain form fields (repeated `role`/`content` pairs, one field
per option) instead of JSON, so the same state round-trips through a permalink query string and
works without JavaScript. A hidden `v` field says "this is a submitted form", which is what lets an
absent checkbox mean False rather than "use the default"; the checkboxes added later
(train_reasoning, train_tool_calls, enable_thinking) post a hidden "off" before the box, so a
permalink made before they existed keeps their defaults. A turn's structured fields are named by
the turn's index (`reasoning_2`, `call_name_2` once per tool call), and the JSON the user typed
(tools, template variables, tool-call arguments) stays text in the state until the render body
is built: a typo then comes back as an error naming the field while the editor keeps the text.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.chat.messages import PART_KINDS
from app.chat.spec import TRAIN_ON, json_field
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

    messages: list[dict[str, Any]] = field(default_factory=list)
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
    tools: str = ""  # JSON text as typed: a list of OpenAI function specs
    chat_template_kwargs: str = ""  # JSON text as typed: an object of template variables
    enable_thinking: bool | None = None  # None: not passed to the template
    train_reasoning: bool = True
    train_tool_calls: bool = True

    def render_request(self, target: Target | None = None) -> dict[str, Any]:
        """The /api/render body for this state (under `target`'s tokenizer+dialect if given);
        InputError naming the field when typed JSON does not parse."""
        pick = target or Target(self.tokenizer, self.dialect, self.template)
        return {
            "messages": body_messages(self.messages),
            "tokenizer": pick.tokenizer,
            "dialect": pick.dialect,
            "template": pick.template if pick.dialect == "custom" else None,
            "train_on": self.train_on,
            "train_on_eot": self.train_on_eot,
            "add_generation_prompt": self.add_generation_prompt,
            "max_length": self.max_length,
            "add_special_tokens": self.add_special_tokens,
            "tools": json_field(self.tools, "tools", "tools"),
            "chat_template_kwargs": self.template_kwargs(),
            "train_reasoning": self.train_reasoning,
            "train_tool_calls": self.train_tool_calls,
        }

    def template_kwargs(self) -> dict[str, Any] | None:
        """The typed template variables, with the enable_thinking box's value where it is shown.

        Example: EditorState(chat_template_kwargs='{"x": 1}', enable_thinking=False)
                 .template_kwargs() -> {"x": 1, "enable_thinking": False}
        """
        kwargs = json_field(
            self.chat_template_kwargs, "chat_template_kwargs", "chat_template_kwargs"
        )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InputError(
                "chat_template_kwargs must be a JSON object of template variables, "
                'e.g. {"enable_thinking": false}.',
                field="chat_template_kwargs",
            )
        if self.enable_thinking is None:
            return kwargs
        if kwargs and "enable_thinking" in kwargs:
            raise InputError(
                "chat_template_kwargs sets enable_thinking, which the enable_thinking box "
                "sets too; remove it from chat_template_kwargs.",
                field="chat_template_kwargs",
            )
        return {**(kwargs or {}), "enable_thinking": self.enable_thinking}


@dataclass
class ToolCallFields:
    """One tool call as the editor shows it: arguments as JSON text."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class TurnFields:
    """One message as the editor's fields show it (see `editor_turn`)."""

    role: str
    content: str
    reasoning: str = ""
    tool_name: str = ""
    tool_call_id: str = ""
    image_width: str = ""
    image_height: str = ""
    audio_seconds: str = ""
    calls: list[ToolCallFields] = field(default_factory=list)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        str(p.get("text", ""))
        for p in content or ()
        if isinstance(p, Mapping) and p.get("type") == "text"
    )


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False) if arguments else ""


def editor_turn(message: Mapping[str, Any]) -> TurnFields:
    """The editor's fields for one message (an editor state's, or an example's).

    Example: {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f",
             "arguments": {"a": 1}}}]} -> TurnFields("assistant", "", calls=[("", "f", '{"a": 1}')])
    """
    content = message.get("content")
    image, audio = _first_part(content, "image"), _first_part(content, "audio")
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        calls.append(
            ToolCallFields(
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                _arguments_text(function.get("arguments")),
            )
        )
    return TurnFields(
        role=str(message.get("role", "user")),
        content=_text_of(content),
        reasoning=str(message.get("reasoning_content") or ""),
        tool_name=str(message.get("name") or ""),
        tool_call_id=str(message.get("tool_call_id") or ""),
        image_width="" if image is None else str(image.get("width") or ""),
        image_height="" if image is None else str(image.get("height") or ""),
        audio_seconds="" if audio is None else str(audio.get("duration_s") or ""),
        calls=calls,
    )


def _first_part(content: Any, kind: str) -> Mapping[str, Any] | None:
    """The first content part of `kind` (image, audio), if the content is a list of parts."""
    if not isinstance(content, list):
        return None
    return next(
        (
            p
            for p in content
            if isinstance(p, Mapping) and PART_KINDS.get(p.get("type", "")) == kind
        ),
        None,
    )


def _arguments(raw: Any, where: str) -> Any:
    """A tool call's arguments typed as JSON text -> the object; other values stay as given."""
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
            field=where,
        ) from None


def _pixels(raw: Any, where: str) -> Any:
    if not isinstance(raw, str):
        return raw
    if not raw.strip().isdigit() or int(raw) < 1:
        raise InputError(
            f"{where} is {raw!r}; give the image's size as a whole number of pixels, at least 1.",
            field=where,
        )
    return int(raw)


def _seconds(raw: Any, where: str) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(
            f"{where} is {raw!r}; give the clip's length in seconds, above 0.", field=where
        )
    return seconds


def body_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The editor's messages as the render body takes them: typed tool-call arguments parsed,
    image sizes and audio lengths as numbers; InputError naming the field
    (messages[i].tool_calls[j]...) if not.

    Example: [{"role": "assistant", "tool_calls": [{"function": {"name": "f",
             "arguments": '{"a": 1}'}}], ...}] -> same with "arguments": {"a": 1}
    """
    out = []
    for i, message in enumerate(messages):
        calls, content = message.get("tool_calls"), message.get("content")
        if not isinstance(calls, list) and not isinstance(content, list):
            out.append(message)
            continue
        item = dict(message)
        if isinstance(calls, list):
            item["tool_calls"] = [
                _call(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(calls)
            ]
        if isinstance(content, list):
            item["content"] = [
                _part(part, f"messages[{i}].content[{j}]") for j, part in enumerate(content)
            ]
        out.append(item)
    return out


def _call(call: Any, where: str) -> Any:
    if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
        return call
    function = dict(call["function"])
    if not function.get("name"):
        raise InputError(
            f"{where}.function.name is empty; give the tool's name.", field=f"{where}.function.name"
        )
    function["arguments"] = _arguments(function.get("arguments"), f"{where}.function.arguments")
    return {**call, "function": function}


def _part(part: Any, where: str) -> Any:
    kind = PART_KINDS.get(part.get("type", "")) if isinstance(part, Mapping) else None
    if kind not in ("image", "audio"):
        return part
    sized = dict(part)
    for side in ("width", "height"):
        if side in sized:
            sized[side] = _pixels(sized[side], f"{where}.{side}")
    if "duration_s" in sized:
        sized["duration_s"] = _seconds(sized["duration_s"], f"{where}.duration_s")
    return sized


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


def _typed(data: MultiMapping, name: str) -> str:
    # Browsers submit textarea line breaks as CRLF; the text the user typed had plain LF.
    return str(data.get(name) or "").replace("\r\n", "\n")


def _messages(data: MultiMapping) -> list[dict[str, Any]]:
    roles, contents = data.getlist("role"), data.getlist("content")
    if len(roles) != len(contents):
        raise InputError(
            f"The form has {len(roles)} roles but {len(contents)} contents; every turn needs both.",
            field="messages",
        )
    return [
        _turn(data, i, str(r), str(c).replace("\r\n", "\n"))
        for i, (r, c) in enumerate(zip(roles, contents, strict=True))
    ]


def _turn(data: MultiMapping, i: int, role: str, content: str) -> dict[str, Any]:
    """One turn's message from its fields; only the fields its role shows are read.

    Example: role=assistant, reasoning_0="hm", call_name_0="f", call_arguments_0='{}'
             -> {"role": "assistant", "content": ..., "reasoning_content": "hm",
                 "tool_calls": [{"type": "function", "function": {"name": "f", ...}}]}
    """
    message: dict[str, Any] = {"role": role, "content": content}
    if role == "assistant":
        if reasoning := _typed(data, f"reasoning_{i}"):
            message["reasoning_content"] = reasoning
        if calls := _calls(data, i):
            message["tool_calls"] = calls
    elif role == "tool":
        for key, name in (("name", f"tool_name_{i}"), ("tool_call_id", f"tool_call_id_{i}")):
            if value := _typed(data, name).strip():
                message[key] = value
    elif role == "user":
        width, height = _typed(data, f"image_width_{i}"), _typed(data, f"image_height_{i}")
        seconds = _typed(data, f"audio_seconds_{i}").strip()
        parts: list[dict[str, Any]] = []
        if width.strip() or height.strip():
            parts.append({"type": "image", "width": width.strip(), "height": height.strip()})
        if seconds:
            parts.append({"type": "audio", "duration_s": seconds})
        if parts:
            message["content"] = [*parts, {"type": "text", "text": content}]
    return message


def _calls(data: MultiMapping, i: int) -> list[dict[str, Any]]:
    """A turn's tool calls: one (call_id, call_name, call_arguments) triple per row; rows left
    wholly empty are dropped (a row with arguments but no name is refused by `body_messages`)."""
    ids, names = data.getlist(f"call_id_{i}"), data.getlist(f"call_name_{i}")
    arguments = data.getlist(f"call_arguments_{i}")
    if not len(ids) == len(names) == len(arguments):
        raise InputError(
            f"Turn {i} has {len(names)} tool-call names, {len(ids)} ids and {len(arguments)} "
            "argument boxes; every tool call needs all three.",
            field=f"messages[{i}].tool_calls",
        )
    calls = []
    for call_id, name, args in zip(ids, names, arguments, strict=True):
        name, args = str(name).strip(), str(args).replace("\r\n", "\n")
        if not name and not args.strip() and not str(call_id).strip():
            continue
        call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
        if str(call_id).strip():
            call = {"id": str(call_id).strip(), **call}
        calls.append(call)
    return calls


def _switch(data: MultiMapping, name: str, default: bool | None) -> bool | None:
    """A checkbox posted after a hidden "off": absent -> `default`, else whether it is ticked."""
    values = data.getlist(name)
    return default if not values else "on" in values


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


# Fields whose presence makes a query without `v` a hand-made permalink rather than no state.
HAND_MADE_KEYS = (
    "role",
    "tokenizer",
    "dialect",
    "template",
    "train_on",
    "train_on_eot",
    "add_generation_prompt",
    "max_length",
    "add_special_tokens",
    "target_tokenizer",
    "conversations",
)
ON = ("on", "true", "1", "yes")


def _hand_box(data: MultiMapping, name: str, default: bool) -> bool:
    """A checkbox of a hand-made link: absent -> its default; `on`/`true`/`1` -> ticked."""
    values = data.getlist(name)
    return default if not values else str(values[-1]).lower() in ON


def parse_state(data: MultiMapping, defaults: EditorState, submitted: bool = False) -> EditorState:
    """Read a submitted form or permalink query. With the `v` marker (what the form writes) an
    absent checkbox is unticked; a hand-made query without it keeps each box's default, and a
    query naming no field at all means `defaults`.

    Example: role=user&content=Hi&tokenizer=qwen3&dialect=chatml&v=1
             -> EditorState(messages=[{"role": "user", "content": "Hi"}], train_on_eot=False, ...)
    """
    marked = submitted or "v" in data
    if not marked and not any(key in data for key in HAND_MADE_KEYS):
        return defaults

    def checkbox(name: str, default: bool) -> bool:
        # A hand-made link (no `v`) keeps the documented default of every box it does not name.
        return name in data if marked else _hand_box(data, name, default)

    template = (data.get("template") or "").replace("\r\n", "\n") or None
    return dataclasses.replace(
        defaults,
        messages=_messages(data) if marked or "role" in data else defaults.messages,
        tokenizer=data.get("tokenizer") or defaults.tokenizer,
        dialect=data.get("dialect") or defaults.dialect,
        template=template,
        train_on=_choice(data, "train_on", TRAIN_ON, defaults.train_on),
        train_on_eot=checkbox("train_on_eot", defaults.train_on_eot),
        add_generation_prompt=checkbox("add_generation_prompt", defaults.add_generation_prompt),
        max_length=_length(data),
        add_special_tokens=checkbox("add_special_tokens", defaults.add_special_tokens),
        targets=_targets(data) or defaults.targets,
        padding_side=_choice(data, "padding_side", PADDING_SIDES, defaults.padding_side),
        conversations=(data.get("conversations") or "").replace("\r\n", "\n")
        or ("" if marked else defaults.conversations),
        pack_length=_length(data, "pack_length") or (None if marked else defaults.pack_length),
        tools=_typed(data, "tools"),
        chat_template_kwargs=_typed(data, "chat_template_kwargs"),
        enable_thinking=_switch(data, "enable_thinking", None),
        train_reasoning=bool(_switch(data, "train_reasoning", True)),
        train_tool_calls=bool(_switch(data, "train_tool_calls", True)),
    )
