"""Load a fast tokenizer from a folder that has already been vetted, without running its code.

Design concession: only folders holding `tokenizer.json` are accepted. Slow (Python) tokenizers
may need pickled vocabularies or remote code; refusing them keeps loading a pure-data operation.
Likewise a tokenizer's own regexes are code that runs unbounded in this process: a local or Hub
tokenizer may only use the regexes the bundled (pinned) tokenizers use, unless trusted by setting.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

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


def tokenizer_patterns(path: Path, *, trusted_file: bool = False) -> set[str]:
    """Every regex a tokenizer.json's normalizer and pre-tokenizer run (Split, Replace, ...).

    A `trusted_file` (a pinned bundled asset) is not parsed whole: only the two values, found by
    their keys, which saves seconds on a 30 MB vocabulary.
    Example: Qwen3's tokenizer.json -> {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}..."}
    """
    try:
        text = path.read_text(encoding="utf-8")
        config = _parts(text) if trusted_file else json.loads(text)
    except (OSError, ValueError):
        return set()  # loading it reports the problem
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("Regex"), str):
                found.add(node["Regex"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if isinstance(config, dict):
        walk([config.get("normalizer"), config.get("pre_tokenizer")])
    return found


def _parts(text: str) -> dict[str, Any]:
    decoder = json.JSONDecoder()
    parts: dict[str, Any] = {}
    for key in ("normalizer", "pre_tokenizer"):
        at = text.find(f'"{key}":')
        if at >= 0:
            start = at + len(key) + 3
            while text[start].isspace():
                start += 1
            parts[key] = decoder.raw_decode(text, start)[0]
    return parts


def refuse_unknown_patterns(folder: Path, trusted: set[str]) -> None:
    """Refuse a tokenizer whose regexes are not all `trusted` ones: Oniguruma runs them in this
    process, where a backtracking one (`(a+)+b`) can neither be interrupted nor killed, and its
    retry limit aborts with a panic that no handler catches."""
    unknown = sorted(tokenizer_patterns(folder / "tokenizer.json") - trusted)
    if unknown:
        raise InputError(
            f"{folder.name}'s tokenizer.json runs a regex no bundled tokenizer runs "
            f"({unknown[0][:60]!r}); an untrusted regex could stall the server, so only the "
            "bundled tokenizers' regexes are accepted (allow_tokenizer_regex setting, for "
            "tokenizers you trust)",
            field=_FIELD,
            setting="allow_tokenizer_regex",
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
