"""What every editor page needs: its pickers, its default state, its form, and token views.

Design concession: the live token view renders without linting (`render_tokens`) and the lint
panel follows in a second request through `app.service.render.render_and_lint`, the use case
behind POST /api/render. Rendering twice costs one render (~0.2 s at 8k tokens) of server time,
but the chips never wait for the slower whole-conversation checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from markupsafe import Markup
from pydantic import ValidationError

from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, Rendering
from app.dialects.jinja import template_source
from app.dialects.registry import list_dialects
from app.errors import MaskscopeError
from app.service.render import Rendered, render_and_lint, render_messages
from app.service.requests import RenderRequest
from app.settings import Settings
from app.tokenizers.registry import list_tokenizers
from app.views.chips import chips_html
from app.views.errors import input_error
from app.views.examples import EXAMPLES, example_messages
from app.views.forms import EditorState, Target, parse_state
from app.views.stats import Summary, summarize

PREFERRED_TOKENIZERS = ("smollm2", "qwen3", "llama3", "gemma3", "mistral", "llama2")


@dataclass
class TokenView:
    """A rendering ready for a template: figures, chips, findings."""

    summary: Summary
    chips: Markup
    findings: list[Finding] | None  # None: the lint panel loads on its own


def pickers(settings: Settings) -> dict[str, Any]:
    """Template context for the tokenizer and dialect pickers and the example loader."""
    return {
        "tokenizers": list_tokenizers(settings),
        "dialects": list_dialects(),
        "examples": EXAMPLES,
    }


def default_tokenizer(tokenizers: list[dict[str, Any]]) -> str:
    """The first bundled tokenizer that is available here (smollm2 when fetched)."""
    available = {t["name"] for t in tokenizers if t["available"]}
    return next((n for n in PREFERRED_TOKENIZERS if n in available), PREFERRED_TOKENIZERS[0])


def default_state(tokenizers: list[dict[str, Any]]) -> EditorState:
    tokenizer = default_tokenizer(tokenizers)
    return EditorState(
        messages=example_messages(),
        tokenizer=tokenizer,
        dialect="chatml",
        targets=[Target(tokenizer, "chatml")],
    )


async def posted_state(request: Request, settings: Settings) -> EditorState:
    """The editor state an htmx request posted (enough form fields allowed for the longest
    conversation the settings permit)."""
    # A turn posts up to 7 fields and each of its tool calls 3 more.
    form = await request.form(max_fields=16 * settings.max_messages + 64)
    return parse_state(form, EditorState(), submitted=True)


def request_of(state: EditorState, target: Target | None = None) -> RenderRequest:
    """The /api/render body of an editor's state (or of it under another tokenizer+dialect)."""
    try:
        return RenderRequest(**state.render_request(target))
    except ValidationError as exc:
        raise input_error(exc.errors()) from exc


def render_tokens(body: RenderRequest, settings: Settings) -> Rendered:
    """What POST /api/render renders, without the lints: the live token view's fast path."""
    return render_messages(body.messages, body.spec(), settings)


def reads_variable(rendered: Rendered, name: str) -> bool:
    """Whether the Jinja template `rendered` came from reads template variable `name` (the
    tokenizer's own or the pasted one; a built-in dialect reads none).

    Example: qwen3 under dialect "tokenizer", "enable_thinking" -> True; chatml -> False
    """
    if rendered.spec.dialect not in ("tokenizer", "custom"):
        return False
    source = template_source(rendered.spec.dialect, rendered.tokenizer, rendered.spec)
    return re.search(rf"\b{re.escape(name)}\b", source) is not None


def lint_findings(state: EditorState, settings: Settings) -> list[Finding]:
    """The lints POST /api/render would return for this state."""
    body = request_of(state)
    return render_and_lint(body.messages, body.spec(), settings)[1]


def token_view(
    rendering: Rendering, findings: list[Finding] | None, tokenizer: Tokenizer
) -> TokenView:
    return TokenView(
        summary=summarize(rendering),
        chips=chips_html(rendering, tokenizer),
        findings=findings,
    )


Build = Callable[[EditorState, Settings], dict[str, Any]]
Customize = Callable[[list[dict[str, Any]], EditorState], EditorState]


def page_context(
    query: Any, settings: Settings, build: Build, customize: Customize | None = None
) -> tuple[dict[str, Any], int]:
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
