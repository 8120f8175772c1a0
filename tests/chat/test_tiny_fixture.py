"""The engine's core claims over HTTP, on the tiny committed tokenizers: no downloaded assets.

POST /api/render is the stable surface, so these tests hold while the modules behind it move.
The reference for the `tokenizer` dialect is transformers' own apply_chat_template.
"""

from __future__ import annotations

import pytest

from tests.helpers.errors import assert_error

IGNORE = -100
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And Italy?"},
    {"role": "assistant", "content": "Rome."},
]
ANSWERS = {2: "Paris.", 4: "Rome."}


def render(client, messages=CHAT, tokenizer="tiny_chatml", **options) -> dict:
    body = {"messages": messages, "tokenizer": tokenizer, "dialect": "chatml"} | options
    response = client.post("/api/render", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_consistent(body: dict) -> None:
    """What every rendering promises: labels follow `trained`, spans tile the text."""
    tokens, text = body["tokens"], body["text"]
    assert [t["id"] for t in tokens] == body["input_ids"]
    assert body["labels"] == [t["id"] if t["trained"] else IGNORE for t in tokens]
    assert "".join(t["text"] for t in tokens) == text
    assert [t["start"] for t in tokens] == [0] + [t["end"] for t in tokens[:-1]]
    assert all(text[t["start"] : t["end"]] == t["text"] for t in tokens)
    assert body["attention_mask"] == [1] * len(tokens)
    assert body["stats"]["tokens"] == len(tokens)
    assert body["stats"]["trained"] == sum(t["trained"] for t in tokens)


def trained_text(body: dict, message: int) -> str:
    return "".join(t["text"] for t in body["tokens"] if t["message"] == message and t["trained"])


@pytest.mark.parametrize("dialect", ["chatml", "tokenizer"])
def test_assistant_answers_and_their_end_of_turn_are_trained(tiny_client, dialect):
    body = render(tiny_client, dialect=dialect)
    assert_consistent(body)
    assert body["text"].endswith("<|im_start|>assistant\nRome.<|im_end|>\n")
    for message, answer in ANSWERS.items():
        assert trained_text(body, message) == answer + "<|im_end|>"
    assert not any(t["trained"] for t in body["tokens"] if t["role"] in ("system", "user"))
    assert body["stats"]["trained"] > 0
    assert body["lints"] == []


@pytest.mark.parametrize("dialect", ["chatml", "tokenizer"])
def test_glue_after_end_of_turn_and_headers_are_not_trained(tiny_client, dialect):
    tokens = render(tiny_client, dialect=dialect)["tokens"]
    ends = [k for k, t in enumerate(tokens) if t["text"] == "<|im_end|>"]
    assert len(ends) == len(CHAT)
    for k in ends:
        assert tokens[k]["special"]
        assert tokens[k]["trained"] == (tokens[k]["role"] == "assistant")
        assert tokens[k + 1]["text"] == "\n" and not tokens[k + 1]["trained"]
        assert tokens[k + 1]["message"] == tokens[k]["message"]
    starts = [k for k, t in enumerate(tokens) if t["text"] == "<|im_start|>"]
    assert not any(t["trained"] for k in starts for t in tokens[k : k + 4])


def test_tokenizer_dialect_equals_apply_chat_template(tiny_client, tiny_tokenizer):
    body = render(tiny_client, dialect="tokenizer")
    reference = tiny_tokenizer.apply_chat_template(CHAT, tokenize=True, return_dict=True)
    assert body["input_ids"] == list(reference["input_ids"])
    assert body["text"] == tiny_tokenizer.apply_chat_template(CHAT, tokenize=False)


def test_builtin_chatml_matches_the_tokenizers_own_template(tiny_client):
    """With a system message the tiny template injects nothing, so both dialects agree."""
    chatml, own = render(tiny_client, dialect="chatml"), render(tiny_client, dialect="tokenizer")
    assert (chatml["input_ids"], chatml["labels"]) == (own["input_ids"], own["labels"])


def test_generation_prompt_equals_apply_chat_template_and_is_untrained(tiny_client, tiny_tokenizer):
    prompt = CHAT[:4]
    body = render(tiny_client, prompt, dialect="tokenizer", add_generation_prompt=True)
    assert_consistent(body)
    reference = tiny_tokenizer.apply_chat_template(
        prompt, tokenize=True, return_dict=True, add_generation_prompt=True
    )
    assert body["input_ids"] == list(reference["input_ids"])
    header = body["text"].rindex("<|im_start|>assistant\n")
    tail = [t for t in body["tokens"] if t["start"] >= header]
    assert "".join(t["text"] for t in tail) == "<|im_start|>assistant\n"
    assert {(t["message"], t["trained"]) for t in tail} == {(None, False)}
    assert trained_text(body, 2) == "Paris.<|im_end|>"


def test_injected_system_prompt_belongs_to_no_message(tiny_client):
    body = render(tiny_client, CHAT[1:3], dialect="tokenizer")
    assert body["text"].startswith("<|im_start|>system\nYou are a tiny test model.<|im_end|>\n")
    injected = [t for t in body["tokens"] if t["end"] <= body["text"].index("<|im_start|>user")]
    assert {(t["role"], t["message"]) for t in injected} == {("system", None)}


def test_train_on_eot_false_leaves_end_of_turn_untrained(tiny_client):
    body = render(tiny_client, train_on_eot=False)
    assert_consistent(body)
    assert [trained_text(body, m) for m in ANSWERS] == list(ANSWERS.values())


def test_last_assistant_trains_only_the_last_answer(tiny_client):
    body = render(tiny_client, train_on="last_assistant")
    assert_consistent(body)
    assert (trained_text(body, 2), trained_text(body, 4)) == ("", "Rome.<|im_end|>")


def test_all_trains_every_token(tiny_client):
    body = render(tiny_client, train_on="all")
    assert body["labels"] == body["input_ids"]


def test_llama2_dialect_on_a_sentencepiece_tokenizer(tiny_client, tiny_llama2_tokenizer):
    body = render(tiny_client, tokenizer="tiny_llama2", dialect="llama2")
    assert_consistent(body)
    assert body["text"] == (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is the capital of France? [/INST] Paris. "
        "</s><s>[INST] And Italy? [/INST] Rome. </s>"
    )
    bos = [t for t in body["tokens"] if t["id"] == tiny_llama2_tokenizer.bos_token_id]
    assert [(t["message"], t["trained"]) for t in bos] == [(None, False)] * 2
    for message, answer in ANSWERS.items():
        assert trained_text(body, message).strip() == answer + " </s>"
    assert not any(t["trained"] for t in body["tokens"] if t["role"] in ("system", "user"))


def test_a_tokenizer_without_a_template_names_the_dialect_to_choose(tiny_client):
    body = {"messages": CHAT, "tokenizer": "tiny_llama2", "dialect": "tokenizer"}
    error = assert_error(tiny_client.post("/api/render", json=body), 422, "chat_template")
    assert error["field"] == "dialect"
