"""The browser's side of per-token scores: the playground's request body, and /inspect's
ranking of a dataset's rows by loss.

The playground's score.js posts the editor form to /fragments/score-request, which answers the
/api/score body of that state (parsed by the same `parse_state` the render fragment uses), adds
the picked model and posts it to /api/score: one parser of the form, one scoring endpoint. The
/inspect page's "Rank rows by loss" form posts a dataset to /inspect/score and gets the
`_inspect_score.html` partial back (rows, highest mean trained loss first, and a histogram).

Design concession: ranking runs inside the request (in the thread pool), bounded by the
max_score_rows setting, rather than as a background run that the page polls: the htmx indicator
is the progress; the CLI (`maskscope score --dataset`) reports progress per row.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile

from app.chat.spec import TRAIN_ON, RenderSpec
from app.deps import SettingsDep, StoreDep
from app.errors import InputError
from app.service.score import dataset_rows, rank_rows
from app.views.common import pickers, posted_state, request_of
from app.views.templating import templates

router = APIRouter(include_in_schema=False)
TOP = 50


@router.post("/fragments/score-request")
async def score_request(request: Request, settings: SettingsDep) -> JSONResponse:
    """The /api/score body (less the model) of the posted playground form."""
    state = await posted_state(request, settings)
    return JSONResponse(request_of(state).model_dump(mode="json"))


def _field(form: Any, name: str, default: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else default


@router.post("/inspect/score", response_class=HTMLResponse)
async def rank_dataset(request: Request, settings: SettingsDep, store: StoreDep) -> HTMLResponse:
    """A dataset's rows ranked by mean trained loss under the chosen model (a partial)."""
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InputError("Choose a dataset file (JSONL) to rank.", field="file")
    train_on = _field(form, "train_on", "assistant")
    if train_on not in TRAIN_ON:
        raise InputError(f"train_on must be one of {', '.join(TRAIN_ON)}.", field="train_on")
    spec = RenderSpec(
        tokenizer=_field(form, "tokenizer", "smollm2"),
        dialect=_field(form, "dialect", "tokenizer"),
        train_on=train_on,
    )
    model = _field(form, "model", "smollm2")
    ranking = await run_in_threadpool(
        rank_rows, dataset_rows(upload.file, settings), spec, model, settings, store
    )
    most = max((b["count"] for b in ranking.histogram), default=0) or 1
    context = {
        **pickers(settings),
        "score_form": {"tokenizer": spec.tokenizer, "dialect": spec.dialect, "train_on": train_on},
        "ranking": ranking,
        "rows": ranking.rows[:TOP],
        "most": most,
        "model": model,
        "bound": settings.max_score_rows,
    }
    return templates.TemplateResponse(request, "_inspect_score.html", context)
