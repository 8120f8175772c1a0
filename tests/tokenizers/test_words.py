"""words: ids from the word cache equal transformers' encoding of the whole text, for every
bundled tokenizer the cache accepts, on texts built to hit the cuts' edge cases."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from app.chat.encoding import encode_whole, tokenizer_info
from app.tokenizers import words as words_module
from app.tokenizers.counting import encode_pieces, snapshot_file
from app.tokenizers.words import WordCache, chunks, encodable, rust_config
from tests.helpers.tokenizers import bundled, fresh

CACHED = ["smollm2", "llama3", "qwen3", "gptoss", "deepseek_v3"]
WHOLE = ["llama2", "mistral", "gemma3"]  # SentencePiece-style: spaces are not cuts there
PIECES = [
    *"aZé你😀'\".,!?-_/\\\t\n\r 019",
    "  ",
    "   ",
    "\n ",
    " \n",
    "\r\n",
    " \t ",
    "'s",
    "'LL",
    "'re",
    "hello",
    " world",
    "12345",
    "ｆｕｌｌ",
    "こんにちは",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\u0085",
    "\u200b",
    "\u180e",
    "\ufeff",
    "\x1c",
    "\u0301",
    "e\u0301",
    "\U0001f44d\U0001f3fd",
]


def _specials(name: str) -> list[str]:
    return sorted(t.content for t in bundled(name).added_tokens_decoder.values())[:40]


def _texts(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(PIECES + _specials(name)), max_size=40).map("".join)


def _reference(name: str, text: str) -> list[int]:
    """transformers' own encoding, as apply_chat_template(tokenize=True) makes it."""
    return list(bundled(name).encode(text, add_special_tokens=False))


@pytest.mark.parametrize("name", CACHED)
def test_the_bundled_byte_level_tokenizers_get_a_cache(name):
    assert tokenizer_info(bundled(name)).words is not None


@pytest.mark.parametrize("name", WHOLE)
def test_tokenizers_whose_spaces_are_not_cuts_are_encoded_whole(name):
    assert tokenizer_info(bundled(name)).words is None


ANY_TEXT = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=6), st.just(" ")),
    max_size=30,
).map("".join)


@pytest.mark.parametrize("kind", ["edge cases", "any unicode"])
@pytest.mark.parametrize("name", CACHED)
def test_cached_ids_equal_transformers(name, kind):
    words = tokenizer_info(bundled(name)).words
    assert words is not None
    texts = _texts(name) if kind == "edge cases" else ANY_TEXT

    @settings(
        max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(text=texts)
    def check(text: str) -> None:
        want = _reference(name, text)
        assert words.ids(text) == want, (text, chunks(text))
        assert words.ids(text) == want  # and from the cache, once warm

    check()


@pytest.mark.parametrize("name", CACHED)
def test_a_batch_equals_its_texts_one_by_one(name):
    words = tokenizer_info(bundled(name)).words
    assert words is not None
    texts = ["Hi there", "", "   ", "a\n  b", "Hi there again", " x " * 50, "y" * 300]
    assert words.many(texts) == [_reference(name, t) for t in texts]


def test_chunks_cut_only_before_a_space_after_a_non_space():
    assert chunks("Hi  there.\n next") == ["Hi", "  there.\n next"]
    assert chunks("a b ") == ["a", " b", " "]
    assert chunks("") == []
    assert "".join(chunks("x\u200b y\t z")) == "x\u200b y\t z"
    assert chunks("x\u200b y\t z") == ["x\u200b y\t z"]


def test_every_whitespace_character_before_a_space_keeps_its_chunks_joined():
    spaces = [chr(i) for i in range(0x110000) if chr(i).isspace() and chr(i) != " "]
    assert spaces and all(re.fullmatch(f"[{words_module.WHITESPACE_ISH}]", c) for c in spaces)
    for c in spaces:
        assert chunks(f"a{c} b c") == [f"a{c} b", " c"]


def test_the_cache_is_bounded_and_keeps_no_long_chunk(monkeypatch):
    tokenizer = bundled("smollm2")
    backend = tokenizer.backend_tokenizer
    cache = WordCache.for_rust(backend)
    assert cache is not None
    monkeypatch.setattr(words_module, "WORDS_MAX", 50)
    texts = [" ".join(f"w{i}x{j}" for j in range(30)) for i in range(10)]
    for text in texts:
        assert cache.ids(text) == _reference("smollm2", text)
        assert len(cache._words) <= 50
    long = "z" * (words_module.CHUNK_MAX_CHARS + 1)
    assert cache.ids(long) == _reference("smollm2", long)
    assert long not in cache._words


def _config(name: str) -> dict:
    return json.loads(bundled(name).backend_tokenizer.to_str())


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["model"].update(dropout=0.1),
        lambda c: c.update(normalizer={"type": "Lowercase"}),
        lambda c: c["added_tokens"].append({"content": "a b", "lstrip": False, "rstrip": False}),
        lambda c: c["added_tokens"][0].update(rstrip=True),
        lambda c: c["added_tokens"][0].update(single_word=True),
        lambda c: c["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\S+\s?"),
        lambda c: c["pre_tokenizer"]["pretokenizers"][0].update(behavior="MergedWithNext"),
        lambda c: c["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space=True),
        lambda c: c.update(pre_tokenizer={"type": "Metaspace", "replacement": "_"}),
        lambda c: c["model"].update(type="Unigram"),
    ],
)
def test_a_tokenizer_outside_the_rule_gets_no_cache(change):
    config = copy.deepcopy(_config("qwen3"))
    assert encodable(config)
    change(config)
    assert not encodable(config)


@pytest.mark.parametrize("name", CACHED + WHOLE)
def test_the_config_read_from_the_rust_parts_is_the_tokenizer_json_s(name):
    full, parts = _config(name), rust_config(bundled(name).backend_tokenizer)
    assert parts["normalizer"] == full["normalizer"]
    assert parts["pre_tokenizer"] == full["pre_tokenizer"]
    assert parts["model"] == {k: full["model"][k] for k in ("type", "dropout")}
    flags = ("content", "single_word", "lstrip", "rstrip")
    assert parts["added_tokens"] == [{f: t[f] for f in flags} for t in full["added_tokens"]]
    assert encodable(parts) is encodable(full) is (name in CACHED)


def test_a_rust_tokenizer_changed_in_place_is_read_as_it_is_now():
    backend = fresh("qwen3").backend_tokenizer
    assert WordCache.for_rust(backend) is not None
    backend.normalizer = normalizers.Lowercase()
    assert rust_config(backend)["normalizer"] == {"type": "Lowercase"}
    assert WordCache.for_rust(backend) is None


def test_a_cache_whose_probes_disagree_is_refused():
    backend = bundled("smollm2").backend_tokenizer

    def wrong(texts: list[str]) -> list[list[int]]:  # a tokenizer that does not cut at spaces
        return [e.ids[:1] for e in backend.encode_batch_fast(texts, add_special_tokens=False)]

    assert WordCache.for_config(_config("smollm2"), wrong) is None


@pytest.mark.parametrize("name", ["smollm2", "qwen3"])
def test_the_server_and_the_worker_encode_alike(name):
    tokenizer = bundled(name)
    text = "<|im_start|>user\nHéllo  wörld\n  indented<|im_end|>\n" * 40
    cuts = [0, len(text) // 2]
    assert [i for ids in encode_pieces(snapshot_file(tokenizer), text, cuts) for i in ids] == (
        encode_whole(tokenizer, text).ids
    )
    assert encode_whole(tokenizer, text).ids == _reference(name, text)
    offsets = bundled(name)(text, add_special_tokens=False, return_offsets_mapping=True)
    assert encode_whole(tokenizer, text).offsets == [tuple(o) for o in offsets["offset_mapping"]]


def test_mostly_new_chunks_go_whole_and_a_sample_is_learned():
    cache = WordCache.for_rust(bundled("smollm2").backend_tokenizer)
    assert cache is not None
    cache._words.clear()
    texts = [" ".join(f"q{i}z{j}x" for j in range(100)) for i in range(30)]  # 3,000 new chunks
    assert cache.many(texts) == [_reference("smollm2", t) for t in texts]
    assert len(cache._words) == words_module.MISSES_WHOLE
    assert cache.many(texts) == [_reference("smollm2", t) for t in texts]
