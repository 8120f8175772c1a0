"""Training data: conversations rendered by the engine, so labels are the ones the browser shows.

Design concession: every conversation is rendered up front (small fine-tunes, a few thousand rows at
most) and cut at ``max_length`` by the engine; conversations with no trained token are dropped,
since they would only add padding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.chat.messages import Message, parse_row
from app.chat.render import render
from app.chat.spec import RenderSpec, has_row_inputs
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import IGNORE_INDEX
from app.dialects.registry import get_dialect
from app.errors import InputError
from app.settings import Settings

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class TrainingData:
    """Conversations to train on, prompts to sample before/after, and an optional checker."""

    conversations: list[list[Message]]
    prompts: list[str]
    check: dict[str, str] | None = None
    behaviour: str | None = None
    examples: list[dict[str, list[int]]] = field(default_factory=list)


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
    return TrainingData(conversations, sample_prompts or _first_prompts(conversations))


def parse_conversations(rows: list[Any]) -> list[list[Message]]:
    """Inline job conversations (rows, or bare message lists); a bad one names its index.

    Example: [[{"role": "user", "content": "Hi"}, ...]] -> [[Message("user", "Hi"), ...]]
    """
    conversations = []
    for index, row in enumerate(rows):
        if has_row_inputs(row):  # silently dropped, the labels would differ from inspection's
            raise InputError(
                f"data.conversations[{index}] carries its own tools or chat_template_kwargs, "
                "which fine-tune jobs do not take yet; render those rows without them.",
                field=f"data.conversations[{index}]",
            )
        try:
            conversations.append(parse_row(row if isinstance(row, dict) else {"messages": row}))
        except (InputError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"data.conversations[{index}] is not a conversation: {exc}",
                field=f"data.conversations[{index}]",
            ) from exc
    return conversations


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
) -> list[dict[str, list[int]]]:
    """Render each conversation; keep input_ids and labels of those with a trained token."""
    chat_format = get_dialect(spec.dialect)
    examples = []
    for conversation in conversations:
        rendering = render(conversation, chat_format, tokenizer, spec, settings)
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

    Only the dialect of `spec` matters here: a prompt is never cut and its labels are not used.
    """
    prompt_spec = RenderSpec(
        tokenizer=spec.tokenizer, dialect=spec.dialect, add_generation_prompt=True
    )
    rendering = render([Message("user", prompt)], get_dialect(spec.dialect), tokenizer, prompt_spec)
    return list(rendering.input_ids)
