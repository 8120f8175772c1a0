"""Tokenizing a rendered text: whole-string (like `apply_chat_template`) or unit by unit.

Whole-string encoding is what transformers does for Jinja templates. The built-in dialects follow
their reference implementations instead, which encode segment by segment (Meta's `ChatFormat`
encodes role, "\\n\\n" and content separately; Llama 2 encodes each [INST] pair on its own): a
`Unit` is one such encode call, or one control marker that maps to a single token.

Design concession: offsets are the tokenizer's raw character offsets; byte-level pieces of one
character share the character's offsets, and `text_starts` turns them into adjacent spans whose
texts concatenate back to the rendered text.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

_EOT_HINT = re.compile(r"end|eot|eom|</s>|<eos>", re.IGNORECASE)
_NOT_EOT = re.compile(r"start|begin|header|pad|unk|mask|think|tool|image|vision", re.IGNORECASE)


@dataclass
class TokenizerInfo:
    """What rendering needs from a tokenizer, computed once per tokenizer object."""

    added: dict[str, tuple[int, bool]]
    special_ids: frozenset[int]
    marker_ids: frozenset[int]
    bos: str | None
    eos: str | None
    eot_texts: frozenset[str]
    cut_texts: tuple[str, ...] = ()
    # The Rust tokenizer's special-token mode is shared state: held while setting it and encoding.
    lock: threading.Lock = field(default_factory=threading.Lock)


_INFO: weakref.WeakKeyDictionary[Any, TokenizerInfo] = weakref.WeakKeyDictionary()


def tokenizer_info(tokenizer: Any) -> TokenizerInfo:
    """Cached facts: added tokens (text -> (id, special)), special ids, BOS/EOS, eot texts."""
    try:
        return _INFO[tokenizer]
    except (KeyError, TypeError):
        pass
    added = {tok.content: (tid, bool(tok.special))
             for tid, tok in tokenizer.added_tokens_decoder.items()}
    special_ids = frozenset(tid for tid, special in added.values() if special) | frozenset(
        tokenizer.all_special_ids)
    eos = tokenizer.eos_token
    eot = {text for text, (_, special) in added.items()
           if special and _EOT_HINT.search(text) and not _NOT_EOT.search(text)}
    if eos:
        eot.add(eos)
    # Where a long text may be cut for parallel encoding: before a special token that is matched
    # verbatim and does not swallow the whitespace before it, so both sides tokenize as in the
    # whole string.
    cut = tuple(tok.content for tok in tokenizer.added_tokens_decoder.values()
                if tok.special and not tok.lstrip and not tok.normalized
                and (tok.content in eot or tok.content == tokenizer.bos_token))
    # Markers: every added token that is not whitespace (<|im_start|>, <tool_call>, <think>...).
    markers = frozenset(tid for text, (tid, _) in added.items() if not text.isspace()) | special_ids
    info = TokenizerInfo(added=added, special_ids=special_ids, marker_ids=markers,
                         bos=tokenizer.bos_token, eos=eos,
                         eot_texts=frozenset(eot), cut_texts=cut)
    with contextlib.suppress(TypeError):
        _INFO[tokenizer] = info
    return info


@dataclass
class Encoded:
    """Token ids with their raw character offsets into the text, as two aligned int lists."""

    ids: list[int]
    starts: list[int]
    ends: list[int]

    @property
    def offsets(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    @classmethod
    def from_offsets(cls, ids: list[int], offsets: Sequence[Sequence[int]],
                     shift: int = 0) -> Encoded:
        return cls(list(ids), [o[0] + shift for o in offsets], [o[1] + shift for o in offsets])

    def extend(self, other: Encoded) -> None:
        self.ids += other.ids
        self.starts += other.starts
        self.ends += other.ends


def encode_whole(tokenizer: Any, text: str) -> Encoded:
    """Tokenize the whole text as apply_chat_template does (no BOS/EOS added, specials parsed)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        split_special_tokens=False)
        return Encoded.from_offsets(enc["input_ids"], enc["offset_mapping"])
    # The Rust tokenizer directly: same ids as tokenizer(text), without building the Python
    # lists (attention mask, type ids...) that the engine does not use.
    info = tokenizer_info(tokenizer)
    cuts = _cuts(text, info.cut_texts)
    # Added tokens split the text before normalization and pre-tokenization, so pieces cut just
    # before one encode exactly as the whole; encode_batch runs them on all cores.
    bounds = [*cuts, len(text)]
    with info.lock:
        backend.encode_special_tokens = False
        encs = backend.encode_batch([text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)],
                                    add_special_tokens=False)
    out = Encoded([], [], [])
    for shift, enc in zip(cuts, encs, strict=True):
        out.extend(Encoded.from_offsets(enc.ids, enc.offsets, shift))
    return out


PARALLEL_MIN_CHARS = 8192
PARALLEL_PIECES = 4


def _cuts(text: str, cut_texts: Sequence[str]) -> list[int]:
    """Start offsets of the pieces to encode: [0] for short texts, else up to PARALLEL_PIECES."""
    cuts = [0]
    if len(text) < PARALLEL_MIN_CHARS or not cut_texts:
        return cuts
    for i in range(1, PARALLEL_PIECES):
        target = len(text) * i // PARALLEL_PIECES
        found = [p for p in (text.find(t, target) for t in cut_texts) if p != -1]
        if found and min(found) > cuts[-1]:
            cuts.append(min(found))
    return cuts


@dataclass(frozen=True, slots=True)
class Unit:
    """One encode call: text encoded alone from `start`, or a marker with a known token id."""

    start: int
    text: str
    token_id: int | None = None


def encode_units(tokenizer: Any, units: Sequence[Unit]) -> Encoded:
    """Encode unit by unit (control-token text inside a text unit stays plain text)."""
    texts = [u.text for u in units if u.token_id is None and u.text]
    batch: Any = {"input_ids": [], "offset_mapping": []}
    if texts:
        with tokenizer_info(tokenizer).lock:
            batch = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                              split_special_tokens=True)
    out = Encoded([], [], [])
    k = 0
    for unit in units:
        if unit.token_id is not None:
            out.extend(Encoded([unit.token_id], [unit.start], [unit.start + len(unit.text)]))
        elif unit.text:
            out.extend(Encoded.from_offsets(batch["input_ids"][k], batch["offset_mapping"][k],
                                            unit.start))
            k += 1
    return out


def text_starts(raw_starts: Sequence[int]) -> list[int]:
    """Where each token's text starts, so that token texts are adjacent and cover the text: token
    i runs from text_starts[i] to text_starts[i + 1]. A piece sharing its character with the next
    piece (byte-level) is left empty, and the character goes to the piece that completes it.

    Example: raw starts [0, 0, 1] (a character split into two byte pieces, then one more token)
             -> [0, 0, 1], i.e. texts "", "<char>", "<rest>"; raw starts [2, 3] -> [0, 3]
    """
    return list(accumulate(raw_starts[1:], max, initial=0)) if raw_starts else []
