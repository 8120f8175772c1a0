"""Tokenizers by reference: a bundled asset name, a folder under tokenizer_roots, or a Hub id.

`load_tokenizer` is the one way the product gets a tokenizer. Loaded tokenizers are kept in an
in-process LRU (setting tokenizer_cache_size) keyed by what was loaded, so a re-fetched asset or an
edited local folder is picked up. Design concession: bundled assets are re-verified (sha256,
memoised on file identity) on every call, so availability is always truthful at little cost.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from app.assets.manifest import TOKENIZER_FILES, TOKENIZER_NAMES, get_asset
from app.assets.store import check_asset
from app.assets.zoo import zoo_templates
from app.errors import InputError, UnavailableError
from app.settings import Settings
from app.tokenizers import hub, paths
from app.tokenizers.loading import load_from_folder, refuse_unknown_patterns, tokenizer_patterns

_cache: OrderedDict[tuple[str, ...], PreTrainedTokenizerBase] = OrderedDict()
_cache_lock = threading.Lock()


def bundled_names() -> list[str]:
    return list(TOKENIZER_NAMES)


def _recall(key: tuple[str, ...]) -> PreTrainedTokenizerBase | None:
    """The cached tokenizer for `key`, marked most recently used so eviction spares it."""
    with _cache_lock:
        if key not in _cache:
            return None
        _cache.move_to_end(key)
        return _cache[key]


def _cached(
    key: tuple[str, ...], folder: Path, size: int, trusted: set[str] | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer in `folder`, loaded once; with `trusted`, only if its regexes are those."""
    tokenizer = _recall(key)
    if tokenizer is not None:
        return tokenizer
    if trusted is not None:
        refuse_unknown_patterns(folder, trusted)
    tokenizer = load_from_folder(folder)
    with _cache_lock:
        _cache[key] = tokenizer
        while len(_cache) > max(size, 1):
            _cache.popitem(last=False)
    return tokenizer


def _bundled_key(name: str, settings: Settings) -> tuple[tuple[str, ...], Path]:
    asset = get_asset(name)
    state = check_asset(asset, settings.assets_dir, only=TOKENIZER_FILES)
    if not state.ok:
        raise UnavailableError(
            f"tokenizer {name} is unavailable: {state.problem}", field="tokenizer"
        )
    folder = settings.assets_dir / name
    return ("bundled", str(folder), state.marker["files"]["tokenizer.json"]), folder


def _attach_template(tokenizer: PreTrainedTokenizerBase, name: str, settings: Settings) -> None:
    """Give a bundled tokenizer that ships no chat template the one its project publishes (the
    manifest names it in the template zoo), once the zoo is installed."""
    zoo_name = get_asset(name).chat_template
    if zoo_name is None or tokenizer.chat_template:
        return
    path = zoo_templates(settings.assets_dir).get(zoo_name)
    if path is not None:
        tokenizer.chat_template = path.read_text(encoding="utf-8")


def _local_key(folder: Path) -> tuple[str, ...]:
    config = folder / "tokenizer.json"
    stamp = config.stat().st_mtime_ns if config.exists() else 0
    return ("local", str(folder), str(stamp))


def load_tokenizer(
    ref: str, settings: Settings, *, trust_remote_code: Any = False
) -> PreTrainedTokenizerBase:
    """A fast tokenizer for `ref`; never runs remote code, never unpickles.

    Example: load_tokenizer("smollm2", settings)("Hi").input_ids -> [26843]
    """
    if trust_remote_code:
        raise InputError(
            "trust_remote_code is never honoured: use a tokenizer with a tokenizer.json",
            field="trust_remote_code",
        )
    if not isinstance(ref, str) or not ref.strip():
        raise InputError("tokenizer must be a non-empty name, folder or Hub id", field="tokenizer")
    if "\x00" in ref:
        raise InputError("tokenizer reference contains a NUL byte", field="tokenizer")
    size = settings.tokenizer_cache_size
    if ref in TOKENIZER_NAMES:
        key, folder = _bundled_key(ref, settings)
        tokenizer = _cached(key, folder, size)
        _attach_template(tokenizer, ref, settings)
        return tokenizer
    local = paths.resolve_local(
        ref, settings.tokenizer_roots, must_exist=paths.looks_like_path(ref)
    )
    if local is not None:
        return _cached(_local_key(local), local, size, _trusted_patterns(settings))
    if hub.is_hub_id(ref):
        return _load_hub(ref, settings)
    raise InputError(
        f"unknown tokenizer {ref!r}: use a bundled name "
        f"({', '.join(TOKENIZER_NAMES)}), a folder under tokenizer_roots, or a Hub "
        "id like owner/name",
        field="tokenizer",
    )


def _load_hub(ref: str, settings: Settings) -> PreTrainedTokenizerBase:
    if not settings.allow_hub:
        raise UnavailableError(
            f"Hub ids are disabled by the allow_hub setting; bundled "
            f"tokenizers: {', '.join(TOKENIZER_NAMES)}",
            field="tokenizer",
            setting="allow_hub",
        )
    cached = _recall(("hub", ref))
    if cached is not None:
        return cached
    folder = hub.download_tokenizer_files(ref, bundled_names())
    try:
        return _cached(
            ("hub", ref), folder, settings.tokenizer_cache_size, _trusted_patterns(settings)
        )
    except InputError as exc:
        # The snapshot folder is named by its revision hash: name the Hub id instead.
        exc.message = exc.message.replace(folder.name, ref, 1)
        exc.args = (exc.message,)
        raise


def _trusted_patterns(settings: Settings) -> set[str] | None:
    """The regexes a local or Hub tokenizer may run: those of the bundled tokenizers (None: any,
    with the allow_tokenizer_regex setting)."""
    return None if settings.allow_tokenizer_regex else set(_bundled_patterns(settings.assets_dir))


@functools.cache
def _bundled_patterns(assets_dir: Path) -> frozenset[str]:
    """Every regex the installed bundled tokenizers run (read once: their files are pinned)."""
    found: set[str] = set()
    for name in TOKENIZER_NAMES:
        found |= tokenizer_patterns(assets_dir / name / "tokenizer.json", trusted_file=True)
    return frozenset(found)


def _bundled_entry(name: str, settings: Settings) -> dict[str, Any]:
    asset = get_asset(name)
    state = check_asset(asset, settings.assets_dir, only=TOKENIZER_FILES)
    info = state.marker.get("info", {}) if state.ok else {}
    return {
        "name": name,
        "available": state.ok,
        "source": "bundled",
        "vocab_size": info.get("vocab_size"),
        "has_chat_template": info.get("has_chat_template")
        or (
            asset.chat_template is not None
            and asset.chat_template in zoo_templates(settings.assets_dir)
        ),
        "origin": f"{asset.source.registry}:{asset.source.spec}",
        "description": asset.description,
        "problem": state.problem,
    }


def _local_entries(settings: Settings) -> list[dict[str, Any]]:
    entries = []
    for root in settings.tokenizer_roots:
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if not (child / "tokenizer.json").is_file():
                continue
            entry = {
                "name": str(child),
                "available": True,
                "source": "local",
                "vocab_size": None,
                "has_chat_template": None,
                "origin": str(child),
                "description": None,
                "problem": None,
            }
            try:
                tokenizer = load_tokenizer(str(child), settings)
                entry.update(
                    vocab_size=len(tokenizer), has_chat_template=bool(tokenizer.chat_template)
                )
            except (InputError, UnavailableError) as exc:
                entry.update(available=False, problem=exc.message)
            entries.append(entry)
    return entries


def list_tokenizers(settings: Settings) -> list[dict[str, Any]]:
    """Every bundled tokenizer (available or not, with the fix) and every local folder found."""
    return [_bundled_entry(n, settings) for n in TOKENIZER_NAMES] + _local_entries(settings)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
