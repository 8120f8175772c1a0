"""Dataset inspection: stream a JSONL file of conversations or pre-tokenized rows, lint each row,
summarise the whole.

`inspect_stream` is the one entry point the API, the page and the CLI share.
"""

from __future__ import annotations

from typing import IO, Any, BinaryIO

from app.inspect.dataset import InspectOptions, Inspector, Progress
from app.settings import Settings

__all__ = ["InspectOptions", "Inspector", "inspect_stream", "options_for"]


def options_for(settings: Settings, *, tokenizer: Any, dialect: str, train_on: str = "assistant",
                train_on_eot: bool = True, max_length: int | None = None,
                template: str | None = None) -> InspectOptions:
    """InspectOptions with the limits taken from `settings`."""
    return InspectOptions(
        tokenizer=tokenizer, dialect=dialect, train_on=train_on, train_on_eot=train_on_eot,
        max_length=max_length, template=template, probe_rows=settings.inspect_probe_rows,
        max_row_reports=settings.inspect_max_row_reports, max_rows=settings.max_upload_rows,
        max_line_bytes=settings.max_line_bytes)


def inspect_stream(stream: BinaryIO, options: InspectOptions, *, progress: Progress | None = None,
                   export: IO[str] | None = None) -> Inspector:
    """Inspect every row of a binary JSONL stream; see `Inspector.result()` for the answer."""
    return Inspector(options).run(stream, progress=progress, export=export)
