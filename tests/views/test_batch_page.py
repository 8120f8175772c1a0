"""The batch page warns where max_length or the packed row length cuts a conversation, and
shows each conversation's lints, with the figures the API gives for the same batch."""

from __future__ import annotations

import json

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, friend."}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
]
FORM = {
    "v": "1",
    "tokenizer": "qwen3",
    "dialect": "chatml",
    "train_on": "assistant",
    "train_on_eot": "on",
    "padding_side": "right",
    "conversations": "\n".join(json.dumps(c) for c in CONVERSATIONS),
}


def fragment(client, **changes) -> str:
    response = client.post(
        "/fragments/batch", data={**FORM, **changes}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200, response.text[:2000]
    return response.text


def api_rows(client, **body):
    response = client.post(
        "/api/batch",
        json={"conversations": CONVERSATIONS, "tokenizer": "qwen3", "dialect": "chatml", **body},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_packed_length_that_cuts_every_answer_says_nothing_is_left_to_learn(client):
    # The user turn alone ("<|im_start|>user\nHi<|im_end|>\n" + the assistant header) is 8 tokens.
    packed = api_rows(client, pack=True, max_length=8)
    assert all(x == -100 for row in packed["rows"] for x in row["labels"])
    html = fragment(client, pack_length="8")
    assert html.count("The packed row length 8 cuts its last") == 2
    assert "nothing of it is left to learn (0 learned)" in html
    assert "truncation-cuts-answer" in html or "truncation" in html


def test_no_cut_no_warning_and_the_lints_are_shown(client):
    html = fragment(client, pack_length="64")
    assert "cuts its last" not in html
    assert html.count("no lint findings") == 2  # qwen3's own template, pad token distinct
    html = fragment(client, pack_length="64", tokenizer="smollm2")
    assert 'aria-label="Lint findings of conversation 1"' in html
    assert html.count("<code>pad-is-eos</code>") == 2  # SmolLM2 pads with its EOS


def test_max_length_cuts_are_counted_as_the_api_cuts_them(client):
    padded = api_rows(client, max_length=10)
    html = fragment(client, max_length="10", pack_length="64")
    whole = [sum(row["attention_mask"]) for row in api_rows(client)["rows"]]
    assert all(len(row["input_ids"]) == 10 for row in padded["rows"])
    assert "max_length 10 cuts its last" in html
    assert html.count("max_length 10 cuts its last") == sum(1 for n in whole if n > 10)


def test_a_conversation_carried_from_the_playground_becomes_the_batchs_one_line(client):
    query = "v=1&tokenizer=qwen3&dialect=chatml&train_on_eot=on&role=user&content=Hi+carried"
    query += "&role=assistant&content=Hello"
    html = client.get(f"/batch?{query}").text
    assert "Hi carried" in html.split('name="conversations"')[1].split("</textarea>")[0]
    assert html.count('class="conv"') == 1
    # A hand-made link naming only the tokenizer keeps the example batch.
    assert client.get("/batch?tokenizer=qwen3").text.count('class="conv"') == 3
