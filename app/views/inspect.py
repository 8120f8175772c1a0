"""The /inspect page: upload a dataset, watch the progress, read the summary, drill into a row.

Design concession: the inspection runs in a background thread of this process (see
app.inspect.runs) and the page polls it with htmx, so a 100k-row upload never holds a request
open; without JavaScript the progress page refreshes itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.datastructures import UploadFile

from app.deps import SettingsDep
from app.errors import InputError, MaskscopeError
from app.inspect.columns import column_map
from app.inspect.plots import bars
from app.inspect.report import triage as triage_rows
from app.inspect.runs import Run, run_summary
from app.service import inspect as inspection
from app.settings import Settings
from app.views.common import pickers, token_view
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


@dataclass(frozen=True)
class Triage:
    """How the page lists the rows: the least severity shown, one code, the order."""

    severity: str = "warning"
    code: str | None = None
    sort: str = "severity"

    def query(self, **changes: str | None) -> str:
        """This listing's query string with `changes` (a value None drops it)."""
        values = {"severity": self.severity, "code": self.code, "sort": self.sort, **changes}
        defaults = Triage()
        return urlencode(
            {k: v for k, v in values.items() if v is not None and v != getattr(defaults, k)}
        )


def _run_context(run: Run, triage: Triage | None = None) -> dict[str, Any]:
    # The run finishes on another thread: the page shows this one snapshot of its status, so it
    # never asks for a summary that was not there when the context was built.
    status = run.status
    context: dict[str, Any] = {
        "run": run,
        "status": status,
        "progress": run_summary(run),
        "form": run_form(run),
    }
    if status == "done" and run.report is not None:
        result = run.report.result(max_length=run.options.spec.max_length)
        most = max((b["rows"] for b in result["summary"]["trained_fraction_histogram"]), default=0)
        shown = triage or Triage()
        rows, hidden = triage_rows(
            result["rows"], severity=shown.severity, code=shown.code, sort=shown.sort
        )
        context.update(
            summary=result["summary"],
            rows=rows,
            hidden=hidden,
            triage=shown,
            most=most or 1,
            options=run.options.spec,
            plots=result["plots"],
            charts=_charts(result["plots"]["lengths"]),
        )
    return context


def _charts(lengths: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(title, SVG bars) of each token-length histogram, totals first."""
    charts = [
        ("tokens per row", bars(lengths["total"])),
        ("trained tokens per row", bars(lengths["trained"])),
    ]
    charts += [(f"{role} tokens per row", bars(b)) for role, b in lengths["roles"].items()]
    charts += [(f"trained {part} tokens per row", bars(b)) for part, b in lengths["parts"].items()]
    return charts


def run_form(run: Run) -> dict[str, Any]:
    """The settings a run was made with, as the form shows them (and the summary prints)."""
    spec, options = run.options.spec, run.options
    return {
        "tokenizer": spec.tokenizer,
        "dialect": spec.dialect,
        "train_on": spec.train_on,
        "train_on_eot": spec.train_on_eot,
        "max_length": spec.max_length,
        "template": spec.template,
        "add_special_tokens": spec.add_special_tokens,
        "tools": len(spec.tools or ()),
        "chat_template_kwargs": dict(spec.chat_template_kwargs),
        "train_reasoning": spec.train_reasoning,
        "train_tool_calls": spec.train_tool_calls,
        "columns": options.columns.to_json(),
    }


COLUMN_FIELDS = {
    "messages": "messages_column",
    "prompt": "prompt_column",
    "completion": "completion_column",
    "chosen": "chosen_column",
    "rejected": "rejected_column",
    "label": "label_column",
    "role": "role_key",
    "content": "content_key",
}


def _page(
    request: Request, settings: Settings, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    base = pickers(settings)
    return templates.TemplateResponse(
        request, "inspect.html", {**base, **context}, status_code=status
    )


@router.get("/inspect", response_class=HTMLResponse)
def inspect_page(
    request: Request,
    settings: SettingsDep,
    run: str | None = None,
    severity: str = "warning",
    code: str | None = None,
    sort: str = "severity",
) -> HTMLResponse:
    """The page; `?run=<id>` shows that inspection (the no-JavaScript path), listed as
    `severity` (least shown), `code` and `sort` say."""
    if run is None:
        return _page(request, settings, {})
    try:
        shown = Triage(severity, code or None, sort)
        return _page(request, settings, _run_context(inspection.get_run(settings, run), shown))
    except MaskscopeError as exc:
        return _page(request, settings, {"error": exc.payload()["error"]}, exc.status)


@router.post("/inspect/runs", response_class=HTMLResponse)
async def start_run(request: Request, settings: SettingsDep) -> Any:
    """Store the upload, start the inspection, answer with its (polling) progress block."""
    form = await request.form(max_files=1, max_fields=32)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InputError("Choose a dataset file to inspect.", field="file")
    max_length = str(form.get("max_length") or "").strip()
    options = await run_in_threadpool(
        inspection.prepare,
        settings,
        tokenizer=str(form.get("tokenizer") or ""),
        dialect=str(form.get("dialect") or ""),
        train_on=str(form.get("train_on") or "assistant"),
        train_on_eot=form.get("train_on_eot") == "on" or "v" not in form,
        max_length=_int(max_length, "max_length") if max_length else None,
        template=str(form.get("template") or "") or None,
        columns=column_map({k: str(form.get(f) or "") for k, f in COLUMN_FIELDS.items()}),
    )
    await run_in_threadpool(inspection.check_upload, upload.file, options, upload.filename)
    run = await run_in_threadpool(inspection.start_run, settings, upload.file, options)
    if not _is_htmx(request):
        return RedirectResponse(f"/inspect?run={run.id}", status_code=303)
    response = render_block(request, "inspect.html", "run", _run_context(run))
    # The address names the run, so a reload (or a shared link) shows it with its settings.
    response.headers["HX-Push-Url"] = f"/inspect?run={run.id}"
    return response


def _int(raw: str, field: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{field} must be a whole number.", field=field) from None


@router.get("/inspect/runs/{run_id}", response_class=HTMLResponse)
def run_block(
    request: Request,
    settings: SettingsDep,
    run_id: str,
    severity: str = "warning",
    code: str | None = None,
    sort: str = "severity",
) -> HTMLResponse:
    """The run's block: progress while it runs, the summary and rows when it is done (rows
    listed as `severity`, `code` and `sort` say)."""
    run = inspection.get_run(settings, run_id)
    context = _run_context(run, Triage(severity, code or None, sort))
    if not _is_htmx(request):
        return _page(request, settings, context)
    return render_block(request, "inspect.html", "run", context)


@router.get("/inspect/runs/{run_id}/rows/{line}", response_class=HTMLResponse)
def row_detail(request: Request, settings: SettingsDep, run_id: str, line: int) -> HTMLResponse:
    """One row as chips with all its findings (deep checks included)."""
    run = inspection.finished_run(settings, run_id)
    sides = [
        (title, token_view(rendering, findings, run.options.tokenizer))
        for title, rendering, findings in inspection.drill_row(run, line)
    ]
    context = {"line": line, "sides": sides, "view": sides[0][1]}
    return templates.TemplateResponse(request, "_inspect_row.html", context)


@router.get("/inspect/runs/{run_id}/processed.jsonl")
def processed(settings: SettingsDep, run_id: str) -> FileResponse:
    """The processed dataset: input_ids, labels, attention_mask per readable row."""
    run = inspection.finished_run(settings, run_id)
    return FileResponse(
        run.processed_path, media_type="application/jsonl", filename="processed.jsonl"
    )


@router.get("/inspect/runs/{run_id}/template.jinja")
def generation_template(settings: SettingsDep, run_id: str) -> PlainTextResponse:
    """The template with {% generation %} tags, verified byte-identical on probes."""
    found = inspection.annotated_template(inspection.finished_run(settings, run_id).options)
    if found["template"] is None:
        raise InputError(
            "This template could not be annotated: " + "; ".join(found["notes"]), field="dialect"
        )
    return PlainTextResponse(
        found["template"],
        headers={"Content-Disposition": 'attachment; filename="chat_template.jinja"'},
    )
