"""A small mixed dataset: good conversations in the three row formats, malformed rows, and
pre-tokenized rows made the way training scripts make them (tests/helpers/datasets.py)."""

from __future__ import annotations

import pytest

from tests.helpers.datasets import CHAT, tokenized_row


@pytest.fixture()
def mixed_rows() -> list:
    return [
        {"messages": CHAT},  # line 1
        {
            "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]
        },  # line 2
        {"instruction": "Add 2 and 2.", "input": "", "output": "4"},  # line 3
        "{not json",  # line 4
        {"messages": [{"role": "wizard", "content": "x"}]},  # line 5
        tokenized_row("good"),  # line 6
        tokenized_row("shifted"),  # line 7
        {"input_ids": [1, 2, 3], "labels": [1, 2]},  # line 8
        tokenized_row("user", with_messages=True),  # line 9
        {"messages": [{"role": "user", "content": "Only a question?"}]},  # line 10
        [1, 2, 3],  # line 11
    ]
