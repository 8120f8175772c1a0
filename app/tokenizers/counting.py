"""Counting a rendering's tokens in the template worker, so the server never tokenizes a text
that is over the max_tokens setting (setting max_tokens).

An untrusted template can print up to max_render_chars characters (`{{ 'a ' * 1999999 }}`);
tokenizing that in the server costs seconds and hundreds of MB. The server writes its own
tokenizer (the Rust `backend_tokenizer`, added tokens included) to a private file once per
tokenizer object; the worker loads it from there and counts the rendering's tokens exactly, with
the same options as the server's encoding (no BOS/EOS added, special tokens parsed). The rule is
exact, so it never refuses a rendering that would fit max_tokens: a text of at most max_tokens
characters is not counted (tokenizing it in the server is cheap), a longer one is refused when
its count is over max_tokens.

Design concession: the count runs under the worker's wall-clock and memory limits, so a text
of millions of tokens (`{{ 'a ' * 1999999 }}`: 2M tokens, 4 s and over 512 MiB to encode) is
refused by those (render_timeout_ms, max_worker_memory_mb) rather than by the count; the first
count of a tokenizer in a fresh worker pays for loading it (about 0.3 s for Qwen's 150k vocab).
A `max_length` of at most max_tokens accepts any length, so then the server still counts.

Example: count_tokens(snapshot_file(qwen), "Hello world") -> 2
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer as RustTokenizer

from app.tokenizers.words import WordCache

_files: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_folder: list[str] = []
_loaded: OrderedDict[str, RustTokenizer] = OrderedDict()
_LOADED_MAX = 4  # tokenizers a worker keeps loaded (each is tens of MB)
# Each loaded tokenizer's word cache (None where it would not be exact; see app.tokenizers.words).
_words: dict[str, WordCache | None] = {}


def _private_folder() -> str:
    if not _folder:
        folder = tempfile.mkdtemp(prefix="maskscope-tokenizers-")
        atexit.register(shutil.rmtree, folder, True)
        _folder.append(folder)
    return _folder[0]


def snapshot_file(tokenizer: Any) -> str | None:
    """The file holding `tokenizer`'s Rust tokenizer as JSON (written once per tokenizer object;
    None for a tokenizer without one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    with _lock:
        try:
            return _files[tokenizer]
        except (KeyError, TypeError):
            pass
        data = backend.to_str().encode("utf-8")
        path = os.path.join(_private_folder(), hashlib.sha256(data).hexdigest()[:32] + ".json")
        if not os.path.exists(path):
            with open(path + ".part", "wb") as out:
                out.write(data)
            os.replace(path + ".part", path)
        with contextlib.suppress(TypeError):
            _files[tokenizer] = path
        return path


def count_tokens(path: str, text: str) -> int:
    """Worker side: how many tokens the server's encoding of `text` will have."""
    return len(encode_pieces(path, text, [0])[0])


def encode_pieces(path: str, text: str, cuts: Sequence[int]) -> list[list[int]]:
    """Worker side: the server's ids of `text` cut at `cuts` (start offsets, the first 0; see
    app.chat.encoding.cut_points), one list per piece, encoded in one parallel call. The
    server derives the offsets from them instead of tokenizing the text a second time.

    Example (smollm2): encode_pieces(path, "Hi<|im_end|>", [0]) -> [[26843, 2]]
    """
    bounds = [*cuts, len(text)]
    parts = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    tokenizer = _tokenizer(path)
    words = _words[path]
    if words is not None:
        return words.many(parts)
    encodings = tokenizer.encode_batch_fast(parts, add_special_tokens=False)
    return [enc.ids for enc in encodings]


def _tokenizer(path: str) -> RustTokenizer:
    tokenizer = _loaded.get(path)
    if tokenizer is None:
        tokenizer = RustTokenizer.from_file(path)
        tokenizer.encode_special_tokens = False  # specials parsed, as the server encodes
        _loaded[path] = tokenizer
        _words[path] = WordCache.for_rust(tokenizer)
        while len(_loaded) > _LOADED_MAX:
            _words.pop(_loaded.popitem(last=False)[0], None)
    _loaded.move_to_end(path)
    return tokenizer
