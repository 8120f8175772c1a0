"""POST /api/inspect: a JSONL dataset (multipart `file`) in, summary and per-row findings out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from app.chat.spec import TrainOn, freeze_kwargs, freeze_tools, json_field
from app.deps import SettingsDep
from app.service.inspect import inspect_stream, prepare, worker_count

router = APIRouter(prefix="/api", tags=["inspect"])


@router.post("/inspect")
def post_inspect(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="JSONL: conversations or pre-tokenized rows.")],
    tokenizer: Annotated[str, Form(description="Bundled name, local folder, or Hub id.")],
    dialect: Annotated[str, Form(description="Built-in slug, 'tokenizer' or 'custom'.")],
    train_on: Annotated[TrainOn, Form()] = "assistant",
    train_on_eot: Annotated[bool, Form()] = True,
    max_length: Annotated[int | None, Form(ge=1)] = None,
    template: Annotated[str | None, Form(description="Jinja source for 'custom'.")] = None,
    tools: Annotated[str | None, Form(description="JSON list of tool specs, every row.")] = None,
    chat_template_kwargs: Annotated[
        str | None, Form(description="JSON object of extra template variables, every row.")
    ] = None,
    train_reasoning: Annotated[bool, Form()] = True,
    train_tool_calls: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """Lint every row; a bad row is listed with its line and does not stop the rest (a row's
    own tools and chat_template_kwargs columns win over the fields here)."""
    options = prepare(
        settings,
        tokenizer=tokenizer,
        dialect=dialect,
        train_on=train_on,
        train_on_eot=train_on_eot,
        max_length=max_length,
        template=template,
        tools=freeze_tools(json_field(tools, "tools", "tools")),
        chat_template_kwargs=freeze_kwargs(
            json_field(chat_template_kwargs, "chat_template_kwargs", "chat_template_kwargs")
        ),
        train_reasoning=train_reasoning,
        train_tool_calls=train_tool_calls,
    )
    workers = worker_count(file.size or 0, settings)
    return inspect_stream(file.file, options, workers=workers).result()
