"""POST /api/render and GET /api/dialects over the real app: the JSON contract and its errors."""

from __future__ import annotations

import pytest

from tests.helpers.errors import assert_error
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS

CONV = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Hi <script>"},
    {"role": "assistant", "content": "Hello!"},
]


def _post(client, **body):
    return client.post("/api/render", json={"messages": CONV, **body})


def test_render_shape_matches_the_contract(client, tokenizers):
    response = _post(client, tokenizer="smollm2", dialect="chatml")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "text",
        "input_ids",
        "labels",
        "attention_mask",
        "tokens",
        "stats",
        "lints",
    }
    assert set(body["tokens"][0]) == {
        "id",
        "text",
        "role",
        "message",
        "special",
        "trained",
        "start",
        "part",
        "end",
    }
    assert "".join(t["text"] for t in body["tokens"]) == body["text"]
    for tok, label, tid in zip(body["tokens"], body["labels"], body["input_ids"], strict=True):
        assert label == (tid if tok["trained"] else -100) and tok["id"] == tid
        assert body["text"][tok["start"] : tok["end"]] == tok["text"]
    trained = "".join(t["text"] for t in body["tokens"] if t["trained"])
    assert trained == "Hello!<|im_end|>"
    assert body["stats"]["tokens"] == len(body["input_ids"])
    assert body["stats"]["trained"] == sum(1 for x in body["labels"] if x != -100)
    assert "<script>" in body["text"]  # JSON carries the raw text; HTML views escape it
    ref = tokenizers("smollm2").apply_chat_template(CONV, tokenize=True, return_dict=False)
    assert body["input_ids"] == list(ref)


def test_tokenizer_dialect_and_lints_are_present(client):
    body = _post(client, tokenizer="llama3", dialect="tokenizer").json()
    assert body["tokens"][0]["role"] is None  # <|begin_of_text|>
    # the bundled Llama 3 template always appends the assistant header (see its asset description)
    lints = {lint["code"]: lint for lint in body["lints"]}
    assert list(lints) == ["generation-prompt-in-training", "dialect-mismatch"]
    for lint in body["lints"]:
        assert set(lint) == {"code", "severity", "message", "tokens"}
        assert lint["tokens"] and max(lint["tokens"]) < len(body["tokens"])
    header = lints["generation-prompt-in-training"]
    assert header["severity"] == "error"
    assert header["tokens"][-1] == len(body["tokens"]) - 1
    assert "add_generation_prompt" in header["message"]


def test_custom_template_renders_in_the_worker(client):
    template = (
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    body = _post(client, tokenizer="qwen3", dialect="custom", template=template).json()
    assert body["text"] == "[system] Be kind.\n[user] Hi <script>\n[assistant] Hello!\n"
    assert "".join(t["text"] for t in body["tokens"] if t["trained"]).strip() == "Hello!"


def test_a_template_without_generation_prompt_trains_the_header_the_model_must_write(client):
    """Nothing prompts the model for its turn, so at inference it writes "[assistant] " too."""
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    body = _post(client, tokenizer="qwen3", dialect="custom", template=template).json()
    trained = "".join(t["text"] for t in body["tokens"] if t["trained"])
    assert trained.strip() == "[assistant] Hello!"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"dialect": "vicuna"}, 422, "dialect"),
        ({"dialect": "custom"}, 422, "template"),
        ({"dialect": "custom", "template": "{% for %}"}, 422, "line 1"),
        ({"dialect": "custom", "template": "{{ raise_exception('bad roles') }}"}, 422, "bad roles"),
        ({"dialect": "custom", "template": "x" * 70_000}, 413, "max_template_bytes"),
        (
            {
                "dialect": "custom",
                "template": "{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}",
            },
            422,
            "max_render_chars",
        ),
        (
            {"dialect": "custom", "template": "{% for i in range(10**9) %}{% endfor %}"},
            422,
            "max_range",
        ),
        ({"train_on": "users"}, 422, "train_on"),
        ({"max_length": 0}, 422, "max_length"),
        (
            {
                "dialect": "gemma",
                "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            },
            422,
            "messages[1].role",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, 422, "messages[0].role"),
        ({"messages": []}, 422, "empty"),
    ],
)
def test_errors_have_one_shape_and_name_the_field(client, body, status, needle):
    payload = {"messages": CONV, "tokenizer": "qwen3", "dialect": "chatml", **body}
    assert_error(client.post("/api/render", json=payload), status, needle)


def test_dialects_listing(client):
    response = client.get("/api/dialects")
    assert response.status_code == 200
    listed = {d["name"]: d for d in response.json()}
    for name in (
        "chatml",
        "llama2",
        "llama3",
        "mistral",
        "gemma",
        "phi3",
        "zephyr",
        "alpaca",
        "tokenizer",
        "custom",
    ):
        assert name in listed
        assert listed[name]["title"] and listed[name]["description"]
        assert "special_tokens" in listed[name]
    assert "<|eot_id|>" in listed["llama3"]["special_tokens"]


def test_render_takes_tools_kwargs_and_part_training(client, tokenizers):
    body = {
        "messages": TOOL_CALL_TURNS,
        "tokenizer": "qwen3",
        "dialect": "tokenizer",
        "tools": WEATHER_TOOLS,
    }
    response = client.post(
        "/api/render",
        json={**body, "chat_template_kwargs": {"enable_thinking": True}, "train_tool_calls": False},
    )
    assert response.status_code == 200, response.text
    got = response.json()
    want = tokenizers("qwen3").apply_chat_template(
        TOOL_CALL_TURNS, tools=WEATHER_TOOLS, tokenize=False
    )
    assert got["text"] == want
    parts = {t["part"] for t in got["tokens"] if t["trained"]}
    assert "reasoning" in parts and "tool_call" not in parts


@pytest.mark.parametrize("name", ["messages", "add_generation_prompt", "eos_token"])
def test_reserved_chat_template_kwargs_are_refused(client, name):
    response = _post(client, chat_template_kwargs={name: True})
    err = assert_error(response, 422, "chat_template_kwargs", repr(name))
    assert err["field"] == "chat_template_kwargs"
