"""Real bundled tokenizers and renderings for the view tests (offline assets, loaded once).

A plain module rather than a conftest.py: test modules elsewhere import names from `conftest`,
and a second conftest module in this tree could shadow theirs.
"""

from __future__ import annotations

import functools

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


@functools.cache
def tok(name: str):
    return load_tokenizer(name, Settings.from_env())


def rendered(messages: list[tuple[str, str]], dialect: str, tokenizer: str, **options):
    """render(messages, get_dialect(dialect), tokenizer name) through the real engine."""
    conversation = [Message(role, content) for role, content in messages]
    return render(conversation, get_dialect(dialect), tok(tokenizer), RenderSpec(**options))
