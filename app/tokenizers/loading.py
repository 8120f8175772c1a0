"""Load a fast tokenizer from a folder that has already been vetted, without running its code.

Design concession: only folders holding `tokenizer.json` are accepted. Slow (Python) tokenizers
may need pickled vocabularies or remote code; refusing them keeps loading a pure-data operation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from app.errors import InputError

logger = logging.getLogger(__name__)

# Files that Python would have to unpickle (torch.load / pickle / joblib): never opened.
PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
_FIELD = "tokenizer"


def _refuse_unusable(folder: Path) -> None:
    if (folder / "tokenizer.json").is_file():
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise InputError(
            f"{folder.name} holds only pickle files ({', '.join(pickles[:5])}); Maskscope never "
            "unpickles: save the tokenizer with save_pretrained() so it has a tokenizer.json",
            field=_FIELD,
        )
    raise InputError(
        f"{folder.name} has no tokenizer.json (a fast tokenizer is required)", field=_FIELD
    )


def _refuse_remote_code(folder: Path) -> None:
    config_path = folder / "tokenizer_config.json"
    if not config_path.is_file():
        return
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(
            f"{folder.name}/tokenizer_config.json is not valid JSON: {exc}", field=_FIELD
        ) from exc
    if isinstance(config, dict) and config.get("auto_map"):
        raise InputError(
            f"{folder.name} needs custom code (auto_map in tokenizer_config.json); "
            "trust_remote_code is never honoured",
            field=_FIELD,
        )


def load_from_folder(folder: Path) -> PreTrainedTokenizerBase:
    """AutoTokenizer on a local folder, offline, without remote code or pickles.

    Example: load_from_folder(Path("~/.cache/maskscope/assets/qwen3")) -> Qwen2Tokenizer(...)
    """
    _refuse_unusable(folder)
    _refuse_remote_code(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True
        )
    except Exception as exc:  # the Rust tokenizers library raises bare Exception on bad JSON
        raise InputError(
            f"{folder.name} could not be loaded as a tokenizer: {exc}", field=_FIELD
        ) from exc
    if not tokenizer.is_fast:
        raise InputError(f"{folder.name} did not load as a fast tokenizer", field=_FIELD)
    return tokenizer
