"""A small mixed dataset built with real tokenizers: good conversations in the three row formats,
malformed rows, and pre-tokenized rows made the way training scripts make them.

Example: tokenized_row("shifted") -> {"input_ids": [...], "labels": [...], "attention_mask": [...]}
"""

from __future__ import annotations

import json

from tests.helpers.lint import IGNORE, answer_ranges, chat_text, label_by_chars
from tests.helpers.tokenizers import bundled

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def tokenized_row(labels_mode: str = "good", with_messages: bool = False) -> dict:
    """A Qwen3 pre-tokenized row: labels on the answer and its <|im_end|>, or broken on purpose."""
    tokenizer = bundled("qwen3")
    text = chat_text(tokenizer, CHAT)
    closer = {"good": "<|im_end|>", "no_eot": "", "glue": "<|im_end|>\n"}.get(
        labels_mode, "<|im_end|>"
    )
    ids, labels = label_by_chars(tokenizer, text, answer_ranges(text, ["Paris."], closer))
    if labels_mode == "shifted":
        labels = labels[1:] + [IGNORE]
    elif labels_mode == "copy":
        labels = list(ids)
    elif labels_mode == "user":
        start = text.index("What")
        ids, labels = label_by_chars(tokenizer, text, [(start, len(text))])
    row = {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}
    if with_messages:
        row["messages"] = CHAT
    return row


def write_jsonl(path, rows: list) -> None:
    """One JSON document per line; a str row is written as is (malformed lines on purpose)."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(row if isinstance(row, str) else json.dumps(row))
            fh.write("\n")
