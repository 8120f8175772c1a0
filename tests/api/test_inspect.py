"""POST /api/inspect: multipart upload in, summary and per-row findings out."""

from __future__ import annotations

import json

import pytest

from tests.helpers.datasets import CHAT, tokenized_row
from tests.helpers.errors import assert_error


def jsonl(rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def post(client, data: bytes, **form):
    fields = {"tokenizer": "qwen3", "dialect": "chatml", "train_on": "assistant", **form}
    return client.post(
        "/api/inspect", files={"file": ("data.jsonl", data, "application/jsonl")}, data=fields
    )


def test_inspect_mixed_upload(client):
    response = post(client, jsonl([{"messages": CHAT}, "{broken", tokenized_row("shifted")]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"summary", "rows"}
    assert body["summary"]["rows"] == 3 and body["summary"]["bad_rows"] == 1
    lines = {r["line"]: r for r in body["rows"]}
    assert set(lines) == {2, 3}
    assert "not valid JSON" in lines[2]["error"]
    assert "labels-shifted" in {f["code"] for f in lines[3]["lints"]}


def test_train_on_changes_findings(client):
    body = post(client, jsonl([{"messages": CHAT}]), train_on="all").json()
    assert body["rows"][0]["lints"][0]["code"] == "prompt-trained"
    assert body["rows"][0]["lints"][0]["severity"] == "info"


@pytest.mark.parametrize(
    "form, field",
    [
        ({"dialect": "nope"}, "dialect"),
        ({"train_on": "everything"}, "train_on"),
        ({"dialect": "custom"}, "template"),
    ],
)
def test_bad_fields_are_named(client, form, field):
    err = assert_error(post(client, jsonl([{"messages": CHAT}]), **form), 422)
    assert err["field"] == field


def test_missing_file_is_422(client):
    response = client.post("/api/inspect", data={"tokenizer": "qwen3", "dialect": "chatml"})
    err = assert_error(response, 422)
    assert err["field"] == "file"


TOOL_ROW = {
    "messages": [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"c": 1}}}
            ],
        },
    ]
}


def test_inspect_takes_tools_kwargs_and_part_training(client):
    data = jsonl([TOOL_ROW])
    form = {"dialect": "tokenizer", "tools": json.dumps([{"type": "function"}])}
    trained = post(client, data, **form).json()["summary"]
    untrained = post(client, data, **form, train_tool_calls="false").json()["summary"]
    assert trained["trained_tokens"] > untrained["trained_tokens"] > 0
    bad = post(client, data, chat_template_kwargs='{"messages": []}')
    assert_error(bad, 422, "'messages'")
    assert_error(post(client, data, tools="[not json"), 422, "tools is not JSON")
