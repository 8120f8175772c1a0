"""Tokenizers for tests: the bundled real ones (offline assets) and the tiny committed fixtures.

Example: bundled("qwen3")("Hi").input_ids -> [13048]; tiny_folder("tiny_chatml") -> its Path
"""

from __future__ import annotations

import functools
from pathlib import Path

from transformers import AutoTokenizer

from app.settings import Settings
from tests.helpers.assets import require_asset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_CHATML = FIXTURES / "tiny_chatml"
TINY_LLAMA2 = FIXTURES / "tiny_llama2"


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
    require_asset(folder / "tokenizer.json", name)
    return AutoTokenizer.from_pretrained(str(folder))


def load_tiny(folder: Path):
    """A tiny committed tokenizer, loaded the way a user's local folder is (about 10 ms)."""
    return AutoTokenizer.from_pretrained(str(folder))
