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

import orjson

from app.chat.collector import collector_paused
from app.chat.columns import TokenColumns
from app.chat.layout import Dialect
from app.chat.messages import Conversation, parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, Rendering
from app.dialects.registry import get_dialect
from app.lint import lint_rendering
from app.service.encoding import encode_json
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
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings, *, columns: bool = False
) -> Rendered:
    """Parse `messages`, resolve the spec's tokenizer and dialect, render; no lints.
    `columns`: tokens as columns (for a JSON answer), not Token records (see `render`)."""
    return render_conversation(parse_messages(messages), spec, settings, columns=columns)


def render_conversation(
    conversation: Conversation, spec: RenderSpec, settings: Settings, *, columns: bool = False
) -> Rendered:
    """Render an already parsed conversation (a dataset row, a file read by the CLI)."""
    tokenizer = load_tokenizer(spec.tokenizer, settings)
    dialect = get_dialect(spec.dialect)
    rendering = render(conversation, dialect, tokenizer, spec, settings, columns=columns)
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
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings, *, columns: bool = False
) -> tuple[Rendered, list[Finding]]:
    rendered = render_messages(messages, spec, settings, columns=columns)
    return rendered, lint_rendered(rendered, settings)


def render_answer(
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings, *, columns: bool = False
) -> bytes:
    """`render_and_lint`, written as the JSON answer of /api/render: the default shape
    (`rendering_json`), or the columnar one (`rendering_columns_json`) when `columns`.

    The collector stays paused from the parse to the last byte, and what the answer was made
    from is freed before it resumes: the token columns of a long conversation are lists of tens
    of thousands of items, and every collection that writing the answer (or resuming) triggered
    would walk them all again (2-5 ms of a 28k-token answer).
    """
    with collector_paused():  # (the rendering lives in the call below: gone before resuming)
        return _written_answer(messages, spec, settings, columns)


def _written_answer(
    messages: list[dict[str, Any]], spec: RenderSpec, settings: Settings, columns: bool
) -> bytes:
    rendered, lints = render_and_lint(messages, spec, settings, columns=True)
    rendering = rendered.rendering
    if columns:
        return encode_json(rendering_columns_json(rendering, lints))
    written = rendering_json_bytes(rendering, lints)
    return written if written is not None else encode_json(rendering_json(rendering, lints))


def rendering_json(rendering: Rendering, lints: Sequence[Finding]) -> dict[str, Any]:
    """The response shape of every surface that returns a rendering (DESIGN.md §3)."""
    tokens = rendering.tokens
    return _answer(
        rendering,
        lints,
        tokens.to_json()
        if type(tokens) is TokenColumns  # (no subclasses; isinstance with an ABC is slow)
        else [t.to_json() for t in tokens],
    )


def _answer(rendering: Rendering, lints: Sequence[Finding], tokens: Any) -> dict[str, Any]:
    return {
        "text": rendering.text,
        "input_ids": rendering.input_ids,
        "labels": rendering.labels,
        "attention_mask": rendering.attention_mask,
        "tokens": tokens,
        "stats": rendering.stats(),
        "lints": [f.to_json() for f in lints],
    }


# Where the per-token list goes in the answer written with `"tokens": null`: no string in it
# holds these quotes unescaped, and only stats and lints follow, so it is found from the end.
_TOKENS_AT = b',"tokens":null,"stats":'


def rendering_json_bytes(rendering: Rendering, lints: Sequence[Finding]) -> bytes | None:
    """`rendering_json` as orjson writes it, byte for byte, with the per-token list written
    straight from the token columns (no dict per token); None where that does not apply
    (Token records, or text orjson cannot write): then write `rendering_json` itself."""
    tokens = rendering.tokens
    if type(tokens) is not TokenColumns:
        return None
    try:
        data = orjson.dumps(_answer(rendering, lints, None))
    except orjson.JSONEncodeError:  # a lint message with a lone surrogate, say
        return None
    at, whole = data.rfind(_TOKENS_AT), memoryview(data)
    # Up to `"tokens":`, and from the `,` after its null: the tokens are written in between.
    return tokens.to_json_bytes(whole[: at + 10], whole[at + 14 :])


def rendering_columns_json(rendering: Rendering, lints: Sequence[Finding]) -> dict[str, Any]:
    """The opt-in columnar shape (`"format": "columns"`): the tokens as parallel arrays, and
    no per-token list that the columns already hold (labels[i] = ids[i] if trained[i] else
    -100; the attention mask is all ones).

    Example: -> {"format": "columns", "text": "...", "ids": [...], "roles": [0, 0, 1, ...],
                 "names": {"roles": ["system", "user", ...], ...}, "stats": ..., "lints": ...}
    """
    tokens = rendering.tokens
    if type(tokens) is not TokenColumns:
        raise TypeError("the columnar shape needs a rendering made with columns=True")
    return {
        "format": "columns",
        "text": rendering.text,
        **tokens.columns_json(),
        "stats": rendering.stats(),
        "lints": [f.to_json() for f in lints],
    }
