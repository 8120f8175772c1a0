"""Exports: a `{% generation %}`-annotated copy of a chat template, verified on probes.

(The processed dataset, one {"input_ids", "labels", "attention_mask"} line per good row, is
written by `inspect_stream(export=...)` while it reads the rows.)

Design concession: verification renders through our sandbox (in a worker for untrusted
templates, as `attribute_template` decides everywhere), which produces what apply_chat_template
produces; the tests also check the annotated templates against transformers' own
`return_assistant_tokens_mask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Rendering
from app.dialects.jinja import attribute_template, prepare_template
from app.dialects.registry import get_dialect
from app.errors import InputError
from app.inspect.annotate import annotate_generation, verify_annotation
from app.lint.markers import probe_markers
from app.settings import Settings


def export_generation_template(
    tokenizer: Tokenizer, dialect: str, settings: Settings, template: str | None = None
) -> dict[str, Any]:
    """Annotate the tokenizer's (or the pasted) template; say whether it verified.

    Example: -> {"template": "...{% generation %}...", "wrapped": 2,
                 "verification": {"ok": True, "byte_identical": True, ...}, "notes": []}
    """
    if dialect not in ("tokenizer", "custom"):
        raise InputError(
            "A generation-annotated template is made from a Jinja template: use "
            "dialect 'tokenizer' or 'custom'.",
            field="dialect",
        )
    spec = RenderSpec(dialect=dialect, template=template)
    prepared = prepare_template(dialect, tokenizer, spec, settings)
    chat_format = get_dialect(dialect)

    def renderer(conversation: Sequence[Message], changed: RenderSpec) -> Rendering:
        return render(conversation, chat_format, tokenizer, changed, settings)

    markers = probe_markers(tokenizer, dialect, spec, renderer)
    annotation = annotate_generation(
        prepared.source, eot_text=markers.eot_text if markers else None
    )

    def run(src: str, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
        att = attribute_template(
            src, messages, prepared.context, settings=settings, trusted=prepared.trusted
        )
        return att.text, list(att.generation)

    verification = verify_annotation(prepared.source, annotation.template, run)
    return {
        "template": annotation.template if verification.ok else None,
        "wrapped": annotation.wrapped,
        "verification": verification.to_json(),
        "notes": annotation.notes + verification.problems,
    }
