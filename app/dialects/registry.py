"""Registry of dialects: the built-ins by slug, plus `tokenizer` and `custom` (Jinja templates).

Design concession: the registry is a plain dict built at import; adding a dialect means adding a
builder to app.dialects.builtin, not registering at run time.
"""

from __future__ import annotations

from typing import Any

from app.dialects.base import Dialect
from app.dialects.builtin import BUILTINS
from app.errors import InputError

DIALECTS: dict[str, Dialect] = {d.name: d for d in BUILTINS}
TEMPLATE_DIALECTS: dict[str, dict[str, Any]] = {
    "tokenizer": {
        "name": "tokenizer",
        "title": "Tokenizer's own template",
        "description": "The chat_template shipped with the tokenizer, rendered "
        "sandboxed exactly as apply_chat_template does.",
        "special_tokens": [],
        "roles": ["system", "user", "assistant", "tool"],
    },
    "custom": {
        "name": "custom",
        "title": "Custom Jinja template",
        "description": "A pasted Jinja chat template (the `template` field), rendered in a "
        "sandboxed, time-limited worker.",
        "special_tokens": [],
        "roles": ["system", "user", "assistant", "tool"],
    },
}


def list_dialects() -> list[dict[str, Any]]:
    """Every dialect: name, title, one-line description, special tokens, supported roles."""
    return [d.to_json() for d in DIALECTS.values()] + [dict(v) for v in TEMPLATE_DIALECTS.values()]


def dialect_names() -> list[str]:
    return [*DIALECTS, *TEMPLATE_DIALECTS]


def get_dialect(name: str) -> Dialect:
    """The built-in dialect `name`, or InputError listing the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise InputError(
            f"Unknown dialect {name!r}; choose one of {', '.join(dialect_names())}.",
            field="dialect",
        ) from None
