"""Training data: conversations rendered by the engine, so labels are the ones the browser shows.

A row's own `tools` and `chat_template_kwargs` columns reach its template as they do in an
inspection (`row_spec`): each row trains on the labels `maskscope render` shows for it.

Design concession: every conversation is rendered up front (small fine-tunes, a few thousand rows at
most) and cut at ``max_length`` by the engine; conversations with no trained token are dropped,
since they would only add padding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.chat.messages import Message, parse_row
from app.chat.render import render
from app.chat.spec import RenderSpec, row_spec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import IGNORE_INDEX
from app.dialects.registry import get_dialect
from app.errors import InputError
from app.settings import Settings

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class TrainingData:
    """Conversations to train on, prompts to sample before/after, and an optional checker.
    `rows`: the row each conversation came from (its own tools / template variables), if any."""

    conversations: list[list[Message]]
    prompts: list[str]
    check: dict[str, str] | None = None
    behaviour: str | None = None
    examples: list[dict[str, list[int]]] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)


def load_demo() -> dict[str, Any]:
    """The bundled demo dataset: 60 conversations teaching one checkable behaviour."""
    demo: dict[str, Any] = json.loads((DATA_DIR / "demo.json").read_text(encoding="utf-8"))
    return demo


def load_data(data: dict[str, Any], sample_prompts: list[str] | None = None) -> TrainingData:
    """Parse the job's `data` field into conversations and sample prompts.

    Example: {"dataset": "demo"} -> 60 conversations, 4 held-out prompts, check regex "^\\s*Ahoy!"
    """
    if data.get("dataset") == "demo":
        demo = load_demo()
        conversations = [parse_row(row) for row in demo["conversations"]]
        prompts = sample_prompts or demo["held_out_prompts"]
        return TrainingData(conversations, prompts, demo["check"], demo["behaviour"])
    conversations = parse_conversations(data["conversations"])
    prompts = sample_prompts or _first_prompts(conversations)
    return TrainingData(conversations, prompts, rows=list(data["conversations"]))


def parse_conversations(rows: list[Any]) -> list[list[Message]]:
    """Inline job conversations (rows, or bare message lists); a bad one, or one whose own
    tools or chat_template_kwargs are malformed, names its index.

    Example: [[{"role": "user", "content": "Hi"}, ...]] -> [[Message("user", "Hi"), ...]]
    """
    conversations = []
    for index, row in enumerate(rows):
        _check_row_inputs(row, index)
        try:
            conversations.append(parse_row(row if isinstance(row, dict) else {"messages": row}))
        except (InputError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"data.conversations[{index}] is not a conversation: {exc}",
                field=f"data.conversations[{index}]",
            ) from exc
    return conversations


def _check_row_inputs(row: Any, index: int) -> None:
    """A row's own tools / chat_template_kwargs are well-formed, or InputError naming the row."""
    try:
        row_spec(RenderSpec(), row)
    except InputError as exc:
        at = f"data.conversations[{index}]"
        raise InputError(
            f"{at}: {exc.message}", field=f"{at}.{exc.field}" if exc.field else at
        ) from exc


def _first_prompts(conversations: list[list[Message]], limit: int = 3) -> list[str]:
    """Without held-out prompts, sample on the first user turns of the data itself."""
    prompts = []
    for conversation in conversations:
        first = next((m.content for m in conversation if m.role == "user"), None)
        if first and first not in prompts:
            prompts.append(first)
        if len(prompts) == limit:
            break
    return prompts


def render_examples(
    conversations: list[list[Message]],
    spec: RenderSpec,
    tokenizer: Tokenizer,
    settings: Settings | None = None,
    rows: Sequence[Any] = (),
) -> list[dict[str, list[int]]]:
    """Render each conversation (under its row's own tools and template variables, where
    `rows` gives them); keep input_ids and labels of those with a trained token."""
    chat_format = get_dialect(spec.dialect)
    examples = []
    for index, conversation in enumerate(conversations):
        own = row_spec(spec, rows[index]) if index < len(rows) else spec
        rendering = render(conversation, chat_format, tokenizer, own, settings)
        if any(label != IGNORE_INDEX for label in rendering.labels[1:]):
            examples.append(
                {"input_ids": list(rendering.input_ids), "labels": list(rendering.labels)}
            )
    if not examples:
        raise InputError(
            "No conversation has a trained token under these settings; check "
            "'train_on' and 'max_length'.",
            field="train_on",
        )
    return examples


def prompt_ids(prompt: str, spec: RenderSpec, tokenizer: Tokenizer) -> list[int]:
    """Token ids of one user prompt followed by the assistant header, as the model will see it.

    The prompt sees the job's tools and template variables (as the training rows do); it is
    never cut and its labels are not used.
    """
    prompt_spec = replace(spec, add_generation_prompt=True, max_length=None, train_on="assistant")
    rendering = render([Message("user", prompt)], get_dialect(spec.dialect), tokenizer, prompt_spec)
    return list(rendering.input_ids)
