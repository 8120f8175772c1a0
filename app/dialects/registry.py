"""Registry of dialects: the built-ins by slug, plus `tokenizer` and `custom` (Jinja templates).

`get_dialect(name)` resolves a name to the object the engine renders with, so no other layer
branches on dialect names.

Example: get_dialect("llama3") -> BuiltinDialect(name="llama3", ...);
         get_dialect("custom") -> TemplateDialect(name="custom", ...)

Design concession: the registry is a plain dict built at import; adding a dialect means adding a
builder to app.dialects.builtin, not registering at run time.
"""

from __future__ import annotations

from typing import Any

from app.chat.layout import Dialect
from app.dialects.builtin import BUILTINS
from app.dialects.jinja import TemplateDialect
from app.errors import InputError

TEMPLATE_DIALECTS: tuple[TemplateDialect, ...] = (
    TemplateDialect(
        "tokenizer",
        "Tokenizer's own template",
        "The chat_template shipped with the tokenizer, rendered "
        "sandboxed exactly as apply_chat_template does.",
    ),
    TemplateDialect(
        "custom",
        "Custom Jinja template",
        "A pasted Jinja chat template (the `template` field), rendered in a "
        "sandboxed, time-limited worker.",
    ),
)
DIALECTS: dict[str, Dialect] = {d.name: d for d in BUILTINS}
DIALECTS.update((d.name, d) for d in TEMPLATE_DIALECTS)


def list_dialects() -> list[dict[str, Any]]:
    """Every dialect: name, title, one-line description, special tokens, supported roles."""
    return [d.to_json() for d in BUILTINS] + [d.to_json() for d in TEMPLATE_DIALECTS]


def dialect_names() -> list[str]:
    return list(DIALECTS)


def get_dialect(name: str) -> Dialect:
    """The dialect `name`, or InputError listing the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise InputError(
            f"Unknown dialect {name!r}; choose one of {', '.join(dialect_names())}.",
            field="dialect",
        ) from None
