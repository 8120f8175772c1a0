"""Encoding: long texts cut before special tokens and encoded in parallel give exactly the ids and
offsets of one whole-string encode, for every bundled tokenizer."""

from __future__ import annotations

import pytest

from app.chat.encoding import (
    PARALLEL_MIN_CHARS,
    encode_many,
    encode_whole,
    text_starts,
    tokenizer_info,
)


def reference_encode(tok, text):
    """The Rust tokenizer's own whole-string encode with special-token text parsed, as the server
    encodes: a split_special_tokens=True call elsewhere leaves the shared tokenizer in the other
    mode (transformers does not reset it)."""
    tok.backend_tokenizer.encode_special_tokens = False
    return tok.backend_tokenizer.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("name", ["qwen3", "llama3", "gemma3", "mistral", "llama2", "smollm2"])
def test_parallel_encoding_equals_whole_string(tokenizers, name):
    tok = tokenizers(name)
    turns = [
        {"role": "user", "content": f"  question {i}: 你好 😀\n"}
        if i % 2 == 0
        else {"role": "assistant", "content": f"answer {i} ```x = {i}```"}
        for i in range(400)
    ]
    template = (
        "{{ bos_token or '' }}{% for m in messages %}<|im_start|>{{ m.role }}\n"
        "{{ m.content }}{{ eos_token }}\n{% endfor %}"
    )
    text = tok.apply_chat_template(turns, chat_template=template, tokenize=False)
    assert len(text) > PARALLEL_MIN_CHARS and tokenizer_info(tok).cut_texts
    whole = reference_encode(tok, text)
    got = encode_whole(tok, text)
    assert got.ids == whole.ids
    assert [tuple(o) for o in got.offsets] == [tuple(o) for o in whole.offsets]


def test_text_starts_give_split_characters_to_the_last_piece():
    assert text_starts([0, 0, 1]) == [0, 0, 1]
    assert text_starts([2, 3]) == [0, 3]
    assert text_starts([0, 5, 4, 6]) == [0, 5, 5, 6]  # never backwards
    assert text_starts([]) == []


@pytest.mark.parametrize("name", ["qwen3", "llama3", "smollm2"])
def test_offsets_derived_from_token_bytes_equal_the_tokenizers(tokenizers, name):
    """Byte-level tokenizers get their offsets from token bytes (cheaper than reading them back
    from Rust); they must be the Rust tokenizer's own, split characters and specials included."""
    tok = tokenizers(name)
    assert tokenizer_info(tok).pieces is not None
    texts = [
        "",
        "plain ascii words",
        "  héllo wörld  ",
        "你好，世界",
        "😀🎉 emoji",
        "e\u0301 a\u0308",
        "<|im_start|>user\nHi<|im_end|>\n",
        "tabs\t\tand\n\nnewlines ",
        "Ω≈ç√∫ 𝔘𝔫𝔦",
        "<|begin_of_text|><|start_header_id|>x<|end_header_id|>\n\n y<|eot_id|>",
    ]
    got = encode_many(tok, texts)
    for text, enc in zip(texts, got, strict=True):
        whole = reference_encode(tok, text)
        assert enc.ids == whole.ids, text
        assert enc.offsets == [tuple(o) for o in whole.offsets], text


def test_tokenizers_without_byte_pieces_still_encode_exactly(tokenizers):
    tok = tokenizers("gemma3")
    assert tokenizer_info(tok).pieces is None
    text = "<start_of_turn>user\n  héllo 😀<end_of_turn>\n"
    whole = reference_encode(tok, text)
    got = encode_whole(tok, text)
    assert got.ids == whole.ids and got.offsets == [tuple(o) for o in whole.offsets]
