"""The request bodies of the render-family use cases, each converting to a RenderSpec once.

The JSON API takes these as bodies, the editor pages validate their form state with them, so a
bad value gets the same sentence everywhere. Pydantic checks the shape; the engine checks limits.

Example: RenderRequest(messages=[...], tokenizer="qwen3", train_on="all").spec()
         -> RenderSpec(tokenizer="qwen3", dialect="chatml", train_on="all", ...)
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.chat.spec import DEFAULT_DIALECT, DEFAULT_TOKENIZER, RenderSpec, TrainOn

_SPEC_FIELDS = frozenset(f.name for f in fields(RenderSpec))
_TOKENIZER = "Bundled name, local folder, or Hub id."
_DIALECT = "Built-in slug, 'tokenizer' or 'custom'."
_TEMPLATE = "Jinja source when dialect is 'custom'."
_TOOLS = "OpenAI function specs, given to the template as apply_chat_template(tools=...) does."
_KWARGS = (
    "Extra template variables, as **kwargs to apply_chat_template (e.g. enable_thinking); "
    "names the template gets from the request itself (messages, bos_token...) are refused."
)
_TRAIN_REASONING = "Train the reasoning an assistant turn writes (false: leave it untrained)."
_TRAIN_TOOL_CALLS = "Train the tool calls an assistant turn writes (false: leave them untrained)."


class TemplateInputs(BaseModel):
    """The fields every render-family body shares for what the template sees beyond the
    messages, and for masking reasoning and tool calls (DESIGN §3.1)."""

    tools: list[dict[str, Any]] | None = Field(None, description=_TOOLS)
    chat_template_kwargs: dict[str, Any] | None = Field(None, description=_KWARGS)
    train_reasoning: bool = Field(True, description=_TRAIN_REASONING)
    train_tool_calls: bool = Field(True, description=_TRAIN_TOOL_CALLS)


def spec_of(body: BaseModel) -> RenderSpec:
    """The RenderSpec of a request body: its fields that RenderSpec has, the rest defaulted.

    Example: BatchRequest(conversations=[...], train_on="all") -> RenderSpec(train_on="all", ...)
    """
    return RenderSpec(**body.model_dump(include=set(_SPEC_FIELDS & set(type(body).model_fields))))


class RenderRequest(TemplateInputs):
    """The body of POST /api/render (DESIGN.md §3)."""

    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]] = Field(
        ...,
        description="[{role: system|developer|user|assistant|tool, content: str or parts}, ...]",
    )
    tokenizer: str = Field(DEFAULT_TOKENIZER, description=_TOKENIZER)
    dialect: str = Field(DEFAULT_DIALECT, description=_DIALECT)
    template: str | None = Field(None, description=_TEMPLATE)
    train_on: TrainOn = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = Field(None, ge=1)
    add_special_tokens: bool = Field(
        False,
        description="Tokenize the rendered text as tokenizer(text) does by default: "
        "with the tokenizer's own BOS (and EOS), like apply_chat_template(tokenize=False) "
        "followed by tokenizer(text). Doubles the BOS of templates that write bos_token.",
    )

    def spec(self) -> RenderSpec:
        return spec_of(self)


class RenderAnswerRequest(RenderRequest):
    """The body of POST /api/render itself: the render fields plus the shape of the answer."""

    format: Literal["tokens", "columns"] = Field(
        "tokens",
        description="'tokens': one object per token (DESIGN §3); 'columns': the tokens as "
        "parallel arrays (ids, texts, roles, messages, parts, trained, starts, ends), a few "
        "bytes per token for long conversations.",
    )


class CompareTarget(BaseModel):
    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    tokenizer: str = Field(..., description=_TOKENIZER)
    dialect: str = Field(..., description=_DIALECT)
    template: str | None = Field(None, description=_TEMPLATE)


class CompareRequest(RenderRequest):
    """The /api/render fields (tokenizer/dialect come from each target) plus the targets."""

    targets: list[CompareTarget] = Field(
        ..., min_length=1, description="Tokenizer+dialect pairs, one per column."
    )

    def target_spec(self, target: CompareTarget) -> RenderSpec:
        """The spec of one column; a target without a template uses the shared one."""
        template = target.template if target.template is not None else self.template
        return replace(
            self.spec(), tokenizer=target.tokenizer, dialect=target.dialect, template=template
        )


class BatchRequest(TemplateInputs):
    """The body of POST /api/batch."""

    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    conversations: list[list[dict[str, Any]]] = Field(
        ..., min_length=1, description="A list of conversations, each a list of messages."
    )
    tokenizer: str = Field(DEFAULT_TOKENIZER, description=_TOKENIZER)
    dialect: str = Field(DEFAULT_DIALECT, description=_DIALECT)
    template: str | None = Field(None, description=_TEMPLATE)
    train_on: TrainOn = "assistant"
    train_on_eot: bool = True
    padding_side: Literal["right", "left"] = "right"
    pack: bool = False
    max_length: int | None = Field(
        None,
        ge=1,
        description="Cut each conversation (and, when "
        "packing, the row length) at this many tokens.",
    )

    def spec(self) -> RenderSpec:
        return spec_of(self)
