"""Dataset inspection: stream a JSONL file of conversations or pre-tokenized rows, lint each row,
summarise the whole.

`inspect_stream` is the one entry point the API, the page and the CLI share.
"""

from __future__ import annotations

from typing import IO, Any, BinaryIO

from app.dialects.registry import dialect_names
from app.errors import InputError
from app.inspect.dataset import InspectOptions, Inspector, Progress
from app.settings import Settings
from app.templating.limits import check_template_size
from app.tokenizers.registry import load_tokenizer

__all__ = ["InspectOptions", "Inspector", "inspect_stream", "options_for", "prepare"]

TRAIN_ON = ("assistant", "last_assistant", "all")


def prepare(
    settings: Settings,
    *,
    tokenizer: str,
    dialect: str,
    train_on: str = "assistant",
    train_on_eot: bool = True,
    max_length: int | None = None,
    template: str | None = None,
) -> InspectOptions:
    """Check the request's fields and load the tokenizer: errors name the field to change."""
    if dialect not in dialect_names():
        raise InputError(
            f"Unknown dialect {dialect!r}; choose one of {', '.join(dialect_names())}.",
            field="dialect",
        )
    if train_on not in TRAIN_ON:
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
    options = options_for(
        settings,
        tokenizer=load_tokenizer(tokenizer, settings),
        dialect=dialect,
        train_on=train_on,
        train_on_eot=train_on_eot,
        max_length=max_length,
        template=template if dialect == "custom" else None,
    )
    options.tokenizer_ref, options.settings = tokenizer, settings
    return options


def options_for(
    settings: Settings,
    *,
    tokenizer: Any,
    dialect: str,
    train_on: str = "assistant",
    train_on_eot: bool = True,
    max_length: int | None = None,
    template: str | None = None,
) -> InspectOptions:
    """InspectOptions with the limits taken from `settings`."""
    return InspectOptions(
        tokenizer=tokenizer,
        dialect=dialect,
        train_on=train_on,
        train_on_eot=train_on_eot,
        max_length=max_length,
        template=template,
        probe_rows=settings.inspect_probe_rows,
        max_row_reports=settings.inspect_max_row_reports,
        max_rows=settings.max_upload_rows,
        max_line_bytes=settings.max_line_bytes,
    )


def inspect_stream(
    stream: BinaryIO,
    options: InspectOptions,
    *,
    progress: Progress | None = None,
    export: IO[str] | None = None,
    workers: int = 1,
) -> Inspector:
    """Inspect every row of a binary JSONL stream; see `Inspector.result()` for the answer.

    `workers` > 1 spreads rows over that many processes (options made by `prepare` only).
    """
    inspector = Inspector(options)
    if workers > 1 and options.tokenizer_ref is not None and options.settings is not None:
        from app.inspect.parallel import Job, run_parallel

        job = Job(
            options.settings,
            options.tokenizer_ref,
            options.dialect,
            options.train_on,
            options.train_on_eot,
            options.max_length,
            options.template,
        )
        return run_parallel(inspector, job, stream, workers, progress=progress, export=export)
    return inspector.run(stream, progress=progress, export=export)
