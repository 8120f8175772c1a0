"""Several conversations as one training batch, padded or packed: /api/batch and the batch page.

Rows come from `app.chat.batching` (the functions the trainer uses) applied to the very labels
`render` produces, so what this shows is what a fine-tune would see.

Example: two conversations of 12 and 20 tokens, right padding -> 2 rows of 20 positions.

Design concession: a conversation longer than `max_length` is cut by the engine (as the trainer
does), never split across rows; packing without a `max_length` uses the max_train_length setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.chat.batching import pack_sequences, pad_batch
from app.chat.layout import Dialect
from app.chat.messages import Conversation, parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, Rendering
from app.dialects.registry import get_dialect
from app.errors import LimitError, MaskscopeError
from app.lint import lint_rendering
from app.service.requests import BatchRequest
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


@dataclass
class Batch:
    rows: list[dict[str, Any]]
    renderings: list[Rendering]
    tokenizer: Tokenizer
    pad_token_id: int
    pad_token: str | None
    max_length: int | None
    lints: list[list[Finding]] = field(default_factory=list)  # per conversation, when asked


def pad_token(tokenizer: Tokenizer) -> tuple[int, str | None]:
    """The pad id a collator would use: the tokenizer's pad token, else EOS (a common fallback)."""
    for attr in ("pad_token", "eos_token"):
        token_id = getattr(tokenizer, f"{attr}_id", None)
        if token_id is not None:
            return token_id, getattr(tokenizer, attr, None)
    return 0, None


def build_batch(body: BatchRequest, settings: Settings, lint: bool = False) -> Batch:
    """Render every conversation, then pad (or pack) them into rows; `lint`: also check each
    conversation as rendered here (cut at max_length, as the trainer cuts it)."""
    if len(body.conversations) > settings.max_batch_conversations:
        raise LimitError(
            f"{len(body.conversations)} conversations sent; the limit is "
            f"{settings.max_batch_conversations} (max_batch_conversations setting).",
            field="conversations",
            setting="max_batch_conversations",
        )
    spec = body.spec()
    tokenizer = load_tokenizer(spec.tokenizer, settings)
    dialect = get_dialect(spec.dialect)
    rendered = [
        _render_one(i, messages, dialect, tokenizer, spec, settings)
        for i, messages in enumerate(body.conversations)
    ]
    renderings = [r for _, r in rendered]
    lints = [
        lint_rendering(
            r,
            conversation=c,
            tokenizer=tokenizer,
            dialect=dialect,
            spec=spec,
            settings=settings,
            deep=not body.pack,
        )
        for c, r in (rendered if lint else [])
    ]
    seqs = [{"input_ids": r.input_ids, "labels": r.labels} for r in renderings]
    pad_id, pad_text = pad_token(tokenizer)
    length: int | None
    if body.pack:
        length = body.max_length or settings.max_train_length
        rows = pack_sequences(seqs, length)
    else:
        length = body.max_length
        rows = pad_batch(seqs, pad_id, body.padding_side, length)
    return Batch(rows, renderings, tokenizer, pad_id, pad_text, length, lints)


def _render_one(
    index: int,
    messages: list[dict[str, Any]],
    dialect: Dialect,
    tokenizer: Tokenizer,
    spec: RenderSpec,
    settings: Settings,
) -> tuple[Conversation, Rendering]:
    """Render conversation `index`; errors about its messages name it (conversations[2]...)."""
    where = f"conversations[{index}]"
    conversation = parse_messages(messages, where=where)
    try:
        return conversation, render(conversation, dialect, tokenizer, spec, settings)
    except MaskscopeError as exc:
        if exc.field is None or exc.field.startswith("messages"):
            exc.field = where + (exc.field or "").removeprefix("messages")
            exc.message = f"{where}: {exc.message}"
        raise
