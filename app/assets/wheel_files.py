"""Builder for assets that are plain files inside a PyPI wheel: the template zoo's `.jinja` files.

Design concession: only the files the manifest names are copied (by exact member name), so a new
template in a later wheel is ignored until the manifest lists it, and a missing one fails the fetch.

Example: build_templates(TEMPLATE_SETS[0], trl_wheel, out, work) -> {"templates": 72}, with
         out/qwen3.jinja byte for byte trl/chat_templates/qwen3.jinja
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.assets.archives import ArchiveError, copy_from_zip
from app.assets.manifest import TemplateSet


def build_templates(
    template_set: TemplateSet, archive: Path, out: Path, work: Path
) -> dict[str, Any]:
    """Copy every template the set names out of the wheel; each must be UTF-8 text."""
    for name in template_set.files:
        target = out / name
        copy_from_zip(archive, template_set.folder + name, target)
        try:
            target.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArchiveError(f"{archive.name}: {name} is not UTF-8 text ({exc})") from None
    return {"templates": len(template_set.files)}
