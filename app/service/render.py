"""Render one conversation (and lint it): the use case behind /api/render, /api/lint, the
playground, the compare columns and `maskscope render`.

Example: render_and_lint([{"role": "user", "content": "Hi"}, ...], RenderSpec(), settings)
         -> (Rendered(rendering=..., tokenizer=..., ...), [Finding("pad-is-eos", ...)])

Design concession: rendering and linting are two steps, so the live token view can show chips
before the slower whole-conversation checks (which re-render) have run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.chat.layout import Dialect
from app.chat.messages import Conversation, parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, Rendering
from app.dialects.registry import get_dialect
from app.lint import lint_rendering
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


@dataclass(frozen=True)
class Rendered:
    """A rendering and what it was made from (what the lints and the views need again)."""

    rendering: Rendering
    conversation: Conversation
    tokenizer: Tokenizer
    dialect: Dialect
    spec: RenderSpec


def render_messages(
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings
) -> Rendered:
    """Parse `messages`, resolve the spec's tokenizer and dialect, render; no lints."""
    return render_conversation(parse_messages(messages), spec, settings)


def render_conversation(
    conversation: Conversation, spec: RenderSpec, settings: Settings
) -> Rendered:
    """Render an already parsed conversation (a dataset row, a file read by the CLI)."""
    tokenizer = load_tokenizer(spec.tokenizer, settings)
    dialect = get_dialect(spec.dialect)
    rendering = render(conversation, dialect, tokenizer, spec, settings)
    return Rendered(rendering, conversation, tokenizer, dialect, spec)


def lint_rendered(rendered: Rendered, settings: Settings) -> list[Finding]:
    """Every lint finding for a rendering, the engine's own included."""
    return lint_rendering(
        rendered.rendering,
        conversation=rendered.conversation,
        tokenizer=rendered.tokenizer,
        dialect=rendered.dialect,
        spec=rendered.spec,
        settings=settings,
    )


def render_and_lint(
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings
) -> tuple[Rendered, list[Finding]]:
    rendered = render_messages(messages, spec, settings)
    return rendered, lint_rendered(rendered, settings)


def rendering_json(rendering: Rendering, lints: Sequence[Finding]) -> dict[str, Any]:
    """The response shape of every surface that returns a rendering (DESIGN.md §3)."""
    return {
        "text": rendering.text,
        "input_ids": rendering.input_ids,
        "labels": rendering.labels,
        "attention_mask": rendering.attention_mask,
        "tokens": [t.to_json() for t in rendering.tokens],
        "stats": rendering.stats(),
        "lints": [f.to_json() for f in lints],
    }
