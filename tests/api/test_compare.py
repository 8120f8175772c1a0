"""POST /api/compare: each column equals /api/render for its target; failures stay in their slot."""

from __future__ import annotations

from tests.helpers.errors import assert_error

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
]
TARGETS = [
    {"tokenizer": t, "dialect": d}
    for t, d in [
        ("qwen3", "chatml"),
        ("llama3", "llama3"),
        ("llama2", "llama2"),
        ("gemma3", "gemma"),
    ]
]


def test_each_result_is_the_render_response_of_its_target(client):
    body = {"messages": MESSAGES, "train_on": "assistant", "targets": TARGETS}
    response = client.post("/api/compare", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(TARGETS)
    for target, result in zip(TARGETS, results, strict=True):
        alone = client.post("/api/render", json={"messages": MESSAGES, **target}).json()
        assert result == alone
    assert len({len(r["input_ids"]) for r in results}) > 1  # the formats really differ


def test_a_failing_target_is_an_error_entry_in_order(client):
    targets = [
        TARGETS[0],
        {"tokenizer": "qwen3", "dialect": "nope"},
        {"tokenizer": "no-such-tokenizer", "dialect": "chatml"},
        TARGETS[1],
    ]
    response = client.post("/api/compare", json={"messages": MESSAGES, "targets": targets})
    assert response.status_code == 200, response.text
    first, bad_dialect, bad_tokenizer, last = response.json()["results"]
    assert "input_ids" in first and "input_ids" in last
    assert bad_dialect["error"]["status"] == 422 and bad_dialect["error"]["field"] == "dialect"
    assert bad_tokenizer["error"]["field"] == "tokenizer"


def test_custom_template_per_target(client):
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    targets = [{"tokenizer": "qwen3", "dialect": "custom", "template": template}]
    result = client.post("/api/compare", json={"messages": MESSAGES, "targets": targets}).json()
    assert result["results"][0]["text"] == "[system] Be brief.\n[user] Hi\n[assistant] Hello!\n"


def test_too_many_targets_names_the_setting(client, settings):
    targets = [TARGETS[0]] * (settings.max_compare_targets + 1)
    err = assert_error(
        client.post("/api/compare", json={"messages": MESSAGES, "targets": targets}),
        422,
        "max_compare_targets",
    )
    assert err["setting"] == "max_compare_targets"


def test_no_targets_is_a_422_naming_the_field(client):
    err = assert_error(
        client.post("/api/compare", json={"messages": MESSAGES, "targets": []}), 422, "targets"
    )
    assert err["field"] == "targets"


def test_rows_align_each_message_with_the_tokens_each_column_gives_it(client):
    targets = [
        {"tokenizer": "qwen3", "dialect": "tokenizer"},
        {"tokenizer": "llama2", "dialect": "llama2"},
    ]
    body = client.post("/api/compare", json={"messages": MESSAGES, "targets": targets}).json()
    rows = {row["key"]: row for row in body["rows"]}
    for column, result in enumerate(body["results"]):
        shown = sorted(
            i for row in body["rows"] for i in (row["cells"][column] or {"tokens": []})["tokens"]
        )
        assert shown == list(range(len(result["input_ids"])))  # every token in exactly one row
        for key, row in rows.items():
            if key.isdigit():
                mine = {i for i, t in enumerate(result["tokens"]) if t["message"] == int(key)}
                assert mine <= set(row["cells"][column]["tokens"])
    last = rows[str(len(MESSAGES) - 1)]
    assert "llama2 trains a space after the content" in last["differences"]
    assert "qwen3 trains `<think>\\n\\n</think>\\n\\n` before the content" in last["differences"]
    assert [c["differs"] for c in last["cells"]] == [True, True]
    assert rows["1"]["differences"] == []
