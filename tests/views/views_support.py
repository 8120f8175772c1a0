"""Real bundled tokenizers and renderings for the view tests (offline assets, loaded once)."""

from __future__ import annotations

import functools

import pytest

from app.chat.messages import Message
from app.chat.render import RenderOptions, render
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


@functools.cache
def bundled(name: str):
    return load_tokenizer(name, Settings.from_env())


@pytest.fixture(scope="session")
def tok():
    return bundled


@pytest.fixture(scope="session")
def rendered():
    """render(messages, dialect, tokenizer name) through the real engine."""
    def run(messages: list[tuple[str, str]], dialect: str, tokenizer: str, **options):
        conversation = [Message(role, content) for role, content in messages]
        return render(conversation, dialect, bundled(tokenizer), RenderOptions(**options))
    return run
