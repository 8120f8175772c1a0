"""Hugging Face Hub ids: only the tokenizer's JSON files are downloaded, then loaded locally.

Design concession: `allow_patterns` keeps pickled weights and Python files off the disk entirely, so
a Hub tokenizer goes through the same pure-data loader as a local folder. The warm HF cache is tried
first, so an offline machine with a cached tokenizer still works.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.errors import UnavailableError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
]
TIMEOUT_S = 10.0


def is_hub_id(ref: str) -> bool:
    """Example: is_hub_id("Qwen/Qwen3-0.6B") -> True; is_hub_id("qwen3") -> False."""
    return bool(HUB_ID.match(ref)) and ".." not in ref


def download_tokenizer_files(ref: str, bundled: list[str]) -> Path:
    """A local snapshot folder holding the Hub repo's tokenizer files (cache first)."""
    # Imported here: only a Hub id needs the Hub client; bundled and local tokenizers never do.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref, allow_patterns=TOKENIZER_FILES, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    try:
        return Path(snapshot_download(ref, allow_patterns=TOKENIZER_FILES, etag_timeout=TIMEOUT_S))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise UnavailableError(
            f"the Hugging Face Hub tokenizer {ref} is not reachable from here and not in the "
            f"local HF cache ({reason}); bundled tokenizers work offline: {', '.join(bundled)}",
            field="tokenizer",
        ) from exc
