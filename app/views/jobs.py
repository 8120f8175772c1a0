"""The jobs pages: a form with presets and the job list (/jobs), one job live (/jobs/{id}).

Design concession: the page is rendered on the server from the same store the JSON API reads;
the live parts (progress, loss curves, tokens/s) are drawn in the browser from the job's
Server-Sent Events, so the server never renders charts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.deps import SettingsDep, StoreDep
from app.dialects.registry import dialect_names
from app.errors import MaskscopeError
from app.service.inspect import job_preset
from app.service.jobs import get_job, list_jobs
from app.train.data import load_demo
from app.train.record import Job
from app.train.spec import JobSpec
from app.views.forms import EditorState, parse_state
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)

DEMO = {
    "model": "smollm2",
    "data": {"dataset": "demo"},
    "steps": 20,
    "batch_size": 4,
    "max_length": 256,
    "learning_rate": 2e-4,
    "neftune_alpha": 5.0,
    "neftune_mode": "paper",
    "compare_baseline": True,
    "pack": True,
    "seed": 0,
}
PRESETS: list[dict[str, Any]] = [
    {"name": "demo", "label": "Demo: pirate greeting, NEFTune vs baseline", "spec": DEMO},
    {
        "name": "quick",
        "label": "Quick check: 5 steps, no baseline",
        "spec": {**DEMO, "steps": 5, "compare_baseline": False},
    },
    {
        "name": "hf-noise",
        "label": "Demo with transformers' NEFTune scaling (padded length)",
        "spec": {**DEMO, "neftune_mode": "hf", "pack": False},
    },
]


ARM_LABELS = {"neftune": "NEFTune", "baseline": "baseline", "plain": "no noise"}


def job_context(job: Job) -> dict[str, Any]:
    """What job.html and its results block show: the job, arm names, the demo's format check."""
    demo = job.spec.get("data", {}).get("dataset") == "demo"
    return {"job": job, "arm_labels": ARM_LABELS, "check": load_demo()["check"] if demo else None}


def playground_preset(query: Any) -> dict[str, Any] | None:
    """The playground's conversation (its permalink query) as a job preset, if there is one."""
    try:
        state = parse_state(query, EditorState())
        body = state.render_request()  # the editor's typed JSON parsed, as the playground renders
    except MaskscopeError:
        return None
    messages = body["messages"]
    if not messages:
        return None
    dialect = state.dialect if state.dialect != "custom" else "tokenizer"
    # What the template saw in the playground, where it differs from the defaults.
    inputs = {k: body[k] for k in ("tools", "chat_template_kwargs") if body[k] is not None}
    inputs |= {k: False for k in ("train_reasoning", "train_tool_calls") if not body[k]}
    spec = {
        **DEMO,
        **inputs,
        "data": {"conversations": [messages]},
        "steps": 10,
        "batch_size": 1,
        "tokenizer": state.tokenizer if state.tokenizer != "smollm2" else None,
        "dialect": dialect,
        "train_on": state.train_on,
        "compare_baseline": False,
        "sample_prompts": [_first_prompt(messages)],
    }
    return {"name": "playground", "label": "The playground's conversation", "spec": spec}


def _first_prompt(messages: list[dict[str, Any]]) -> str:
    """The first user turn written as plain text (an image or audio turn is no prompt)."""
    texts = (m["content"] for m in messages if m["role"] == "user")
    return next((t for t in texts if isinstance(t, str) and t), "Hello")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    """The form (with presets) and every job."""
    presets = list(PRESETS)
    from_playground = playground_preset(request.query_params)
    if from_playground:
        presets.insert(0, from_playground)
    from_inspection = job_preset(settings, request.query_params.get("inspection"))
    if from_inspection:  # "Fine-tune on these rows" on the /inspect page
        presets.insert(0, {**from_inspection, "spec": {**DEMO, **from_inspection["spec"]}})
    context = {
        "jobs": list_jobs(store),
        "presets": presets,
        "dialects": [d for d in dialect_names() if d != "custom"],
        "defaults": JobSpec().model_dump(mode="json"),
        "behaviour": load_demo()["behaviour"],
        "max_steps": settings.max_train_steps,
        "max_length": settings.max_train_length,
    }
    return templates.TemplateResponse(request, "jobs.html", context)


@router.get("/jobs/list", response_class=HTMLResponse)
def job_list_fragment(request: Request, store: StoreDep) -> HTMLResponse:
    """The job list alone (refreshed by htmx)."""
    return render_block(request, "jobs.html", "job_list", {"jobs": list_jobs(store)})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, store: StoreDep) -> HTMLResponse:
    """One job: progress, loss curves, tokens/s, samples, artifacts."""
    return templates.TemplateResponse(request, "job.html", job_context(get_job(store, job_id)))


@router.get("/jobs/{job_id}/results", response_class=HTMLResponse)
def job_results_fragment(job_id: str, request: Request, store: StoreDep) -> HTMLResponse:
    """Samples, artifacts and error of one job (swapped in when the job ends)."""
    return render_block(request, "job.html", "results", job_context(get_job(store, job_id)))
