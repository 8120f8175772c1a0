"""The template zoo: real chat templates as TRL and axolotl ship them, by name.

A zoo name is "<project>/<file stem>": "trl/qwen3", "trl/qwen3_training", "axolotl/llama4". TRL
ships some templates twice: the original and a `*_training` twin with `{% generation %}` tags.

Design concession: the names come from the manifest (known without any download, so tests can be
parametrized before a fetch); only `zoo_templates` looks at the disk, and it lists just the sets
that are installed and verified.

Example: training_twin("trl/qwen3") -> "trl/qwen3_training"; training_twin("axolotl/qwen3") -> None
"""

from __future__ import annotations

from pathlib import Path

from app.assets.manifest import TEMPLATE_SETS, get_asset
from app.assets.store import asset_path, check_asset

TWIN_SUFFIX = "_training"


def zoo_names() -> list[str]:
    """Every template the manifest pins, TRL's first: ["trl/cohere", ..., "axolotl/qwen_25"]."""
    return [f"{s.project}/{name}" for s in TEMPLATE_SETS for name in s.names]


def zoo_templates(assets_dir: Path) -> dict[str, Path]:
    """The installed, verified zoo templates by name, e.g. {"trl/qwen3": .../qwen3.jinja}."""
    found: dict[str, Path] = {}
    for template_set in TEMPLATE_SETS:
        if not check_asset(get_asset(template_set.asset), assets_dir).ok:
            continue
        folder = asset_path(assets_dir, template_set.asset)
        for name, file in zip(template_set.names, template_set.files, strict=True):
            found[f"{template_set.project}/{name}"] = folder / file
    return found


_NAMES = frozenset(zoo_names())


def training_twin(name: str) -> str | None:
    """The zoo's `*_training` twin of a template (None for a twin itself, or when none ships)."""
    if name.endswith(TWIN_SUFFIX):
        return None
    twin = name + TWIN_SUFFIX
    return twin if twin in _NAMES else None
