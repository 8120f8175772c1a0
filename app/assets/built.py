"""Reopen a tokenizer that a builder has just written, as the product will load it: fast, offline.

Design concession: this is not app.tokenizers' vetted loader (pickle and remote-code refusals,
allowed roots); it opens only folders the fetcher itself built from pinned, sha256-checked archives.
Keeping it here lets assets sit below app.tokenizers, whose registry reads the manifest and store.

Example: load_built_tokenizer(scratch / "out")("Hi").input_ids -> [1, 6324]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.assets.archives import ArchiveError


def load_built_tokenizer(folder: Path) -> Any:
    """AutoTokenizer on a freshly built folder; ArchiveError unless it is a fast tokenizer."""
    # Imported here: transformers pulls in torch (seconds), which `assets list` never needs.
    from transformers import AutoTokenizer

    if not (folder / "tokenizer.json").is_file():
        raise ArchiveError(f"the built folder {folder.name} has no tokenizer.json")
    tokenizer = AutoTokenizer.from_pretrained(
        str(folder), trust_remote_code=False, local_files_only=True
    )
    if not tokenizer.is_fast:
        raise ArchiveError(f"the built folder {folder.name} did not load as a fast tokenizer")
    return tokenizer
