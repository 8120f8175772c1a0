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
    assert set(body) == {"summary", "rows", "plots"}
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


def parquet_bytes(rows) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def test_parquet_upload_reads_as_parquet(client):
    rows = [{"messages": CHAT}] * 3 + [{"messages": CHAT[:1]}]
    response = client.post(
        "/api/inspect",
        files={"file": ("rows.parquet", parquet_bytes(rows), "application/octet-stream")},
        data={"tokenizer": "qwen3", "dialect": "chatml"},
    )
    body = response.json()
    assert response.status_code == 200 and body["summary"]["rows"] == 4, body
    assert body["summary"]["bad_rows"] == 0
    assert [r["line"] for r in body["rows"]] == [4]


@pytest.mark.parametrize(
    "name, data, needle",
    [
        ("rows.parquet", b'{"messages": []}\n', "rows.parquet is not a Parquet file"),
        ("rows.jsonl", b"", "The file is empty"),
    ],
)
def test_upload_not_what_it_says_is_422(client, name, data, needle):
    response = client.post(
        "/api/inspect",
        files={"file": (name, data, "application/octet-stream")},
        data={"tokenizer": "qwen3", "dialect": "chatml"},
    )
    assert assert_error(response, 422, needle)["field"] == "file"


def test_column_mapping_fields(client):
    rows = [{"dialog": [{"speaker": "user", "text": "Hi"}, {"speaker": "assistant", "text": "Yo"}]}]
    body = post(
        client, jsonl(rows), messages_column="dialog", role_key="speaker", content_key="text"
    ).json()
    assert body["summary"]["bad_rows"] == 0 and body["summary"]["trained_tokens"] == 2


@pytest.mark.parametrize("dataset", ["../etc", "tests/..", "/etc/passwd", "a/..", "x"])
def test_dataset_field_takes_only_hub_ids(client, dataset):
    response = client.post(
        "/api/inspect", data={"tokenizer": "qwen3", "dialect": "chatml", "dataset": dataset}
    )
    assert assert_error(response, 422, "Hugging Face dataset id")["field"] == "dataset"


def test_hub_dataset_unreachable_is_422(client, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed port: the Hub is away
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    response = client.post(
        "/api/inspect",
        data={"tokenizer": "qwen3", "dialect": "chatml", "dataset": "HuggingFaceH4/ultrachat_200k"},
    )
    assert assert_error(response, 422, "not reachable")["field"] == "dataset"


def test_file_and_dataset_together_is_422(client):
    response = client.post(
        "/api/inspect",
        files={"file": ("d.jsonl", jsonl([{"messages": CHAT}]), "application/jsonl")},
        data={"tokenizer": "qwen3", "dialect": "chatml", "dataset": "org/name"},
    )
    assert assert_error(response, 422, "either")["field"] == "file"
