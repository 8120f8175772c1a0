"""POST /api/render: a conversation in, every token with its role, id and loss label out."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import SettingsDep
from app.chat.messages import parse_messages
from app.chat.render import RenderOptions, render
from app.chat.tokens import Rendering
from app.tokenizers.registry import load_tokenizer

router = APIRouter(prefix="/api", tags=["render"])


class RenderRequest(BaseModel):
    """The body of POST /api/render (DESIGN.md §3)."""

    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]] = Field(
        ..., description="[{role: system|user|assistant|tool, content: str}, ...]"
    )
    tokenizer: str = Field("smollm2", description="Bundled name, local folder, or Hub id.")
    dialect: str = Field("chatml", description="Built-in slug, 'tokenizer' or 'custom'.")
    template: str | None = Field(None, description="Jinja source when dialect is 'custom'.")
    train_on: Literal["assistant", "last_assistant", "all"] = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = Field(None, ge=1)


def rendering_json(rendering: Rendering, lints: list[Any]) -> dict[str, Any]:
    """The response shape shared by every endpoint that returns a rendering."""
    return {
        "text": rendering.text,
        "input_ids": rendering.input_ids,
        "labels": rendering.labels,
        "attention_mask": rendering.attention_mask,
        "tokens": [t.to_json() for t in rendering.tokens],
        "stats": rendering.stats(),
        "lints": [f.to_json() for f in lints],
    }


def render_body(body: RenderRequest, settings: Any) -> tuple[Rendering, Any, Any, RenderOptions]:
    """Render a request without linting: (rendering, tokenizer, conversation, options).

    The live token view stops here; the JSON API and the lint panel go on to lint."""
    conversation = parse_messages(body.messages)
    tokenizer = load_tokenizer(body.tokenizer, settings)
    options = RenderOptions(
        train_on=body.train_on,
        train_on_eot=body.train_on_eot,
        add_generation_prompt=body.add_generation_prompt,
        max_length=body.max_length,
        template=body.template,
        settings=settings,
    )
    return render(conversation, body.dialect, tokenizer, options), tokenizer, conversation, options


def render_request(body: RenderRequest, settings: Any) -> tuple[Rendering, list[Any]]:
    """Render a request and lint the result (shared by the JSON API and the views)."""
    from app.lint import lint_rendering

    rendering, tokenizer, conversation, options = render_body(body, settings)
    lints = lint_rendering(
        rendering,
        conversation=conversation,
        tokenizer=tokenizer,
        dialect=body.dialect,
        options=options,
    )
    return rendering, lints


@router.post("/render")
def post_render(body: RenderRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render, tokenize and mask one conversation; lints included."""
    rendering, lints = render_request(body, settings)
    return rendering_json(rendering, lints)
