"""The compare page: one conversation under several tokenizer+dialect pairs, side by side.

Design concession: columns come from `app.service.compare.compare`, the use case behind
POST /api/compare, so a failing column shows the same error the JSON API would put in its slot.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.deps import SettingsDep
from app.errors import InputError, MaskscopeError
from app.service.compare import compare
from app.service.requests import CompareRequest, CompareTarget
from app.settings import Settings
from app.views.common import page_context, posted_state, token_view
from app.views.errors import input_error
from app.views.forms import EditorState, Target
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)

# Four families whose markers differ in every way the page is meant to show.
DEFAULT_TARGETS = (
    ("smollm2", "chatml"),
    ("llama3", "llama3"),
    ("llama2", "llama2"),
    ("gemma3", "gemma"),
)


def default_targets(tokenizers: list[dict[str, Any]], fallback: str) -> list[Target]:
    available = {t["name"] for t in tokenizers if t["available"]}
    return [
        Target(tok if tok in available else fallback, dialect) for tok, dialect in DEFAULT_TARGETS
    ]


def _request(state: EditorState) -> CompareRequest:
    targets = [
        CompareTarget(
            tokenizer=t.tokenizer,
            dialect=t.dialect,
            template=t.template if t.dialect == "custom" else None,
        )
        for t in state.targets
    ]
    try:
        return CompareRequest(**state.render_request(), targets=targets)
    except ValidationError as exc:
        raise input_error(exc.errors()) from exc


def columns(state: EditorState, settings: Settings) -> list[dict[str, Any]]:
    """One entry per target: its title and either a token view or an error."""
    body = _request(state)
    out = []
    for target, outcome in zip(body.targets, compare(body, settings), strict=True):
        column: dict[str, Any] = {"tokenizer": target.tokenizer, "dialect": target.dialect}
        if isinstance(outcome, MaskscopeError):
            column["error"] = outcome.payload()["error"]
        else:
            rendered, lints = outcome
            column["view"] = token_view(rendered.rendering, lints, rendered.tokenizer)
        out.append(column)
    return out


def _with_targets(tokenizers: list[dict[str, Any]], base: EditorState) -> EditorState:
    return dataclasses.replace(base, targets=default_targets(tokenizers, base.tokenizer))


def _columns(state: EditorState, settings: Settings) -> dict[str, Any]:
    return {"columns": columns(state, settings)}


def _page_columns(state: EditorState, settings: Settings) -> dict[str, Any]:
    """The columns of a GET: built-in and tokenizer dialects only, custom ones left pending.

    A GET (an <img> or a link) never runs a pasted template: the htmx POST renders it.
    """
    built_in = [t for t in state.targets if t.dialect != "custom"]
    rendered = iter(columns(dataclasses.replace(state, targets=built_in), settings))
    out = [
        {"tokenizer": t.tokenizer, "dialect": t.dialect, "pending": True}
        if t.dialect == "custom"
        else next(rendered)
        for t in state.targets
    ]
    return {"columns": out}


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The compare page, pre-rendered from the permalink query if there is one."""
    context, status = await run_in_threadpool(
        page_context, request.query_params, settings, _page_columns, _with_targets
    )
    return templates.TemplateResponse(request, "compare.html", context, status_code=status)


@router.post("/fragments/compare", response_class=HTMLResponse)
async def compare_fragment(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The compare page's columns for the posted editor."""
    state = await posted_state(request, settings)
    if not state.targets:
        raise InputError("Add at least one column (a tokenizer and a dialect).", field="targets")
    context = await run_in_threadpool(_columns, state, settings)
    return render_block(request, "compare.html", "columns", context)
