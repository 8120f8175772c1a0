"""Known templates: the chat templates TRL and axolotl ship (the template zoo), by name, so a
user can try a real template on any tokenizer ("load a known template" in the playground), and a
tokenizer's own template as the start of a custom one.

Example: known_template("trl/qwen3", settings)
         -> {"name": "trl/qwen3", "source": "{%- if tools %}..."}

Design concession: a tokenizer with several named templates gives its `default` one.
"""

from __future__ import annotations

from typing import Any

from app.assets.zoo import training_twin, zoo_names, zoo_templates
from app.errors import NotFoundError, UnavailableError
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer


def known_templates(settings: Settings) -> list[dict[str, Any]]:
    """Every zoo template, with whether it is installed here and its `*_training` twin."""
    installed = zoo_templates(settings.assets_dir)
    return [
        {
            "name": name,
            "project": name.split("/", 1)[0],
            "available": name in installed,
            "training_twin": training_twin(name),
        }
        for name in zoo_names()
    ]


def known_template(name: str, settings: Settings) -> dict[str, Any]:
    """One zoo template's source; 404 naming the known ones, 424 when not fetched."""
    if name not in zoo_names():
        raise NotFoundError(
            f"unknown template {name!r}: GET /api/templates lists the known ones "
            "(e.g. trl/qwen3, axolotl/llama4)",
            field="name",
        )
    path = zoo_templates(settings.assets_dir).get(name)
    if path is None:
        project = name.split("/", 1)[0]
        raise UnavailableError(
            f"template {name} is not fetched here: run `maskscope assets fetch "
            f"templates-{project}`",
            field="name",
        )
    return {"name": name, "source": path.read_text(encoding="utf-8")}


def tokenizer_template(name: str, settings: Settings) -> dict[str, Any]:
    """The chat template tokenizer `name` renders with (its `default` one when it has several);
    404 when it has none, so the custom box can start from it."""
    source = getattr(load_tokenizer(name, settings), "chat_template", None)
    if isinstance(source, dict):
        source = source.get("default")
    if not isinstance(source, str) or not source:
        raise NotFoundError(
            f"tokenizer {name!r} has no chat template of its own: start from a known template "
            "(GET /api/templates) instead",
            field="tokenizer",
        )
    return {"tokenizer": name, "source": source}
