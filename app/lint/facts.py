"""Facts about a tokenizer that several checks need (BOS, EOS, pad, special strings), cached.

Design concession: facts are computed once per tokenizer object and kept in a weak-keyed cache, so
linting 100k rows does not re-read the vocabulary; a tokenizer mutated after its first lint keeps
its old facts.
"""

from __future__ import annotations

import contextlib
import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

from app.chat.tokenizer import Tokenizer

_CACHE: weakref.WeakKeyDictionary[Any, TokenizerFacts] = weakref.WeakKeyDictionary()


@dataclass
class TokenizerFacts:
    """What the checks ask of a tokenizer, computed once.

    Example (qwen3): bos_id=None, eos_id=151645 ('<|im_end|>'), pad_id=151643 ('<|endoftext|>')
    """

    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    special_ids: frozenset[int]
    special_pattern: re.Pattern[str] | None
    special_by_text: dict[str, int]
    # Unicode normal forms the tokenizer's normalizer applies, in order (Qwen's: ("NFC",)).
    unicode_forms: tuple[NormalForm, ...] = ()
    _encode_cache: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)

    def encode(self, tokenizer: Tokenizer, text: str) -> tuple[int, ...]:
        """Tokenize `text` alone without BOS/EOS (cached: marker strings repeat)."""
        ids = self._encode_cache.get(text)
        if ids is None:
            ids = tuple(tokenizer.encode(text, add_special_tokens=False))
            if len(self._encode_cache) < 4096:
                self._encode_cache[text] = ids
        return ids

    def token_text(self, tokenizer: Tokenizer, token_id: int | None) -> str:
        """The token's vocabulary entry, quoted (cached: the same few ids are named per row)."""
        if token_id is None:
            return "none"
        name = self._names.get(token_id)
        if name is None:
            name = self._names[token_id] = repr(tokenizer.convert_ids_to_tokens(token_id))
        return name


def facts_for(tokenizer: Tokenizer) -> TokenizerFacts:
    """The cached facts for `tokenizer`."""
    try:
        return _CACHE[tokenizer]
    except (KeyError, TypeError):
        pass
    facts = _compute(tokenizer)
    with contextlib.suppress(TypeError):
        _CACHE[tokenizer] = facts
    return facts


def _compute(tokenizer: Tokenizer) -> TokenizerFacts:
    special: dict[str, int] = {}
    for token_id, added in tokenizer.added_tokens_decoder.items():
        if added.special and added.content:
            special[added.content] = token_id
    for text in tokenizer.all_special_tokens:
        token_id = tokenizer.convert_tokens_to_ids(text)
        if isinstance(token_id, int) and text:
            special.setdefault(text, token_id)
    # Longest first so '<|im_start|>' wins over any shorter special string it contains.
    alternatives = sorted(special, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(s) for s in alternatives)) if alternatives else None
    return TokenizerFacts(
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        special_ids=frozenset(special.values()),
        special_pattern=pattern,
        special_by_text=special,
        unicode_forms=_unicode_forms(tokenizer),
    )


NormalForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
UNICODE_FORMS: tuple[NormalForm, ...] = ("NFC", "NFD", "NFKC", "NFKD")


def _unicode_forms(tokenizer: Tokenizer) -> tuple[NormalForm, ...]:
    """The NFC/NFD/NFKC/NFKD steps of the tokenizer's normalizer (other steps, such as
    SentencePiece's space replacement, change every text and say nothing about its letters).

    Example: qwen3 -> ("NFC",); smollm2 (no normalizer) -> (); llama2 (Prepend, Replace) -> ()
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    try:
        spec = json.loads(backend.to_str()).get("normalizer") if backend is not None else None
    except (AttributeError, ValueError, TypeError):
        return ()
    forms: list[NormalForm] = []

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        for form in UNICODE_FORMS:
            if kind == form:
                forms.append(form)
        for child in node.get("normalizers") or []:
            walk(child)

    walk(spec)
    return tuple(forms)
