"""RenderSpec: what to render and how to mask, as one typed value every surface converts to once.

The JSON API, the editor pages, the CLI, dataset inspection, template workers and fine-tune jobs
each turn their own input into a RenderSpec in one place; the engine, the lints and the trainer
read only this. Fields for new request options (tools, template kwargs, reasoning and tool-call
masking) are added here and nowhere else.

Example: RenderSpec(tokenizer="llama3", dialect="llama3", train_on="last_assistant")
         -> everything but the last assistant answer (and its <|eot_id|>) gets label -100

Design concession: `tokenizer` and `dialect` are references (names, folders, Hub ids), resolved
by the layers that own them (app.tokenizers, app.dialects); the engine itself takes the resolved
objects, so it never looks a name up. The JSON a spec carries for the template (`tools`,
`chat_template_kwargs`) is stored frozen, as JSON text (one string per tool, one per variable), so
a spec stays hashable and equal specs compare equal; `template_variables()` thaws it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from app.chat.messages import check_strings
from app.errors import InputError

TrainOn = Literal["assistant", "last_assistant", "all"]
TRAIN_ON: tuple[TrainOn, ...] = get_args(TrainOn)
DEFAULT_TOKENIZER = "smollm2"
DEFAULT_DIALECT = "chatml"
# Names apply_chat_template fills itself: a chat_template_kwargs entry may not replace them.
RESERVED_VARIABLES = frozenset(
    {
        "messages",
        "tools",
        "documents",
        "add_generation_prompt",
        "continue_final_message",
        "raise_exception",
        "strftime_now",
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
        "additional_special_tokens",
    }
)
FrozenTools = tuple[str, ...]
FrozenKwargs = tuple[tuple[str, str], ...]


def freeze_tools(tools: Sequence[Any] | None, where: str = "tools") -> FrozenTools | None:
    """Tool specs as JSON text, one string per tool (None stays None: no tools at all).

    Example: freeze_tools([{"type": "function", "function": {"name": "f"}}])
             -> ('{"type": "function", "function": {"name": "f"}}',)
    """
    if tools is None:
        return None
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
        raise InputError(f"{where} must be a list of tool specs (JSON objects).", field=where)
    out = []
    for i, tool in enumerate(tools):
        if isinstance(tool, str):  # already frozen
            out.append(tool)
            continue
        if not isinstance(tool, Mapping):
            raise InputError(f"{where}[{i}] must be a JSON object (a tool spec).", field=where)
        check_strings(tool, f"{where}[{i}]")
        out.append(json.dumps(tool, ensure_ascii=False))
    return tuple(out)


def freeze_kwargs(
    kwargs: Mapping[str, Any] | Sequence[tuple[str, str]] | None,
    where: str = "chat_template_kwargs",
) -> FrozenKwargs:
    """Extra template variables as (name, JSON text) pairs; refuses the names the template gets
    from apply_chat_template itself (messages, add_generation_prompt, bos_token...).

    Example: freeze_kwargs({"enable_thinking": False}) -> (("enable_thinking", "false"),)
    """
    if not kwargs:
        return ()
    if not isinstance(kwargs, Mapping):
        if _frozen_pairs(kwargs):
            return tuple((k, v) for k, v in kwargs)
        raise InputError(f"{where} must be a JSON object of template variables.", field=where)
    for name in kwargs:
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"{where} has the name {name!r}; names are identifiers.", field=where)
        if name in RESERVED_VARIABLES:
            raise InputError(
                f"{where} may not set {name!r}: the template gets it from the request itself "
                f"(reserved: {', '.join(sorted(RESERVED_VARIABLES))}).",
                field=where,
            )
        check_strings(kwargs[name], f"{where}.{name}")
    return tuple((k, json.dumps(v, ensure_ascii=False)) for k, v in kwargs.items())


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What to render (tokenizer, dialect, template) and how to mask it.

    `template`: the Jinja source when `dialect` is "custom". `max_length`: cut the rendering at
    this many tokens (None: keep all). `train_on_eot`: train the marker that closes a trained turn.
    `add_special_tokens`: tokenize the rendered text as `tokenizer(text)` does by default, adding
    the tokenizer's own BOS (and EOS, where it adds one) around it: the common pipeline
    "apply_chat_template(tokenize=False), then tokenizer(text)", which doubles the BOS of
    templates that write `bos_token` (Llama 3, Gemma).
    `tools`: OpenAI function specs, given to the template as `tools` (None: no tools, as
    apply_chat_template without them); `chat_template_kwargs`: extra template variables (as
    `**kwargs` to apply_chat_template). Both are stored frozen (see `freeze_tools`,
    `freeze_kwargs`; a list or dict given here is frozen on construction).
    `train_reasoning` / `train_tool_calls`: whether the reasoning and the tool calls an
    assistant turn writes are trained (false: cut out of the trained text).
    """

    tokenizer: str = DEFAULT_TOKENIZER
    dialect: str = DEFAULT_DIALECT
    template: str | None = None
    train_on: TrainOn = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = None
    add_special_tokens: bool = False
    tools: FrozenTools | None = None
    chat_template_kwargs: FrozenKwargs = ()
    train_reasoning: bool = True
    train_tool_calls: bool = True

    def __post_init__(self) -> None:
        # Python callers may pass plain JSON data; it is frozen once, here.
        object.__setattr__(self, "tools", freeze_tools(self.tools))
        object.__setattr__(self, "chat_template_kwargs", freeze_kwargs(self.chat_template_kwargs))

    def template_variables(self) -> dict[str, Any]:
        """What the template sees besides the messages and special tokens: `tools` and the
        extra variables, as apply_chat_template(messages, tools=..., **kwargs) gives them.

        Example: RenderSpec(chat_template_kwargs={"enable_thinking": False}).template_variables()
                 -> {"tools": None, "enable_thinking": False}
        """
        tools = None if self.tools is None else [json.loads(t) for t in self.tools]
        return {"tools": tools, **{k: json.loads(v) for k, v in self.chat_template_kwargs}}

    def template_json_chars(self) -> int:
        """Characters of JSON the tools and the extra variables add (bounded by max_chars)."""
        return sum(map(len, self.tools or ())) + sum(len(v) for _, v in self.chat_template_kwargs)


def _frozen_pairs(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    )


def json_field(raw: str | None, where: str, field: str) -> Any:
    """A field given as JSON text (a form field, a CLI flag) parsed; None stays None.

    Example: json_field('{"enable_thinking": false}', "--chat-template-kwargs",
                        "chat_template_kwargs") -> {"enable_thinking": False}
    """
    if raw is None or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON: {exc.msg}.", field=field) from None


def row_spec(spec: RenderSpec, row: Any) -> RenderSpec:
    """The spec of one dataset row: a row's own `tools` column replaces the spec's tools, its
    `chat_template_kwargs` are added over the spec's (a row without either: `spec` itself).

    Example: row_spec(RenderSpec(), {"messages": [...], "tools": [{...}]}).tools -> ('{...}',)
    """
    if not has_row_inputs(row):
        return spec
    tools = row.get("tools")
    kwargs = row.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InputError(
            "The row's chat_template_kwargs must be a JSON object.", field="chat_template_kwargs"
        )
    return replace(
        spec,
        tools=spec.tools if tools is None else freeze_tools(tools),
        chat_template_kwargs=tuple(
            (dict(spec.chat_template_kwargs) | dict(freeze_kwargs(kwargs))).items()
        ),
    )


def has_row_inputs(row: Any) -> bool:
    """Whether a dataset row carries its own tools or template variables (see `row_spec`)."""
    return isinstance(row, Mapping) and ("tools" in row or "chat_template_kwargs" in row)
