"""Tiny random causal LMs for fast training tests (real transformers models, random weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SMOLLM2 = Path.home() / ".cache/maskscope/assets/smollm2"


def tiny_model(vocab: int = 96, attn: str = "sdpa", seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    config._attn_implementation = attn
    return LlamaForCausalLM(config).eval()


def random_examples(n: int, vocab: int = 96, seed: int = 0) -> list[dict[str, list[int]]]:
    """Variable-length sequences; the second half of each is 'assistant' (trained)."""
    gen = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(n):
        length = int(torch.randint(4, 40, (1,), generator=gen))
        ids = torch.randint(1, vocab, (length,), generator=gen).tolist()
        cut = length // 2
        examples.append({"input_ids": ids, "labels": [-100] * cut + ids[cut:]})
    return examples


def save_tiny_model(folder: Path) -> Path:
    """A random 2-layer Llama with SmolLM2's real tokenizer (and chat template), as safetensors."""
    model = tiny_model(vocab=49152)
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = 1, 2, 2
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(SMOLLM2 / name, folder / name)
    return folder
