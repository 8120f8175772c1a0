"""Every page and fragment route as one table: (method, route, form, HX-Request, status, snippets).

A fragment is a block of its page (no <html>); an htmx request that fails gets the error fragment,
any other failing request the one JSON error shape.
"""

from __future__ import annotations

import pytest

CONV = {
    "v": "1",
    "tokenizer": "qwen3",
    "dialect": "chatml",
    "train_on": "assistant",
    "train_on_eot": "on",
    "role": ["user", "assistant"],
    "content": ["Hi", "Hello!"],
}
COLUMNS = {
    **CONV,
    "target_tokenizer": ["qwen3", "llama3", "llama2", "gemma3"],
    "target_dialect": ["chatml", "llama3", "llama2", "gemma"],
    "target_template": ["", "", "", ""],
}
BATCH = {
    "v": "1",
    "tokenizer": "qwen3",
    "dialect": "chatml",
    "train_on": "assistant",
    "padding_side": "left",
    "pack_length": "64",
    "conversations": '[{"role": "user", "content": "Hi"}, '
    '{"role": "assistant", "content": "Hello"}]\n'
    '{"messages": [{"role": "user", "content": "2+2?"}, '
    '{"role": "assistant", "content": "4"}]}',
}


def _with(base: dict, **changes) -> dict:
    return {**base, **changes}


ROUTES = [
    # method, route, form, htmx, status, snippets that must appear, snippets that must not
    (
        "GET",
        "/",
        None,
        False,
        200,
        [
            "<title>Playground · Maskscope",
            'hx-post="/fragments/render"',
            "data-tokens",
            'name="htmx-config"',
            "Load example",
        ],
        [],
    ),
    (
        "GET",
        "/?v=1&tokenizer=llama3&dialect=llama3&role=user&content=Hi+there",
        None,
        False,
        200,
        ['data-id="128000"', 'value="llama3" selected', "Hi there</textarea>"],
        [],
    ),
    (
        "GET",
        "/?v=1&tokenizer=qwen3&dialect=nope&role=user&content=Hi",
        None,
        False,
        422,
        ["<title>Playground", 'class="error"', "Unknown dialect"],
        [],
    ),
    (
        "POST",
        "/fragments/render",
        CONV,
        True,
        200,
        ['data-stat="tokens">13<', "data-tokens", 'class="legend"', 'hx-post="/fragments/lints"'],
        ["<html", "<form"],
    ),
    (
        "POST",
        "/fragments/lints",
        _with(CONV, tokenizer="smollm2"),
        True,
        200,
        ['<section id="lints"', "pad-is-eos", "data-show-tokens"],
        ["<html", "data-tokens"],
    ),
    ("POST", "/fragments/lints", _with(CONV, dialect="nope"), True, 422, ["Unknown dialect"], []),
    (
        "POST",
        "/fragments/render",
        _with(CONV, content=["<script>alert(1)</script>", "ok"]),
        True,
        200,
        ["&lt;script"],
        ["<script>alert"],
    ),
    (
        "POST",
        "/fragments/render",
        _with(CONV, dialect="nope"),
        True,
        422,
        ['class="error"', "Unknown dialect", "<code>dialect</code>"],
        ["<html"],
    ),
    (
        "POST",
        "/fragments/render",
        _with(CONV, dialect="nope"),
        False,
        422,
        ['"code":"invalid_input"', '"field":"dialect"'],
        [],
    ),
    (
        "POST",
        "/fragments/render",
        _with(CONV, dialect="custom", template="{% for %}"),
        True,
        422,
        ['class="error"', "template"],
        [],
    ),
    (
        "POST",
        "/fragments/render",
        _with(CONV, max_length="ten"),
        True,
        422,
        ["max_length", "whole number"],
        [],
    ),
    (
        "POST",
        "/fragments/render",
        _with(CONV, role=["user"]),
        True,
        422,
        ["1 roles but 2 contents"],
        [],
    ),
    (
        "GET",
        "/compare",
        None,
        False,
        200,
        ["<title>Compare · Maskscope", 'class="column"', "end of turn", 'name="target_dialect"'],
        [],
    ),
    (
        "GET",
        (
            "/compare?v=1&role=user&content=Hi&target_tokenizer=qwen3&target_dialect=llama2"
            "&target_template="
        ),
        None,
        False,
        200,
        ['data-column-index="0"', "<small>llama2</small>"],
        ['data-column-index="1"'],
    ),
    (
        "POST",
        "/fragments/compare",
        COLUMNS,
        True,
        200,
        ['data-column-index="3"', "<h3><span>gemma3</span>"],
        ["<html"],
    ),
    (
        "POST",
        "/fragments/compare",
        _with(COLUMNS, target_dialect=["chatml", "nope", "llama2", "gemma"]),
        True,
        200,
        ['data-column-index="3"', 'class="error"', "Unknown dialect"],
        [],
    ),
    (
        "GET",
        "/batch",
        None,
        False,
        200,
        ["<title>Batch · Maskscope", "Padded batch", "Packed rows", "attention_mask", "<svg"],
        [],
    ),
    (
        "GET",
        (
            "/batch?v=1&tokenizer=qwen3&dialect=chatml&padding_side=left&pack_length=9"
            "&conversations=%5B%7B%22role%22%3A%22user%22%2C%22content%22%3A%22Hi%22%7D%5D"
        ),
        None,
        False,
        200,
        ["padding left", "rows of at most 9 tokens", "Hi&#34;}]</textarea>"],
        [],
    ),
    (
        "POST",
        "/fragments/batch",
        BATCH,
        True,
        200,
        ["padding left", "Packed rows", 'class="start"'],
        ["<html"],
    ),
    (
        "POST",
        "/fragments/batch",
        _with(BATCH, conversations="{oops"),
        True,
        422,
        ["Line 1 of conversations is not JSON"],
        [],
    ),
    ("GET", "/static/js/app.js", None, False, 200, ["data-tokens"], []),
    ("GET", "/static/css/app.css", None, False, 200, ["prefers-color-scheme: dark"], []),
    ("GET", "/static/vendor/htmx.min.js", None, False, 200, ["htmx"], []),
]


@pytest.mark.parametrize(
    ("method", "route", "form", "htmx", "status", "present", "absent"),
    ROUTES,
    ids=[f"{r[0]} {r[1][:40]} hx={r[3]} {r[4]}" for r in ROUTES],
)
def test_route(client, method, route, form, htmx, status, present, absent):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.request(method, route, data=form, headers=headers)
    assert response.status_code == status, response.text[:2000]
    for snippet in present:
        assert snippet in response.text, snippet
    for snippet in absent:
        assert snippet not in response.text, snippet
