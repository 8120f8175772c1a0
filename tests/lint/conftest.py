"""Real bundled tokenizers for the lint and inspect tests (offline assets, loaded once)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from app.settings import Settings


@functools.cache
def bundled(name: str):
    """A bundled tokenizer by name, shared across tests (never mutate it: use `fresh`)."""
    try:
        from app.tokenizers.registry import load_tokenizer
    except ImportError:
        return fresh(name)
    return load_tokenizer(name, Settings.from_env())


def fresh(name: str):
    """A private copy of a bundled tokenizer, safe to mutate (e.g. pad_token = eos_token)."""
    folder = Path(Settings.from_env().assets_dir) / name
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"bundled tokenizer {name} is not fetched (run `maskscope assets fetch`)")
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="session")
def tok():
    return bundled
