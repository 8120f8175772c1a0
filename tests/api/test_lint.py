"""POST /api/lint: the /api/render body, only the findings back, same errors."""

from __future__ import annotations

import pytest

from tests.helpers.errors import assert_error

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def test_lint_matches_render_lints(client):
    body = {"messages": CHAT, "tokenizer": "llama3", "dialect": "tokenizer"}
    linted = client.post("/api/lint", json=body)
    rendered = client.post("/api/render", json=body)
    assert linted.status_code == 200, linted.text
    assert set(linted.json()) == {"lints"}
    assert linted.json()["lints"] == rendered.json()["lints"]
    codes = {f["code"] for f in linted.json()["lints"]}
    assert "generation-prompt-in-training" in codes


def test_clean_conversation_has_no_error_or_warning(client):
    body = {"messages": CHAT, "tokenizer": "gemma3", "dialect": "gemma"}
    response = client.post("/api/lint", json=body)
    assert response.status_code == 200
    assert [f for f in response.json()["lints"] if f["severity"] != "info"] == []


def test_finding_shape(client):
    body = {"messages": CHAT[:1], "tokenizer": "qwen3", "dialect": "chatml"}
    (finding,) = [
        f
        for f in client.post("/api/lint", json=body).json()["lints"]
        if f["code"] == "no-trained-tokens"
    ]
    assert set(finding) == {"code", "severity", "message", "tokens"}
    assert finding["severity"] == "error"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"messages": CHAT, "tokenizer": "qwen3", "dialect": "nope"}, "dialect"),
        (
            {"messages": CHAT, "tokenizer": "qwen3", "dialect": "chatml", "train_on": "x"},
            "train_on",
        ),
        (
            {
                "messages": [{"role": "wizard", "content": "x"}],
                "tokenizer": "qwen3",
                "dialect": "chatml",
            },
            "messages[0].role",
        ),
    ],
)
def test_bad_requests_name_the_field(client, body, field):
    err = assert_error(client.post("/api/lint", json=body), 422)
    assert err["field"] == field


def test_add_special_tokens_shows_the_double_bos_of_tokenizing_rendered_text(client):
    body = {"messages": CHAT, "tokenizer": "gemma3", "dialect": "tokenizer"}
    plain = client.post("/api/lint", json=body).json()["lints"]
    doubled = client.post("/api/lint", json={**body, "add_special_tokens": True}).json()["lints"]
    assert "double-bos" not in {f["code"] for f in plain}
    (hit,) = [f for f in doubled if f["code"] == "double-bos"]
    assert hit["severity"] == "error" and hit["tokens"] == [0, 1]
