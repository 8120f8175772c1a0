"""The compare page's facts about BOS and EOS mean what they say, checked against the ids."""

from __future__ import annotations

from app.chat.spec import RenderSpec
from app.service.render import render_messages
from app.views.compare import contiguous, facts

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]


def rendered(settings, tokenizer: str, dialect: str):
    return render_messages(MESSAGES, RenderSpec(tokenizer=tokenizer, dialect=dialect), settings)


def test_smollm2s_turn_opener_is_not_called_a_bos(settings):
    r = rendered(settings, "smollm2", "chatml")
    bos = r.tokenizer.bos_token_id
    opens = r.rendering.input_ids.count(bos)
    assert opens == 5 and r.tokenizer.bos_token == "<|im_start|>"
    said = facts(r.rendering, r.tokenizer)
    assert "no BOS token before the messages" in said
    assert "the BOS id `<|im_start|>` opens 5 turns" in said
    assert not any(f.startswith("BOS ") for f in said)


def test_llama2_has_one_bos_per_pair_and_an_eos_closing_each_answer(settings):
    r = rendered(settings, "llama2", "llama2")
    ids = r.rendering.input_ids
    bos_at = [i for i, x in enumerate(ids) if x == r.tokenizer.bos_token_id]
    said = facts(r.rendering, r.tokenizer)
    assert f"BOS `<s>` at {', '.join(map(str, bos_at))}" in said
    assert f"EOS `</s>` closes {ids.count(r.tokenizer.eos_token_id)} turns" in said
    assert "end of turn: `</s>`" in said


def test_contiguous_runs():
    assert contiguous([1, 2, 3, 7, 8]) == [(1, 4), (7, 9)]
    assert contiguous([]) == []


def test_a_custom_column_from_a_link_waits_while_the_others_align(client):
    query = (
        "/compare?v=1&role=user&content=Hi&role=assistant&content=Hello"
        "&target_tokenizer=qwen3&target_dialect=chatml&target_template="
        "&target_tokenizer=qwen3&target_dialect=custom&target_template=%7B%7B+1+%7D%7D"
    )
    html = client.get(query).text
    assert html.count('class="column"') == 2
    assert "data-pending" in html
    row = html.split('data-row="1"')[1].split("</tr>")[0]
    assert row.count("<td") == 2 and row.count('class="chips"') == 1


def test_the_conversation_as_one_jsonl_row_and_a_query_without_one(client):
    line = client.get("/fragments/conversation.jsonl?v=1&role=user&content=Hi")
    assert line.status_code == 200
    assert line.text == '{"messages": [{"role": "user", "content": "Hi"}]}\n'
    empty = client.get("/fragments/conversation.jsonl?v=1")
    assert empty.status_code == 422
    assert empty.json()["error"]["field"] == "messages"


def test_the_playgrounds_pair_is_the_first_column_when_carried(client):
    html = client.get(
        "/compare?v=1&tokenizer=qwen3&dialect=tokenizer&train_on_eot=on&role=user&content=Hi"
    ).text
    heads = html.split('class="column"')[1:]
    assert len(heads) == 4
    assert "<span>qwen3</span><small>tokenizer</small>" in heads[0]
    assert "<span>smollm2</span><small>chatml</small>" in heads[1]
    # Columns given in the query win.
    html = client.get(
        "/compare?v=1&tokenizer=qwen3&target_tokenizer=llama3&target_dialect=llama3"
    ).text
    assert html.count('class="column"') == 1
