"""POST /api/inspect: a dataset (multipart `file` in any format the inspector reads, or a Hub
`dataset` id) in, summary and per-row findings out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from app.chat.spec import TrainOn, freeze_kwargs, freeze_tools, json_field
from app.deps import SettingsDep
from app.errors import InputError
from app.inspect.columns import column_map
from app.service.inspect import (
    inspect_source,
    inspect_stream,
    open_hub_dataset,
    prepare,
    worker_count,
)

router = APIRouter(prefix="/api", tags=["inspect"])


# Long: one Form() parameter per field is how FastAPI declares a multipart form.
@router.post("/inspect")
def post_inspect(
    settings: SettingsDep,
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
    file: Annotated[
        UploadFile | None,
        File(description="JSONL, JSON array, Parquet, Arrow or CSV (a JSON messages column)."),
    ] = None,
    dataset: Annotated[
        str | None, Form(description="Hugging Face dataset id instead of a file.")
    ] = None,
    config: Annotated[str | None, Form(description="The Hub dataset's config.")] = None,
    split: Annotated[str, Form(description="The Hub dataset's split.")] = "train",
    revision: Annotated[str | None, Form(description="The Hub dataset's revision.")] = None,
    messages_column: Annotated[str | None, Form()] = None,
    prompt_column: Annotated[str | None, Form()] = None,
    completion_column: Annotated[str | None, Form()] = None,
    chosen_column: Annotated[str | None, Form()] = None,
    rejected_column: Annotated[str | None, Form()] = None,
    label_column: Annotated[str | None, Form()] = None,
    role_key: Annotated[str | None, Form()] = None,
    content_key: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Lint every row; a bad row is listed with its line and does not stop the rest (a row's
    own tools and chat_template_kwargs columns win over the fields here). The *_column
    fields say which column holds what (guessed from the first row when unambiguous)."""
    if (file is None) == (not dataset):
        raise InputError("Send either a dataset file or a Hub dataset id.", field="file")
    columns = column_map(
        {
            "messages": messages_column,
            "prompt": prompt_column,
            "completion": completion_column,
            "chosen": chosen_column,
            "rejected": rejected_column,
            "label": label_column,
            "role": role_key,
            "content": content_key,
        }
    )
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
        columns=columns,
    )
    if file is None:
        source = open_hub_dataset(
            str(dataset), options, config=config, split=split, revision=revision
        )
        return inspect_source(source, options).result(max_length=max_length)
    workers = worker_count(file.size or 0, settings)
    report = inspect_stream(file.file, options, workers=workers, name=file.filename)
    return report.result(max_length=max_length)
