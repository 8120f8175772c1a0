"""The compare page: one conversation under several tokenizer+dialect pairs, aligned by message.

One table row per message (and for what a template writes before the first and after the last),
one column per pair: each cell holds that message's tokens under that pair with its token and
trained counts, and the row says in words what differs (`app.service.compare.align`).

Design concession: columns come from `app.service.compare.compare`, the use case behind
POST /api/compare, so a failing column shows the same error the JSON API would put in its slot.
A cell's chips keep their indices in the whole rendering, so a message whose tokens are not
contiguous (Llama 2 folds the system prompt into the first user turn) shows as several runs.

Example: GET /compare?v=1&role=user&content=Hi&target_tokenizer=qwen3&target_dialect=chatml
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Rendering
from app.deps import SettingsDep
from app.errors import InputError, MaskscopeError
from app.service.compare import AlignedRow, Outcome, align, compare, quote
from app.service.requests import CompareRequest, CompareTarget
from app.settings import Settings
from app.tokenizers.registry import list_tokenizers
from app.views.chips import chip_strings, mark, runs_html
from app.views.common import page_context, posted_state
from app.views.errors import input_error
from app.views.forms import EditorState, Target
from app.views.stats import summarize
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)
# Between two chips of a cell: where a line may break (chips themselves never break).
BREAK = "\u200b"

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


def contiguous(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted token indices as (start, end) runs. Example: [1, 2, 3, 7, 8] -> [(1, 4), (7, 9)]"""
    bounds: list[tuple[int, int]] = []
    for i in indices:
        if bounds and bounds[-1][1] == i:
            bounds[-1] = (bounds[-1][0], i + 1)
        else:
            bounds.append((i, i + 1))
    return bounds


def facts(rendering: Rendering, tokenizer: Tokenizer) -> list[str]:
    """Sentences about BOS, EOS and the end-of-turn marker that mean what they say: a BOS is a
    BOS where it stands outside every message, not every `<|im_start|>` that shares its id.

    Example: SmolLM2 (BOS id = <|im_start|>) -> ["no BOS token before the messages",
             "the BOS id `<|im_start|>` opens 5 turns", "EOS `<|im_end|>` closes 5 turns", ...]
    """
    tokens = rendering.tokens
    out: list[str] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if bos is not None:
        name = quote(str(getattr(tokenizer, "bos_token", bos)))
        outside = [t.index for t in tokens if t.id == bos and t.message is None]
        inside = sum(1 for t in tokens if t.id == bos and t.message is not None)
        if outside:
            where = ", ".join(map(str, outside[:6])) + (" …" if len(outside) > 6 else "")
            out.append(f"BOS {name} at {where}")
        else:
            out.append("no BOS token before the messages")
        if inside:
            out.append(f"the BOS id {name} opens {inside} turn{'s' * (inside != 1)}")
    eot = [(s.eot_start, s.eot_end) for s in rendering.spans if s.eot_start is not None]
    if eos is not None:
        name = quote(str(getattr(tokenizer, "eos_token", eos)))
        closing = sum(
            1 for t in tokens if t.id == eos and any(a <= t.start < (b or a + 1) for a, b in eot)
        )
        final = bool(tokens) and tokens[-1].id == eos and tokens[-1].message is None
        if closing:
            out.append(f"EOS {name} closes {closing} turn{'s' * (closing != 1)}")
        if final:
            out.append(f"EOS {name} ends the sequence")
        if not closing and not final:
            out.append(f"no EOS {name}")
    marks = sorted({rendering.text[a:b] for a, b in eot if b is not None})
    if marks:
        out.append("end of turn: " + ", ".join(quote(m) for m in marks))
    else:
        out.append("no end-of-turn marker")
    return out


def _header(target: CompareTarget, outcome: Outcome) -> dict[str, Any]:
    column: dict[str, Any] = {"tokenizer": target.tokenizer, "dialect": target.dialect}
    if isinstance(outcome, MaskscopeError):
        column["error"] = outcome.payload()["error"]
        return column
    rendered, lints = outcome
    column["summary"] = summarize(rendered.rendering)
    column["facts"] = facts(rendered.rendering, rendered.tokenizer)
    column["findings"] = lints
    return column


def _cells(outcome: Outcome, rows: list[AlignedRow], index: int) -> list[dict[str, Any] | None]:
    """One column's cells, row by row: chips (differences marked), counts."""
    if isinstance(outcome, MaskscopeError):
        return [None] * len(rows)
    rendered = outcome[0]
    chips = chip_strings(rendered.rendering, rendered.tokenizer)
    out: list[dict[str, Any] | None] = []
    for row in rows:
        cell = row.cells[index]
        if cell is None:
            out.append(None)
            continue
        for i in cell.marked:
            chips[i] = mark(chips[i], "dx")
        out.append(
            {
                "chips": runs_html(chips, contiguous(cell.tokens), BREAK),
                "tokens": len(cell.tokens),
                "trained": cell.trained,
                "differs": cell.differs,
            }
        )
    return out


def comparison(state: EditorState, settings: Settings) -> dict[str, Any]:
    """The page's columns (title, figures, facts, lints or an error) and its rows: one per
    message, each column's tokens of that message side by side, differences in words."""
    body = _request(state)
    outcomes = compare(body, settings)
    renderings = [None if isinstance(o, MaskscopeError) else o[0].rendering for o in outcomes]
    pairs = [(t.tokenizer, t.dialect) for t in body.targets]
    rows = align(body.messages, renderings, pairs, body.add_generation_prompt)
    cells = [_cells(o, rows, i) for i, o in enumerate(outcomes)]
    return {
        "columns": [_header(t, o) for t, o in zip(body.targets, outcomes, strict=True)],
        "rows": [
            {
                "key": row.key,
                "title": row.title,
                "differences": row.differences,
                "cells": [column[r] for column in cells],
            }
            for r, row in enumerate(rows)
        ],
    }


def _with_targets(tokenizers: list[dict[str, Any]], base: EditorState) -> EditorState:
    return dataclasses.replace(base, targets=default_targets(tokenizers, base.tokenizer))


def _page_columns(state: EditorState, settings: Settings) -> dict[str, Any]:
    """The comparison of a GET: built-in and tokenizer dialects only, custom ones left pending.

    A GET (an <img> or a link) never runs a pasted template: the htmx POST renders it.
    """
    built_in = [t for t in state.targets if t.dialect != "custom"]
    context = comparison(dataclasses.replace(state, targets=built_in), settings)
    rows = context["rows"]
    rendered = iter(range(len(built_in)))
    columns, by_column = [], []
    for t in state.targets:
        if t.dialect == "custom":
            columns.append({"tokenizer": t.tokenizer, "dialect": t.dialect, "pending": True})
            by_column.append([None] * len(rows))
        else:
            i = next(rendered)
            columns.append(context["columns"][i])
            by_column.append([row["cells"][i] for row in rows])
    for r, row in enumerate(context["rows"]):
        row["cells"] = [column[r] for column in by_column]
    return {"columns": columns, "rows": context["rows"]}


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The compare page, pre-rendered from the permalink query if there is one."""
    query = await run_in_threadpool(carried, request.query_params, settings)
    context, status = await run_in_threadpool(
        page_context, query, settings, _page_columns, _with_targets
    )
    return templates.TemplateResponse(request, "compare.html", context, status_code=status)


def carried(query: QueryParams, settings: Settings) -> QueryParams:
    """A query carried from the playground (a tokenizer and dialect, no columns): the same query
    with that pair as the first column and the usual families after it.

    Example: ?v=1&tokenizer=qwen3&dialect=tokenizer&role=user&content=Hi
             -> … &target_tokenizer=qwen3&target_dialect=tokenizer&target_tokenizer=smollm2 …
    """
    if "target_tokenizer" in query or not query.get("tokenizer"):
        return query
    first = Target(query["tokenizer"], query.get("dialect") or "chatml", query.get("template"))
    rest = default_targets(list_tokenizers(settings), first.tokenizer)
    pairs = [
        first,
        *[t for t in rest if (t.tokenizer, t.dialect) != (first.tokenizer, first.dialect)],
    ]
    items = list(query.multi_items())
    for t in pairs[: len(DEFAULT_TARGETS)]:
        template = (t.template or "") if t.dialect == "custom" else ""
        items += [("target_tokenizer", t.tokenizer), ("target_dialect", t.dialect)]
        items.append(("target_template", template))
    return QueryParams(items)


@router.post("/fragments/compare", response_class=HTMLResponse)
async def compare_fragment(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The compare page's columns for the posted editor."""
    state = await posted_state(request, settings)
    if not state.targets:
        raise InputError("Add at least one column (a tokenizer and a dialect).", field="targets")
    context = await run_in_threadpool(comparison, state, settings)
    return render_block(request, "compare.html", "columns", context)
