"""What crosses the worker boundary: the reply's JSON, and the ids the worker computed while
counting a long rendering's tokens, which the server reuses instead of tokenizing again."""

from __future__ import annotations

import pytest

import app.dialects.jinja as jinja_dialect
from app.chat.encoding import cut_points, encode_whole, encoded_from_pieces, tokenizer_info
from app.chat.spec import RenderSpec
from app.service.render import render_messages
from app.settings import Settings
from app.templating.worker import decode_reply, encode_reply
from app.tokenizers.counting import encode_pieces, snapshot_file
from app.tokenizers.registry import load_tokenizer

TEXT = "".join(
    f"<|im_start|>{'user' if i % 2 else 'assistant'}\nTurn {i}: naïve café 日本語 🦙 \t "
    f"x = [{i}, 2]<|im_end|>\n<|eot_id|></s>"
    for i in range(400)
)


@pytest.mark.parametrize("name", ["smollm2", "qwen3", "llama3"])
def test_the_workers_pieces_give_the_servers_own_encoding(name, settings):
    tokenizer = load_tokenizer(name, settings)
    cuts = cut_points(TEXT, tokenizer_info(tokenizer).cut_texts)
    assert len(cuts) > 1  # the long text is encoded in pieces, in parallel
    pieces = encode_pieces(snapshot_file(tokenizer), TEXT, cuts)
    assert encoded_from_pieces(tokenizer, TEXT, cuts, pieces) == encode_whole(tokenizer, TEXT)


def test_ids_that_do_not_spell_the_text_are_not_used(settings):
    tokenizer = load_tokenizer("smollm2", settings)
    text = "<|im_start|>user\nHello<|im_end|>"
    ids = encode_whole(tokenizer, text).ids
    assert encoded_from_pieces(tokenizer, text, [0], [ids]) is not None
    assert encoded_from_pieces(tokenizer, text, [0], [ids[:-1]]) is None
    assert encoded_from_pieces(tokenizer, text, [0], [[-i for i in ids]]) is None
    assert encoded_from_pieces(tokenizer, text, [0], [[*ids[:-1], True]]) is None
    assert encoded_from_pieces(tokenizer, text, [0], [[*ids[:-1], 10**9]]) is None
    assert encoded_from_pieces(tokenizer, text, [0, 3], [ids]) is None
    assert encoded_from_pieces(tokenizer, text, [1], [ids]) is None


def test_a_tokenizer_without_byte_pieces_encodes_in_the_server(settings):
    tokenizer = load_tokenizer("llama2", settings)  # SentencePiece: offsets are not derived
    ids = encode_whole(tokenizer, "Hello").ids
    assert encoded_from_pieces(tokenizer, "Hello", [0], [ids]) is None


CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def test_a_long_custom_render_tokenizes_once_and_equals_the_servers_encoding(monkeypatch):
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"naïve turn {i} 🦙"}
        for i in range(300)
    ]
    spec = RenderSpec(tokenizer="smollm2", dialect="custom", template=CHATML)
    roomy = Settings.from_env()  # the text has fewer characters than max_tokens: not counted
    # More characters than max_tokens: counted. (A fresh worker loads the tokenizer first: a
    # loaded machine may take seconds, which is not what this test is about.)
    counted = Settings.from_env(max_tokens=6_000, render_timeout_ms=30_000)
    reference = render_messages(messages, spec, roomy).rendering
    assert len(reference.text) > counted.max_tokens > len(reference.input_ids)

    encoded: list[int] = []
    whole = jinja_dialect.encode_whole

    def spy(tokenizer, text):
        encoded.append(len(text))
        return whole(tokenizer, text)

    monkeypatch.setattr(jinja_dialect, "encode_whole", spy)
    rendering = render_messages(messages, spec, counted).rendering
    assert encoded == []  # the worker's ids were used
    assert rendering.input_ids == reference.input_ids
    assert rendering.labels == reference.labels
    assert list(rendering.tokens) == list(reference.tokens)


def test_replies_round_trip_including_lone_surrogates():
    reply = {"ok": {"text": "café 😀 \ud800 end", "regions": [(0, 3, 0), (3, 9, None)]}}
    assert decode_reply(encode_reply(reply)) == {
        "ok": {"text": "café 😀 \ud800 end", "regions": [[0, 3, 0], [3, 9, None]]}
    }
    plain = {"ok": {"text": "naïve", "ids": [1, 2]}}
    assert decode_reply(encode_reply(plain)) == plain
    with pytest.raises(ValueError):
        decode_reply(b"[1, 2]")
