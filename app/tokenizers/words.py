"""Exact token ids a word at a time, from a cache, for tokenizers where that equals encoding the
whole text: the same ids as the Rust tokenizer at a fraction of its per-call cost.

A text is cut into chunks before every space whose previous character is not whitespace
(" *[^ ]+": "Hi  there." -> "Hi", "  there."). For the tokenizers accepted here each such cut is
also a cut of the Rust pipeline, so the ids of the text are the ids of its chunks, each encoded
alone, joined; repeated chunks (words, mostly) are looked up instead of encoded:
- added tokens (split off first) never contain a space and strip no neighbouring whitespace, so
  none spans a cut;
- the normalizer is none or NFC: a space never composes with what precedes it;
- every pre-tokenizer step is a verified regex split in isolation (or the GPT-2 byte-level
  regex, or digits). A cutting one (`CUTTING_PATTERNS`) has alternatives that hold only
  whitespace or a space only as their first character, and matches any space: so no piece holds
  both a non-whitespace character and the space after it, a piece ends at the cut, the scan
  starts afresh there (no regex looks behind), and a lookahead at a chunk's end sees the end of
  text where the whole text has a space, which `(?!\\S)` treats alike. The others never match a
  space (`SPACELESS_PATTERNS`), so they add no cut but the ones a cutting step makes;
- the model is BPE without dropout, which encodes each piece on its own.
A text holding a whitespace character before a space (" \\n  indented") keeps those chunks joined.

Design concession: only byte-level BPE tokenizers with the verified regexes take this path (the
bundled GPT-2, Llama 3, Qwen, gpt-oss and DeepSeek-V3 families); others, and any tokenizer whose
probe texts disagree with the Rust encoding, are encoded whole as before. The cache holds at most
`WORDS_MAX` chunks of at most `CHUNK_MAX_CHARS` characters and is emptied when full. A call whose
chunks are mostly new (random identifiers, a language not seen yet) encodes its texts whole, as
one by one they would cost about twice as much, and learns a sample of them.

Example: WordCache.for_config(json.loads(backend.to_str()), encode_batch).ids("Hi there")
         -> [26843, 2120] (smollm2), the ids of "Hi" then of " there"
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

# Split patterns checked by hand: every alternative holds only whitespace or has a space only
# first, and `\s+` matches any space, so each cuts at every cut of `chunks` (Llama 3, Qwen 2/3,
# gpt-oss/o200k, DeepSeek-V3's last); the GPT-2 regex of ByteLevel(use_regex=True) is one too.
CUTTING_PATTERNS = frozenset(
    {
        (
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
            r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ),
        (
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+"
        ),
        (
            r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t"
            r"|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}"
            r"\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*"
            r"[\r\n]+|\s+(?!\S)|\s+"
        ),
        (
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"
            "\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
        ),
    }
)
# Split patterns whose matches never hold a space (DeepSeek-V3's digit and kana/CJK runs): they
# may leave a cut of `chunks` uncut, which a cutting step after or before them makes.
SPACELESS_PATTERNS = frozenset({r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"})
WORDS_MAX = 100_000
CHUNK_MAX_CHARS = 64
# Above this many new chunks in one call, making up over this share of its chunks, the texts
# are encoded whole: a new chunk costs the Rust tokenizer about twice its share of the whole
# text, a known one almost nothing. Then this many of the new chunks are learned (a long
# conversation rendered again, as the playground does on every edit, is then mostly known).
MISSES_WHOLE = 2048
MISS_SHARE_WHOLE = 0.45
_CHUNK = re.compile(r" *[^ ]+| +")
# A character that is, or that some regex engine may take for, whitespace, before a space: the
# cut there is not proven, so the two chunks stay one. Every str.isspace() character but the
# space, and the old Unicode's ones: one character class, searched several times faster than
# an alternation.
WHITESPACE_ISH = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u180e\u200b\u200c\u200d\u2060\ufeff"
)
_UNSAFE = re.compile(f"[{WHITESPACE_ISH}] ")
_WHITESPACE_ISH = re.compile(f"[\\s{WHITESPACE_ISH}]$")
PROBES = (
    "Hello world, it's   a   test!\n\n  indented\tline  \n",
    "x = [1, 2, 3]  # 12345 678\r\n  def f():\n\treturn 'ok'  ",
    "naïve café 你好世界 こんにちは 😀 ＡＢＣ \u00a0nbsp \u3000wide \u200b zero \u180e mongol ",
    "e\u0301 \u0301accent  ' s 're   'LL \"quote\" (paren) [brackets] --dash-- ...",
)


def encodable(config: dict[str, Any]) -> bool:
    """Whether the tokenizer (its tokenizer.json as a dict) meets the rule of the module."""
    model = config.get("model") or {}
    if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
        return False
    if not _plain_normalizer(config.get("normalizer")):
        return False
    for token in config.get("added_tokens") or []:
        content = str(token.get("content", ""))
        if " " in content or token.get("lstrip") or token.get("rstrip"):
            return False
        if token.get("single_word"):
            return False
    return _verified_pre_tokenizer(config.get("pre_tokenizer"))


def rust_config(backend: Any) -> dict[str, Any]:
    """What `encodable` reads of a Rust tokenizer's tokenizer.json, made from its parts: each
    part's own JSON, the model's type and dropout, the added tokens' flags. (The whole JSON,
    vocabulary and merges, takes half a second to write and read for a 150k vocabulary, which
    a template worker would pay on its first count, inside the render's time limit.)"""

    def own_json(part: Any) -> Any:
        return None if part is None else json.loads(part.__getstate__())

    model = backend.model
    added = backend.get_added_tokens_decoder().values()
    flags = ("content", "single_word", "lstrip", "rstrip")
    return {
        "model": {"type": type(model).__name__, "dropout": getattr(model, "dropout", None)},
        "normalizer": own_json(backend.normalizer),
        "pre_tokenizer": own_json(backend.pre_tokenizer),
        "added_tokens": [{flag: getattr(token, flag) for flag in flags} for token in added],
    }


def _plain_normalizer(normalizer: dict[str, Any] | None) -> bool:
    if normalizer is None or normalizer.get("type") == "NFC":
        return True
    return normalizer.get("type") == "Sequence" and all(
        _plain_normalizer(n) for n in normalizer.get("normalizers", [])
    )


def _verified_pre_tokenizer(step: dict[str, Any] | None) -> bool:
    """Every step cuts at each cut of `chunks` or matches no space, and one step cuts: then the
    pieces of the whole text are the pieces of its chunks (see the module docstring)."""
    if step is None:
        return False
    steps = step.get("pretokenizers") if step.get("type") == "Sequence" else [step]
    if not steps or not isinstance(steps, list):
        return False
    cutting = byte_level = False
    for item in steps:
        kind = item.get("type")
        pattern = (item.get("pattern") or {}).get("Regex") if kind == "Split" else None
        if kind == "ByteLevel" and not item.get("add_prefix_space"):
            byte_level = True
            cutting = cutting or bool(item.get("use_regex", True))
        elif kind == "Split" and item.get("behavior") == "Isolated" and not item.get("invert"):
            if pattern in CUTTING_PATTERNS:
                cutting = True
            elif pattern not in SPACELESS_PATTERNS:
                return False
        elif kind != "Digits":  # Digits cuts between digits only
            return False
    # Without a byte-level step the vocabulary is not the byte-level one this path is for.
    return cutting and byte_level


def chunks(text: str) -> list[str]:
    """The text cut before each space whose previous character is surely not whitespace.

    Example: "Hi  there.\\n next" -> ["Hi", "  there.\\n next"]
    """
    found: list[str] = _CHUNK.findall(text)
    if _UNSAFE.search(text) is None:
        return found
    joined: list[str] = []
    for chunk in found:
        if joined and _WHITESPACE_ISH.search(joined[-1]):
            joined[-1] += chunk
        else:
            joined.append(chunk)
    return joined


class WordCache:
    """The ids of texts from cached chunk ids (see the module docstring); misses are encoded by
    `encode_batch` (the Rust tokenizer, no special tokens added, special-token text parsed)."""

    def __init__(self, encode_batch: Callable[[list[str]], list[list[int]]]) -> None:
        self._encode = encode_batch
        self._words: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(
        cls, config: dict[str, Any], encode_batch: Callable[[list[str]], list[list[int]]]
    ) -> WordCache | None:
        """A cache for the tokenizer, or None where the rule does not hold or a probe text's ids
        differ from the whole text's."""
        if not encodable(config):
            return None
        cache = cls(encode_batch)
        if cache.many(list(PROBES)) != encode_batch(list(PROBES)):
            return None
        return cache

    @classmethod
    def for_rust(
        cls, backend: Any, encode_batch: Callable[[list[str]], list[list[int]]] | None = None
    ) -> WordCache | None:
        """`for_config` of a Rust `tokenizers.Tokenizer`; its misses go to `encode_batch`, by
        default the tokenizer itself (whose special-token text must then be parsed)."""

        def encode_fast(texts: list[str]) -> list[list[int]]:
            return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]

        try:
            config = rust_config(backend)
        except (ValueError, AttributeError, TypeError):
            return None
        return cls.for_config(config, encode_batch or encode_fast)

    def ids(self, text: str) -> list[int]:
        """The ids of `text`, as the Rust tokenizer encodes it whole."""
        return self.many([text])[0]

    def many(self, texts: Sequence[str]) -> list[list[int]]:
        """`ids` of every text; the misses of all texts go to the tokenizer in one call."""
        out: list[list[int]] = []
        pending: list[tuple[int, list[str]]] = []
        with self._lock:
            words = self._words
            for text in texts:
                parts = chunks(text)
                got = list(map(words.get, parts))
                if None in got:
                    pending.append((len(out), parts))
                    out.append([])
                else:
                    out.append(list(chain.from_iterable(got)))  # type: ignore[arg-type]
            if pending:
                self._fill(texts, out, pending)
        return out

    def _fill(
        self, texts: Sequence[str], out: list[list[int]], pending: list[tuple[int, list[str]]]
    ) -> None:
        """The ids of the texts whose chunks were not all known. Mostly new chunks (random
        identifiers, hashes, a language the cache has not seen) cost more one by one than their
        texts whole: then the texts go to the tokenizer whole, and only a sample of the new
        chunks is learned, so the cache still warms up."""
        words = self._words
        missing = list(dict.fromkeys(p for _, parts in pending for p in parts if p not in words))
        chunk_count = sum(len(parts) for _, parts in pending)
        if len(missing) > MISSES_WHOLE and len(missing) > MISS_SHARE_WHOLE * chunk_count:
            for (k, _), ids in zip(
                pending, self._encode([texts[k] for k, _ in pending]), strict=True
            ):
                out[k] = ids
            sample = missing[:MISSES_WHOLE]
            self._learn(dict(zip(sample, self._encode(sample), strict=True)))
            return
        fresh = dict(zip(missing, self._encode(missing), strict=True))
        for k, parts in pending:
            out[k] = list(chain.from_iterable(fresh[p] if p in fresh else words[p] for p in parts))
        self._learn(fresh)

    def _learn(self, fresh: dict[str, list[int]]) -> None:
        """Keep the short chunks just encoded (the cache is emptied when full)."""
        if len(self._words) + len(fresh) > WORDS_MAX:
            self._words.clear()
        # Tuples of ints: the collector stops tracking them, so a full cache costs it nothing.
        self._words.update(
            (part, tuple(ids)) for part, ids in fresh.items() if len(part) <= CHUNK_MAX_CHARS
        )
