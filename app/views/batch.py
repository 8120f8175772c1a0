"""The batch page: conversations as one padded batch and as packed rows, position by position.

Rows come from `app.service.batch.build_batch` (the use case behind POST /api/batch), shown as a
grid: tokens on top, then input_ids, attention_mask, labels and position_ids, so "not attended"
(attention 0: padding) and "not learned" (label -100) sit one above the other.

Design concession: a row shows at most MAX_CELLS positions; the JSON API has the whole row.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from app.chat.messages import parse_row
from app.chat.tokens import IGNORE_INDEX, Rendering
from app.deps import SettingsDep
from app.errors import InputError, MaskscopeError
from app.service.batch import Batch, build_batch
from app.service.requests import BatchRequest
from app.settings import Settings
from app.views.chips import ROLE_CLASS, visible
from app.views.common import page_context, posted_state
from app.views.errors import input_error
from app.views.forms import EditorState, parse_state
from app.views.templating import render_block, templates

router = APIRouter(include_in_schema=False)
MAX_CELLS = 1024
DEFAULT_PACK_LENGTH = 64

EXAMPLE_BATCH = "\n".join(
    json.dumps(row, ensure_ascii=False)
    for row in [
        [
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello! How can I help?"},
        ],
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What is 2 + 2?"},
                {"role": "assistant", "content": "4."},
            ]
        },
        {
            "conversations": [
                {"from": "human", "value": "Name three primary colours."},
                {"from": "gpt", "value": "Red, yellow and blue."},
                {"from": "human", "value": "And the secondary ones?"},
                {"from": "gpt", "value": "Green, orange and purple."},
            ]
        },
    ]
)


@dataclass
class Cell:
    text: str
    cls: str
    id: int
    mask: int
    label: int
    position: int
    starts: int | None = None  # the conversation index when a conversation starts here


@dataclass
class RowView:
    cells: list[Cell]
    attended: int
    learned: int
    length: int
    segments: list[list[int]] = field(default_factory=list)

    @property
    def triangles(self) -> list[str]:
        """SVG points of each conversation's causal triangle (x = key, y = query).

        Example: segments [[0, 3, 0], [3, 5, 1]] -> ["0,0 0,3 3,3", "3,3 3,5 5,5"]
        """
        return [f"{s},{s} {s},{e} {e},{e}" for s, e, _ in self.segments]


def parse_conversations(text: str) -> list[list[dict[str, Any]]]:
    """JSONL (one conversation per line, any row format parse_row knows) -> lists of messages.

    Example: '[{"role": "user", "content": "Hi"}]' -> [[{"role": "user", "content": "Hi"}]]
    """
    conversations = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(
                f"Line {number} of conversations is not JSON: {exc}.", field="conversations"
            ) from exc
        try:
            conversations.append([m.to_dict() for m in parse_row(row)])
        except InputError as exc:
            raise InputError(
                f"Line {number} of conversations: {exc.message}", field="conversations"
            ) from exc
    if not conversations:
        raise InputError(
            "Give at least one conversation, one JSON line each.", field="conversations"
        )
    return conversations


def _owner(row: dict[str, Any], position: int) -> tuple[int | None, int]:
    for start, end, conv in row["segments"]:
        if start <= position < end:
            return conv, position - start
    return None, -1


def _cell(row: dict[str, Any], i: int, renderings: list[Rendering]) -> Cell:
    conv, offset = _owner(row, i)
    label = row["labels"][i]
    base = dict(
        id=row["input_ids"][i],
        mask=row["attention_mask"][i],
        label=label,
        position=row["position_ids"][i],
    )
    if conv is None:
        return Cell(text="pad", cls="pad", **base)
    token = renderings[conv].tokens[offset]
    classes = [ROLE_CLASS.get(token.role, "x")]
    classes += ["t"] * (label != IGNORE_INDEX) + ["k"] * token.special
    starts = conv if offset == 0 else None
    return Cell(text=visible(token.text)[0], cls=" ".join(classes), starts=starts, **base)


def row_views(batch: Batch) -> list[RowView]:
    views = []
    for row in batch.rows:
        length = len(row["input_ids"])
        cells = [_cell(row, i, batch.renderings) for i in range(min(length, MAX_CELLS))]
        views.append(
            RowView(
                cells=cells,
                attended=sum(row["attention_mask"]),
                learned=sum(1 for x in row["labels"] if x != IGNORE_INDEX),
                length=length,
                segments=row["segments"],
            )
        )
    return views


def conversation_views(padded: Batch, packed: Batch) -> list[dict[str, Any]]:
    """Per conversation: its counts, what max_length and the packed row length cut from it, and
    its lints (those about truncation also as the packed rows cut it)."""
    out = []
    for i, (whole, in_pack) in enumerate(zip(padded.renderings, packed.renderings, strict=True)):
        extra = [f for f in packed.lints[i] if f.code.startswith("truncation")]
        out.append(
            {
                "index": i,
                "tokens": len(whole.input_ids),
                "trained": whole.trained_count,
                "cut": whole.truncated_tokens,
                "cut_packed": in_pack.truncated_tokens,
                "trained_packed": in_pack.trained_count,
                "findings": padded.lints[i],
                "packed_findings": extra,
            }
        )
    return out


def _request(state: EditorState) -> BatchRequest:
    try:
        return BatchRequest(
            conversations=parse_conversations(state.conversations),
            tokenizer=state.tokenizer,
            dialect=state.dialect,
            template=state.template if state.dialect == "custom" else None,
            train_on=state.train_on,
            train_on_eot=state.train_on_eot,
            padding_side=state.padding_side,
            pack=False,
            max_length=state.max_length,
        )
    except ValidationError as exc:
        raise input_error(exc.errors()) from exc


def views(state: EditorState, settings: Settings) -> dict[str, Any]:
    """The padded batch and the packed rows of the same conversations (parsed once)."""
    padded_body = _request(state)
    # pack_length was checked (>= 1) when the form was parsed, so the copy needs no validation.
    packed_body = padded_body.model_copy(
        update={"pack": True, "max_length": state.pack_length or DEFAULT_PACK_LENGTH}
    )
    padded = build_batch(padded_body, settings, lint=True)
    packed = build_batch(packed_body, settings, lint=True)
    return {
        "conversations": conversation_views(padded, packed),
        "padded": padded,
        "padded_rows": row_views(padded),
        "padding_side": state.padding_side,
        "packed": packed,
        "packed_rows": row_views(packed),
        "max_cells": MAX_CELLS,
    }


def _with_example(tokenizers: list[dict[str, Any]], base: EditorState) -> EditorState:
    return dataclasses.replace(base, conversations=EXAMPLE_BATCH, pack_length=DEFAULT_PACK_LENGTH)


def _page_views(state: EditorState, settings: Settings) -> dict[str, Any]:
    # A GET (an <img> or a link) never runs a pasted template: the htmx POST renders it.
    return {"pending": True} if state.dialect == "custom" else views(state, settings)


@router.get("/batch", response_class=HTMLResponse)
async def batch_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The batch page, pre-rendered from the permalink query if there is one."""
    context, status = await run_in_threadpool(
        page_context, carried(request.query_params), settings, _page_views, _with_example
    )
    return templates.TemplateResponse(request, "batch.html", context, status_code=status)


@router.get("/fragments/conversation.jsonl", response_class=PlainTextResponse)
def conversation_line(request: Request) -> PlainTextResponse:
    """An editor's conversation (its permalink query) as one JSONL row: what Inspect takes as
    a one-row dataset. Nothing is rendered, so a GET is safe."""
    state = parse_state(request.query_params, EditorState())
    if not state.messages:
        raise InputError("The query holds no conversation (role/content fields).", field="messages")
    line = json.dumps({"messages": state.messages}, ensure_ascii=False) + "\n"
    return PlainTextResponse(line, media_type="application/jsonl")


def carried(query: QueryParams) -> QueryParams:
    """A query carried from another page (its conversation as role/content fields, no batch
    text): the same query with that conversation as the batch's one line.

    Example: ?v=1&role=user&content=Hi -> ?v=1&role=user&content=Hi&conversations=[{...}]
    """
    if query.get("conversations") or "role" not in query:
        return query
    try:
        messages = parse_state(query, EditorState()).messages
    except MaskscopeError:
        return query  # the page shows the error as it parses the query again
    line = json.dumps(messages, ensure_ascii=False)
    return QueryParams([*query.multi_items(), ("conversations", line)])


@router.post("/fragments/batch", response_class=HTMLResponse)
async def batch_fragment(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The padded and packed grids for the posted conversations."""
    state = await posted_state(request, settings)
    context = await run_in_threadpool(views, state, settings)
    return render_block(request, "batch.html", "result", context)
