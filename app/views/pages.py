"""The playground: GET / (the page, state from the permalink query) and its live fragment.

Design concession: the page renders its first result on the server, so a permalink shows tokens
at once (and without JavaScript); the editor then re-renders only the `result` block via htmx,
and the `lints` block follows in its own request so the chips never wait for the checks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from app.deps import SettingsDep
from app.settings import Settings
from app.views.common import (
    lint_findings,
    page_context,
    posted_state,
    reads_variable,
    render_tokens,
    request_of,
    token_view,
)
from app.views.forms import EditorState
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)


def _result(state: EditorState, settings: Settings) -> dict[str, Any]:
    rendered = render_tokens(request_of(state), settings)
    return {
        "view": token_view(rendered.rendering, None, rendered.tokenizer),
        "reads_thinking": reads_variable(rendered, "enable_thinking"),
    }


def _page_result(state: EditorState, settings: Settings) -> dict[str, Any]:
    # A GET (an <img> or a link) never runs a pasted template: the htmx POST renders it.
    return {"pending": True} if state.dialect == "custom" else _result(state, settings)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The playground page, pre-rendered from the permalink query if there is one."""
    context, status = await run_in_threadpool(
        page_context, request.query_params, settings, _page_result
    )
    return templates.TemplateResponse(request, "index.html", context, status_code=status)


@router.post("/fragments/render", response_class=HTMLResponse)
async def render_fragment(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The playground's result block (stats, legend, chips, lints) for the posted editor."""
    state = await posted_state(request, settings)
    context = await run_in_threadpool(_result, state, settings)
    return render_block(request, "index.html", "result", context)


@router.post("/fragments/lints", response_class=HTMLResponse)
async def lints_fragment(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The playground's lint panel, fetched once its chips are on screen."""
    state = await posted_state(request, settings)
    findings = await run_in_threadpool(lint_findings, state, settings)
    return render_block(request, "index.html", "lints", {"findings": findings})
