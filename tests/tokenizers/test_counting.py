"""counting: the worker's token count equals the server's encoding, specials and all."""

import pytest

from app.chat.encoding import encode_whole
from app.tokenizers.counting import count_tokens, snapshot_file
from app.tokenizers.registry import load_tokenizer

TEXTS = [
    "Hello world",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><s>[INST] Ünïcödé 日本語 🦙 [/INST]</s>" + " " * 5000,
]


@pytest.mark.parametrize("name", ["qwen3", "llama3", "llama2", "gemma3"])
def test_the_count_is_the_servers_encoding_length(name, settings):
    tokenizer = load_tokenizer(name, settings)
    path = snapshot_file(tokenizer)
    assert path is not None and snapshot_file(tokenizer) == path
    for text in TEXTS:
        assert count_tokens(path, text) == len(encode_whole(tokenizer, text).ids)
