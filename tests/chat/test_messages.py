"""Parsing the three common row formats, and errors that name the field to fix."""

from __future__ import annotations

import pytest

from app.chat.messages import Message, parse_row
from app.errors import InputError


def test_messages_rows_keep_extra_fields():
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]},
        ]
    }
    conv = parse_row(row)
    assert conv[0] == Message("user", "Hi")
    assert conv[1].content == "" and conv[1].extra["tool_calls"][0]["function"]["name"] == "f"


def test_sharegpt_rows_map_human_and_gpt():
    row = {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "Q"},
            {"from": "gpt", "value": "A"},
        ]
    }
    assert [(m.role, m.content) for m in parse_row(row)] == [
        ("system", "S"),
        ("user", "Q"),
        ("assistant", "A"),
    ]


def test_alpaca_rows_join_instruction_and_input():
    conv = parse_row({"instruction": "Add", "input": "1+1", "output": "2"})
    assert conv == [Message("user", "Add\n\n1+1"), Message("assistant", "2")]
    assert parse_row({"instruction": "Hi", "output": "Yo"})[0].content == "Hi"


@pytest.mark.parametrize(
    ("row", "field", "needle"),
    [
        ({"messages": []}, "messages", "empty"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "wizard"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content", "string"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "no 'role'"),
        ({"messages": "hi"}, "messages", "list"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, "conversations[0].from", "alien"),
        ({"text": "raw"}, "row", "messages"),
        ({"instruction": ["x"], "output": "y"}, "instruction", "string"),
    ],
)
def test_bad_rows_name_the_field(row, field, needle):
    with pytest.raises(InputError) as err:
        parse_row(row)
    assert err.value.field == field
    assert needle in err.value.message
