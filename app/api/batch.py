"""POST /api/batch: several conversations as one training batch, padded or packed.

Rows come from `app.chat.batching` (the functions the trainer uses) applied to the very labels
`render` produces, so what this endpoint shows is what a fine-tune would see.

Design concession: a conversation longer than `max_length` is cut by the engine (as the trainer
does), never split across rows; packing without a `max_length` uses the max_train_length setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import SettingsDep
from app.chat.batching import pack_sequences, pad_batch
from app.chat.messages import parse_messages
from app.chat.render import RenderOptions, render
from app.chat.tokens import Rendering
from app.errors import LimitError, MaskscopeError
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer

router = APIRouter(prefix="/api", tags=["render"])


class BatchRequest(BaseModel):
    """The body of POST /api/batch."""

    # Unknown fields (e.g. trust_remote_code) are refused by name, never silently dropped.
    model_config = ConfigDict(extra="forbid")

    conversations: list[list[dict[str, Any]]] = Field(
        ..., min_length=1, description="A list of conversations, each a list of messages."
    )
    tokenizer: str = Field("smollm2", description="Bundled name, local folder, or Hub id.")
    dialect: str = Field("chatml", description="Built-in slug, 'tokenizer' or 'custom'.")
    template: str | None = Field(None, description="Jinja source when dialect is 'custom'.")
    train_on: Literal["assistant", "last_assistant", "all"] = "assistant"
    train_on_eot: bool = True
    padding_side: Literal["right", "left"] = "right"
    pack: bool = False
    max_length: int | None = Field(
        None,
        ge=1,
        description="Cut each conversation (and, when "
        "packing, the row length) at this many tokens.",
    )


@dataclass
class Batch:
    rows: list[dict[str, Any]]
    renderings: list[Rendering]
    tokenizer: Any
    pad_token_id: int
    pad_token: str | None
    max_length: int | None


def _pad_token(tokenizer: Any) -> tuple[int, str | None]:
    """The pad id a collator would use: the tokenizer's pad token, else EOS (a common fallback)."""
    for attr in ("pad_token", "eos_token"):
        token_id = getattr(tokenizer, f"{attr}_id", None)
        if token_id is not None:
            return token_id, getattr(tokenizer, attr, None)
    return 0, None


def _render_one(
    index: int,
    messages: list[dict[str, Any]],
    body: BatchRequest,
    tokenizer: Any,
    options: RenderOptions,
) -> Rendering:
    """Render conversation `index`; errors about its messages name it (conversations[2]...)."""
    where = f"conversations[{index}]"
    conversation = parse_messages(messages, where=where)
    try:
        return render(conversation, body.dialect, tokenizer, options)
    except MaskscopeError as exc:
        if exc.field is None or exc.field.startswith("messages"):
            exc.field = where + (exc.field or "").removeprefix("messages")
            exc.message = f"{where}: {exc.message}"
        raise


def build_batch(body: BatchRequest, settings: Settings) -> Batch:
    """Render every conversation, then pad (or pack) them into rows.

    Example: two conversations of 12 and 20 tokens, right padding -> 2 rows of 20 positions.
    """
    if len(body.conversations) > settings.max_batch_conversations:
        raise LimitError(
            f"{len(body.conversations)} conversations sent; the limit is "
            f"{settings.max_batch_conversations} (max_batch_conversations setting).",
            field="conversations",
            setting="max_batch_conversations",
        )
    tokenizer = load_tokenizer(body.tokenizer, settings)
    options = RenderOptions(
        train_on=body.train_on,
        train_on_eot=body.train_on_eot,
        max_length=body.max_length,
        template=body.template,
        settings=settings,
    )
    renderings = [
        _render_one(i, conv, body, tokenizer, options) for i, conv in enumerate(body.conversations)
    ]
    seqs = [{"input_ids": r.input_ids, "labels": r.labels} for r in renderings]
    pad_id, pad_token = _pad_token(tokenizer)
    if body.pack:
        length = body.max_length or settings.max_train_length
        rows = pack_sequences(seqs, length)
    else:
        length = body.max_length
        rows = pad_batch(seqs, pad_id, body.padding_side, length)
    return Batch(rows, renderings, tokenizer, pad_id, pad_token, length)


@router.post("/batch")
def post_batch(body: BatchRequest, settings: SettingsDep) -> dict[str, Any]:
    """Rows of input_ids, attention_mask, labels, position_ids and segments."""
    batch = build_batch(body, settings)
    return {
        "rows": batch.rows,
        "pad_token_id": batch.pad_token_id,
        "pad_token": batch.pad_token,
        "max_length": batch.max_length,
        "padding_side": body.padding_side,
        "pack": body.pack,
    }
