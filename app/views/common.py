"""What every editor page needs: its pickers, its default state, its form, and token views.

Design concession: rendering goes through `app.api.render.render_request`, the very function
behind POST /api/render, so a page can never show tokens or labels the JSON API would not return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from markupsafe import Markup
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.api.render import RenderRequest, render_request
from app.chat.tokens import Finding, Rendering
from app.dialects.registry import list_dialects
from app.errors import InputError, MaskscopeError
from app.settings import Settings
from app.tokenizers.registry import list_tokenizers, load_tokenizer
from app.views.chips import chips_html
from app.views.errors import validation_message
from app.views.examples import EXAMPLES, example_messages
from app.views.forms import EditorState, Target, parse_state
from app.views.stats import Summary, markers, summarize

PREFERRED_TOKENIZERS = ("smollm2", "qwen3", "llama3", "gemma3", "mistral", "llama2")


@dataclass
class TokenView:
    """A rendering ready for a template: figures, chips, findings, marker positions."""

    summary: Summary
    chips: Markup
    findings: list[Finding]
    markers: dict[str, dict[str, Any]]


def pickers(settings: Settings) -> dict[str, Any]:
    """Template context for the tokenizer and dialect pickers and the example loader."""
    return {"tokenizers": list_tokenizers(settings), "dialects": list_dialects(),
            "examples": EXAMPLES}


def default_tokenizer(tokenizers: list[dict[str, Any]]) -> str:
    """The first bundled tokenizer that is available here (smollm2 when fetched)."""
    available = {t["name"] for t in tokenizers if t["available"]}
    return next((n for n in PREFERRED_TOKENIZERS if n in available), PREFERRED_TOKENIZERS[0])


def default_state(tokenizers: list[dict[str, Any]]) -> EditorState:
    tokenizer = default_tokenizer(tokenizers)
    return EditorState(messages=example_messages(), tokenizer=tokenizer, dialect="chatml",
                       targets=[Target(tokenizer, "chatml")])


async def read_form(request: Request, settings: Settings) -> FormData:
    """The posted form; enough fields allowed for the longest conversation the settings permit."""
    return await request.form(max_fields=2 * settings.max_messages + 64)


def render_state(state: EditorState, settings: Settings,
                 target: Target | None = None) -> tuple[Rendering, list[Finding], Any]:
    """Render an editor's state (or it under another tokenizer+dialect) via the API core."""
    try:
        body = RenderRequest(**state.render_request(target))
    except ValidationError as exc:
        message, field = validation_message(exc.errors())
        raise InputError(message, field=field) from exc
    rendering, findings = render_request(body, settings)
    return rendering, findings, load_tokenizer(body.tokenizer, settings)


def token_view(rendering: Rendering, findings: list[Finding], tokenizer: Any) -> TokenView:
    return TokenView(summary=summarize(rendering), chips=chips_html(rendering, tokenizer),
                     findings=findings, markers=markers(rendering, tokenizer))


Build = Callable[[EditorState, Settings], dict[str, Any]]
Customize = Callable[[list[dict[str, Any]], EditorState], EditorState]


def page_context(query: Any, settings: Settings, build: Build,
                 customize: Customize | None = None) -> tuple[dict[str, Any], int]:
    """Context and status of a full editor page: pickers, state from the permalink, result.

    A bad permalink still gives the whole page, with the error where the result would be.
    """
    context = pickers(settings)
    state = default_state(context["tokenizers"])
    if customize is not None:
        state = customize(context["tokenizers"], state)
    try:
        state = parse_state(query, state)
        context.update(build(state, settings))
        status = 200
    except MaskscopeError as exc:
        context["error"], status = exc.payload()["error"], exc.status
    return {**context, "state": state}, status
