"""What one dataset inspection renders and how far it goes: a RenderSpec, the loaded tokenizer,
the settings and the inspection's own limits.

Example: load_options(RenderSpec(tokenizer="qwen3", dialect="chatml"), settings)
         -> InspectOptions(spec=..., tokenizer=<Qwen2TokenizerFast>, reloadable=True, ...)

Design concession: the tokenizer travels both as the object (rows are rendered with it) and as
the reference in `spec.tokenizer`; only options made by `load_options` have a reference that
names that object (`reloadable`), so only those can be inspected by worker processes, which
load the tokenizer again.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.inspect.columns import ColumnMap
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


@dataclass(frozen=True)
class InspectOptions:
    """How to read the rows: the spec (add_generation_prompt is never set), its tokenizer
    loaded, the limits (rendering ones from `settings`) and whether workers may reload it."""

    spec: RenderSpec
    tokenizer: Tokenizer
    settings: Settings
    reloadable: bool = False
    probe_rows: int = 3
    max_row_reports: int = 2_000
    max_rows: int = 200_000
    max_line_bytes: int = 16_000_000
    columns: ColumnMap = ColumnMap()


def options_for(
    settings: Settings,
    *,
    tokenizer: Tokenizer,
    spec: RenderSpec,
    reloadable: bool = False,
    columns: ColumnMap | None = None,
) -> InspectOptions:
    """InspectOptions for an already loaded tokenizer, the limits taken from `settings`;
    `columns` says where the rows' messages (prompt, answers...) are."""
    return InspectOptions(
        spec=spec,
        tokenizer=tokenizer,
        settings=settings,
        reloadable=reloadable,
        probe_rows=settings.inspect_probe_rows,
        max_row_reports=settings.inspect_max_row_reports,
        max_rows=settings.max_upload_rows,
        max_line_bytes=settings.max_line_bytes,
        columns=columns or ColumnMap(),
    )


def load_options(
    spec: RenderSpec, settings: Settings, columns: ColumnMap | None = None
) -> InspectOptions:
    """Load the tokenizer `spec` names; the options can then be handed to worker processes."""
    tokenizer = load_tokenizer(spec.tokenizer, settings)
    return options_for(settings, tokenizer=tokenizer, spec=spec, reloadable=True, columns=columns)
