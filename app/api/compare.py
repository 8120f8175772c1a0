"""POST /api/compare: one conversation under several tokenizer+dialect pairs, in order, and the
columns aligned by message.

Example: {"messages": [...], "targets": [{"tokenizer": "qwen3", "dialect": "chatml"}, ...]}
         -> {"results": [<an /api/render response>, ...], "rows": [{"key": "0", ...}, ...]}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import SettingsDep
from app.errors import MaskscopeError
from app.service.compare import AlignedRow, align, compare
from app.service.render import rendering_json
from app.service.requests import CompareRequest

router = APIRouter(prefix="/api", tags=["render"])


@router.post("/compare")
def post_compare(body: CompareRequest, settings: SettingsDep) -> dict[str, Any]:
    """Render one conversation under each target; failing targets give error entries. `rows`
    lines the columns up by message (token indices per column) and names what differs."""
    results = []
    outcomes = compare(body, settings)
    for outcome in outcomes:
        if isinstance(outcome, MaskscopeError):
            results.append(outcome.payload())
        else:
            rendered, lints = outcome
            results.append(rendering_json(rendered.rendering, lints))
    renderings = [None if isinstance(o, MaskscopeError) else o[0].rendering for o in outcomes]
    pairs = [(t.tokenizer, t.dialect) for t in body.targets]
    rows = align(body.messages, renderings, pairs, body.add_generation_prompt)
    return {"results": results, "rows": [row_json(row) for row in rows]}


def row_json(row: AlignedRow) -> dict[str, Any]:
    """One aligned row: its key ("before", "0", …, "after"), title, sentences, and per column
    the indices of its tokens, how many are trained, and whether it differs (null: failed)."""
    return {
        "key": row.key,
        "title": row.title,
        "differences": row.differences,
        "cells": [
            None
            if cell is None
            else {"tokens": cell.tokens, "trained": cell.trained, "differs": cell.differs}
            for cell in row.cells
        ],
    }
