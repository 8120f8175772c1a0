"""Inspect a dataset: the use cases behind /api/inspect, the /inspect page and `maskscope lint` /
`maskscope inspect`.

Example: options = prepare(settings, tokenizer="qwen3", dialect="chatml")
         inspect_stream(open("data.jsonl", "rb"), options).result()
         -> {"summary": {"rows": 10, ...}, "rows": [{"line": 7, "lints": [...]}]}

Design concession: the request's fields are checked here, in the order a form shows them, and
become one RenderSpec before anything is loaded; every surface then passes the InspectOptions
along unchanged, so the page's drill-down and template export see exactly what the run saw.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from app.chat.messages import parse_row
from app.chat.spec import TRAIN_ON, FrozenKwargs, FrozenTools, RenderSpec, TrainOn
from app.chat.tokens import Finding, Rendering
from app.dialects.registry import dialect_names
from app.errors import ConflictError, InputError, MaskscopeError, NotFoundError
from app.inspect.columns import ColumnMap
from app.inspect.evaluator import RowEvaluator
from app.inspect.export import export_generation_template
from app.inspect.options import InspectOptions, load_options
from app.inspect.parallel import workers_for
from app.inspect.pipeline import inspect_source, inspect_stream
from app.inspect.reader import JsonlReader, RawRow, read_line
from app.inspect.runs import Run, RunStore, store_for
from app.inspect.shapes import shape_row
from app.inspect.sources import (
    HUB_ID,
    RowSource,
    is_hub_id,
    open_hub,
    open_path,
    open_source,
)
from app.settings import Settings
from app.templating.limits import check_template_size

# The pipeline's entry point is the use case itself: every surface streams through it.
__all__ = [
    "annotated_template",
    "drill_row",
    "finished_run",
    "get_run",
    "inspect_source",
    "inspect_stream",
    "job_preset",
    "open_dataset",
    "open_hub_dataset",
    "prepare",
    "run_store",
    "start_run",
    "worker_count",
]


def prepare(
    settings: Settings,
    *,
    tokenizer: str,
    dialect: str,
    train_on: str = "assistant",
    train_on_eot: bool = True,
    max_length: int | None = None,
    template: str | None = None,
    add_special_tokens: bool = False,
    tools: FrozenTools | None = None,
    chat_template_kwargs: FrozenKwargs = (),
    train_reasoning: bool = True,
    train_tool_calls: bool = True,
    columns: ColumnMap | None = None,
) -> InspectOptions:
    """Check the request's fields and load the tokenizer: errors name the field to change.
    `tools` and `chat_template_kwargs` apply to every row (see RenderSpec); `columns` maps
    the dataset's columns (guessed from the first row when not given and unambiguous)."""
    if dialect not in dialect_names():
        raise InputError(
            f"Unknown dialect {dialect!r}; choose one of {', '.join(dialect_names())}.",
            field="dialect",
        )
    if not _is_train_on(train_on):
        raise InputError(
            f"train_on is {train_on!r}; choose one of {', '.join(TRAIN_ON)}.", field="train_on"
        )
    if max_length is not None and max_length < 1:
        raise InputError("max_length must be a positive number of tokens.", field="max_length")
    if dialect == "custom":
        if not template:
            raise InputError(
                "dialect 'custom' needs the Jinja source in 'template'.", field="template"
            )
        check_template_size(template, settings)
    spec = RenderSpec(
        tokenizer=tokenizer,
        dialect=dialect,
        template=template if dialect == "custom" else None,
        train_on=train_on,
        train_on_eot=train_on_eot,
        max_length=max_length,
        add_special_tokens=add_special_tokens,
        tools=tools,
        chat_template_kwargs=chat_template_kwargs,
        train_reasoning=train_reasoning,
        train_tool_calls=train_tool_calls,
    )
    return load_options(spec, settings, columns)


def open_dataset(
    where: str,
    options: InspectOptions,
    stack: ExitStack,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> tuple[RowSource, int]:
    """The rows of a local file, a `save_to_disk` folder or a Hub dataset id (`org/name`), and
    the bytes to read (0 when unknown); files opened are closed by `stack`.

    Example: open_dataset("data.parquet", options, stack) -> (<parquet rows>, 52_113)
    """
    path = Path(where)
    if not path.exists() and is_hub_id(where):
        return open_hub(where, options, config=config, split=split, revision=revision), 0
    source, stream = open_path(path, options)
    if stream is not None:
        stack.enter_context(stream)
        return source, path.stat().st_size
    return source, 0


def open_hub_dataset(
    dataset: str,
    options: InspectOptions,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
) -> RowSource:
    """A Hub dataset by id only (what a web request may name): never a local path."""
    # `datasets` would read a local folder of that name: a web request must not reach one.
    if not HUB_ID.match(dataset) or Path(dataset).exists():
        raise InputError(
            f"dataset is {dataset[:100]!r}; give a Hugging Face dataset id such as "
            "'org/name' (upload files as file).",
            field="dataset",
        )
    return open_hub(dataset, options, config=config, split=split, revision=revision)


def check_upload(upload: BinaryIO, options: InspectOptions, name: str | None) -> None:
    """Refuse an upload before it is stored: empty, or not the format its name says
    (InputError naming the file); the stream is left at its start."""
    open_source(upload, options, name)
    upload.seek(0)


def _is_train_on(value: str) -> TypeGuard[TrainOn]:
    return value in TRAIN_ON


def worker_count(total_bytes: int, settings: Settings, wanted: int | None = None) -> int:
    """Processes for a file of `total_bytes`: `wanted`, else the inspect_workers setting (0:
    one per core for big files)."""
    return workers_for(total_bytes, settings, wanted)


def annotated_template(options: InspectOptions) -> dict[str, Any]:
    """The inspection's template with {% generation %} tags and whether it verified
    (`template` is None when it could not be annotated; `notes` say why)."""
    spec = options.spec
    return export_generation_template(
        options.tokenizer, spec.dialect, options.settings, spec.template
    )


def run_store(settings: Settings) -> RunStore:
    """The page's background runs, kept under the settings' home."""
    return store_for(settings.home / "inspect", settings.inspect_keep_runs)


def start_run(settings: Settings, upload: BinaryIO, options: InspectOptions) -> Run:
    """Store the upload and queue its inspection; returns at once."""
    return run_store(settings).start(upload, options)


def get_run(settings: Settings, run_id: str) -> Run:
    return run_store(settings).get(run_id)


def finished_run(settings: Settings, run_id: str) -> Run:
    """The run `run_id`, or ConflictError while it is still going."""
    run = get_run(settings, run_id)
    if run.status != "done" or run.report is None:
        raise ConflictError("This inspection has not finished yet.")
    return run


def job_preset(settings: Settings, run_id: str | None) -> dict[str, Any] | None:
    """A fine-tune form preset from finished run `run_id`: its readable conversation rows
    (prompt/completion rows as the conversations they read as; at most the
    max_train_conversations setting) and its tokenizer, dialect, train_on and max_length. None
    when there is no such run or no such row.

    Example: job_preset(settings, "3f2a...") -> {"name": "inspection", "label": "...",
             "spec": {"data": {"conversations": [...]}, "dialect": "chatml", ...}}
    """
    if not run_id:
        return None
    try:
        run = finished_run(settings, run_id)
    except MaskscopeError:
        return None
    spec, options = run.options.spec, run.options
    rows: list[dict[str, Any]] = []
    with open(run.path, "rb") as stream:
        for raw in open_source(stream, options):
            if len(rows) >= settings.max_train_conversations:
                break
            _, shaped = shape_row(raw, options.tokenizer, spec.train_on)
            if shaped.row is None or shaped.row.get("input_ids") is not None:
                continue
            try:
                conversation = parse_row(shaped.row)
            except MaskscopeError:
                continue
            rows.append({"messages": [m.to_dict() for m in conversation]})
    if not rows:
        return None
    prompt = next((m["content"] for m in rows[0]["messages"] if m["role"] == "user"), "Hello")
    return {
        "name": "inspection",
        "label": f"The inspected rows ({len(rows):,} conversations)",
        "spec": {
            "data": {"conversations": rows},
            "tokenizer": None if spec.tokenizer == "smollm2" else spec.tokenizer,
            "dialect": "tokenizer" if spec.dialect == "custom" else spec.dialect,
            "train_on": spec.train_on,
            "max_length": min(spec.max_length or 256, settings.max_train_length),
            "compare_baseline": False,
            "sample_prompts": [prompt if isinstance(prompt, str) else "Hello"],
        },
    }


def drill_row(run: Run, line: int) -> list[tuple[str, Rendering, list[Finding]]]:
    """Row `line` of a finished run as its rendering(s) with all their findings (deep checks
    too): one, or a preference row's chosen and rejected side, each with its title."""
    offset = run.report.offset_of(line) if run.report is not None else None
    raw = _read_row(run.path, line, offset, run.options)
    if raw is None:
        raise NotFoundError(f"The file has no line {line}.", field="line")
    if raw.row is None:
        raise InputError(raw.error or f"line {line} is empty", field="line")
    return RowEvaluator(run.options).drill(raw)


def _read_row(path: Path, line: int, offset: int | None, options: InspectOptions) -> RawRow | None:
    """Row `line` again: by its byte offset in JSONL, else by reading the rows up to it."""
    with open(path, "rb") as stream:
        source = open_source(stream, options)
        if isinstance(source, JsonlReader):
            try:
                return read_line(stream, line, offset=offset, max_line_bytes=options.max_line_bytes)
            except LookupError:
                return None
        return next((raw for raw in source if raw.line == line), None)
