"""POST /api/render's answers: orjson writes the default shape exactly as the standard encoder
wrote it, and the columnar shape holds the same tokens in a few bytes per token."""

from __future__ import annotations

import gc
import json

import pytest
from starlette.responses import JSONResponse

from app.service.encoding import encode_json
from app.service.render import (
    render_and_lint,
    render_answer,
    rendering_columns_json,
    rendering_json,
    rendering_json_bytes,
)
from app.service.requests import RenderRequest
from tests.helpers.errors import assert_error
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS
from tests.zoo.templates import template_source

UNICODE = [
    {"role": "system", "content": 'Réponds en français, s\'il te plaît. \u200b\t"quotes" \\ / '},
    {"role": "user", "content": "日本語 🦙 naïve café\nline\r\n<script>alert(1)</script>"},
    {"role": "assistant", "content": "Ünïcödé 😀 \u0301e </s> <|im_end|> \x07 done"},
]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
)
CASES = [
    {"tokenizer": "smollm2", "dialect": "chatml"},
    {"tokenizer": "qwen3", "dialect": "tokenizer"},
    {"tokenizer": "llama2", "dialect": "llama2"},
    {"tokenizer": "gemma3", "dialect": "tokenizer", "train_on": "all"},
    {"tokenizer": "smollm2", "dialect": "custom", "template": TEMPLATE},
]


def _standard_bytes(body: dict, settings) -> bytes:
    """What the route answered before: Token records, written by Starlette's JSONResponse."""
    request = RenderRequest(**body)
    rendered, lints = render_and_lint(request.messages, request.spec(), settings)
    assert isinstance(rendered.rendering.tokens, list)  # the record path, not the columns
    return JSONResponse(rendering_json(rendered.rendering, lints)).body


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['tokenizer']}-{c['dialect']}")
def test_the_default_shape_is_byte_for_byte_what_the_standard_encoder_wrote(client, settings, case):
    body = {"messages": UNICODE, **case}
    response = client.post("/api/render", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == _standard_bytes(body, settings)


PICTURE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": 'Was ist das? 🦙 100% "sicher"'},
            {"type": "image", "width": 640, "height": 480},
        ],
    },
    {"role": "assistant", "content": "Ein Lama.\t\\n"},
]
ODD = [
    {"role": "user", "content": 'printf("%d%%\\n", x); \x00 \x01 \x1f \x7f \u2028 \ufeff 𝔘'},
    {"role": "assistant", "content": "%s %(name)s %% done\r\n"},
]
BODIES = {
    # Qwen3's own template: tools, reasoning, a tool call's JSON quotes, a tool result
    "qwen3-tool-calls": {
        "messages": TOOL_CALL_TURNS,
        "tools": WEATHER_TOOLS,
        "tokenizer": "qwen3",
        "dialect": "tokenizer",
    },
    # Gemma 3's TRL template pasted: an image expanded into placeholders, never trained
    "gemma3-image": {
        "messages": PICTURE,
        "tokenizer": "gemma3",
        "dialect": "custom",
        "template": template_source("trl/gemma3"),
    },
    # SmolLM2's own template injects a system prompt (message null); a generation prompt
    "smollm2-injected-system": {
        "messages": ODD[:1],
        "tokenizer": "smollm2",
        "dialect": "tokenizer",
        "add_generation_prompt": True,
    },
    # format characters, control characters; the pasted ChatML template in the worker
    "smollm2-custom-odd": {
        "messages": ODD,
        "tokenizer": "smollm2",
        "dialect": "custom",
        "template": TEMPLATE,
    },
    # Llama 3's BOS outside every message; cut by max_length; everything trained
    "llama3-truncated": {
        "messages": UNICODE,
        "tokenizer": "llama3",
        "dialect": "llama3",
        "max_length": 30,
        "train_on": "all",
    },
    "mistral-last-assistant": {
        "messages": [*UNICODE, *ODD],
        "tokenizer": "mistral",
        "dialect": "mistral",
        "train_on": "last_assistant",
    },
}


@pytest.mark.parametrize("name", BODIES)
def test_the_default_shape_of_modern_conversations_is_what_the_standard_encoder_wrote(
    client, settings, name
):
    body = BODIES[name]
    response = client.post("/api/render", json=body)
    assert response.status_code == 200, response.text
    expected = _standard_bytes(body, settings)
    assert response.content == expected
    request = RenderRequest(**body)
    rendered, lints = render_and_lint(request.messages, request.spec(), settings, columns=True)
    written = rendering_json_bytes(rendered.rendering, lints)  # the columns' own writer
    assert written == expected == encode_json(rendering_json(rendered.rendering, lints))
    answer = json.loads(expected)
    assert -100 in answer["labels"] or body.get("train_on") == "all"
    assert any(t["message"] is None for t in answer["tokens"]) or name == "mistral-last-assistant"


@pytest.mark.parametrize("collector", [True, False])
def test_the_answer_writer_gives_both_shapes_and_leaves_the_collector_as_it_was(
    settings, collector
):
    request = RenderRequest(**{**CASES[0], "messages": UNICODE})
    rendered, lints = render_and_lint(request.messages, request.spec(), settings, columns=True)
    was = gc.isenabled()
    (gc.enable if collector else gc.disable)()
    try:
        default = render_answer(request.messages, request.spec(), settings)
        columns = render_answer(request.messages, request.spec(), settings, columns=True)
        assert gc.isenabled() is collector
    finally:
        (gc.enable if was else gc.disable)()
    assert default == encode_json(rendering_json(rendered.rendering, lints))
    assert columns == encode_json(rendering_columns_json(rendered.rendering, lints))


def test_floats_surrogates_and_odd_keys_keep_their_values():
    data = {"f": [0.1 + 0.2, 1e-7, 1e20, -0.0, 2.5], "s": "caf\u00e9 😀", "n": None}
    assert json.loads(encode_json(data)) == data
    # orjson refuses a lone surrogate; the standard encoder's escape carries it through.
    odd = {"lone": "x\ud800y", 3: "int key"}
    assert json.loads(encode_json(odd)) == {"lone": "x\ud800y", "3": "int key"}


def _columns_to_tokens(cols: dict) -> list[dict]:
    special = set(cols["special"])
    role_names, part_names = cols["names"]["roles"], cols["names"]["parts"]
    return [
        {
            "id": i,
            "text": text,
            "role": role_names[role],
            "message": message,
            "special": i in special,
            "trained": trained,
            "start": start,
            "end": end,
            "part": part_names[part],
        }
        for i, text, role, message, part, trained, start, end in zip(
            cols["ids"],
            cols["texts"],
            cols["roles"],
            cols["messages"],
            cols["parts"],
            cols["trained"],
            cols["starts"],
            cols["ends"],
            strict=True,
        )
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['tokenizer']}-{c['dialect']}")
def test_the_columnar_shape_holds_the_same_tokens(client, case):
    body = {"messages": UNICODE, **case}
    default = client.post("/api/render", json=body).json()
    cols = client.post("/api/render", json={**body, "format": "columns"}).json()
    assert cols["format"] == "columns"
    assert _columns_to_tokens(cols) == default["tokens"]
    assert cols["ids"] == default["input_ids"]
    labels = [i if t else -100 for i, t in zip(cols["ids"], cols["trained"], strict=True)]
    assert labels == default["labels"]
    for key in ("text", "stats", "lints"):
        assert cols[key] == default[key]


def test_the_columnar_shape_of_a_long_conversation_is_under_40_bytes_per_token(client):
    messages = [{"role": "system", "content": "You are a careful assistant."}]
    for i in range(400):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"labels {i}.0, masking {i}.1, loss {i}.2"})
    body = {"messages": messages, "tokenizer": "smollm2", "dialect": "custom"}
    body["template"] = TEMPLATE
    response = client.post("/api/render", json={**body, "format": "columns"})
    assert response.status_code == 200, response.text
    tokens = len(response.json()["ids"])
    assert tokens > 10_000
    assert len(response.content) / tokens <= 40
    default = client.post("/api/render", json=body)
    assert len(default.content) / tokens > 100  # the default shape, for scale


def test_an_unknown_format_names_the_field(client):
    response = client.post("/api/render", json={"messages": UNICODE, "format": "rows"})
    assert_error(response, 422, "format")
