"""Tokenizing a rendered text: whole-string (like `apply_chat_template`) or unit by unit.

Whole-string encoding is what transformers does for Jinja templates. The built-in dialects follow
their reference implementations instead, which encode segment by segment (Meta's `ChatFormat`
encodes role, "\\n\\n" and content separately; Llama 2 encodes each [INST] pair on its own): a
`Unit` is one such encode call, or one control marker that maps to a single token.

Design concession: offsets are the tokenizer's raw character offsets; byte-level pieces of one
character share the character's offsets, and `text_starts` turns them into adjacent spans whose
texts concatenate back to the rendered text. For byte-level tokenizers those offsets are computed
from each token's bytes (`piece_table`, `derive_offsets`) instead of read back from Rust, which
costs a vocabulary-sized table per tokenizer and is checked against the text on every call.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from itertools import accumulate, compress
from typing import Any

import numpy as np

from app.chat.tokenizer import Tokenizer
from app.chat.vocabulary import NormalForm, special_texts, unicode_forms
from app.tokenizers.words import WordCache

_EOT_HINT = re.compile(r"end|eot|eom|</s>|<eos>", re.IGNORECASE)
_NOT_EOT = re.compile(
    r"start|begin|header|pad|unk|mask|think|tool|image|vision|audio", re.IGNORECASE
)


# From this many tokens on, numpy's arrays pay for themselves over lists (its fixed cost per call
# is more than a dataset row's whole work; a 1000-message conversation has 8-30k tokens).
LONG_RENDERING = 2048


@dataclass(frozen=True)
class PieceTable:
    """For every token id: its bytes, how many characters start in them (bytes that are not
    UTF-8 continuation bytes), and how many characters before its end it starts (those, plus
    one when its first byte continues the previous character); the counts as arrays, so a
    long text's offsets are a few vectorised steps."""

    data: list[bytes]
    chars: np.ndarray
    back: np.ndarray


@dataclass
class TokenizerInfo:
    """What rendering and the lints need from a tokenizer, computed once per tokenizer object
    (weak-keyed: a tokenizer mutated after its first use keeps its old facts).

    Example (qwen3): bos=None, eos="<|im_end|>", eos_id=151645, pad_id=151643,
                     unicode_forms=("NFC",)
    """

    added: dict[str, tuple[int, bool]]
    special_ids: frozenset[int]
    marker_ids: frozenset[int]
    bos: str | None
    eos: str | None
    eot_texts: frozenset[str]
    cut_texts: tuple[str, ...] = ()
    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None
    special_by_text: dict[str, int] = field(default_factory=dict)
    # Longest first, so '<|im_start|>' wins over any shorter special string it contains.
    special_pattern: re.Pattern[str] | None = None
    # Unicode normal forms the tokenizer's normalizer applies, in order (Qwen's: ("NFC",)).
    unicode_forms: tuple[NormalForm, ...] = ()
    # Per-id byte facts, where offsets can be derived from ids (see `piece_table`).
    pieces: PieceTable | None = None
    # Exact ids a word at a time, for the tokenizers where that holds (app.tokenizers.words).
    words: WordCache | None = None
    # The Rust tokenizer's special-token mode is shared state: held while setting it and encoding.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _encoded: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _names: dict[int, str] = field(default_factory=dict, repr=False)

    def encode(self, tokenizer: Tokenizer, text: str) -> tuple[int, ...]:
        """Tokenize `text` alone without BOS/EOS (cached: marker strings repeat)."""
        ids = self._encoded.get(text)
        if ids is None:
            ids = tuple(tokenizer.encode(text, add_special_tokens=False))
            if len(self._encoded) < 4096:
                self._encoded[text] = ids
        return ids

    def token_text(self, tokenizer: Tokenizer, token_id: int | None) -> str:
        """The token's vocabulary entry, quoted (cached: the same few ids are named per row)."""
        if token_id is None:
            return "none"
        name = self._names.get(token_id)
        if name is None:
            name = self._names[token_id] = repr(tokenizer.convert_ids_to_tokens(token_id))
        return name


_INFO: weakref.WeakKeyDictionary[Any, TokenizerInfo] = weakref.WeakKeyDictionary()


def tokenizer_info(tokenizer: Tokenizer) -> TokenizerInfo:
    """Cached facts: added tokens (text -> (id, special)), special ids, BOS/EOS, eot texts."""
    try:
        return _INFO[tokenizer]
    except (KeyError, TypeError):
        pass
    added = {
        tok.content: (tid, bool(tok.special)) for tid, tok in tokenizer.added_tokens_decoder.items()
    }
    special_ids = frozenset(tid for tid, special in added.values() if special) | frozenset(
        tokenizer.all_special_ids
    )
    eos = tokenizer.eos_token
    eot = {
        text
        for text, (_, special) in added.items()
        if special and _EOT_HINT.search(text) and not _NOT_EOT.search(text)
    }
    if eos:
        eot.add(eos)
    cut = _cut_texts(tokenizer, eot)
    # Markers: every added token that is not whitespace (<|im_start|>, <tool_call>, <think>...).
    markers = frozenset(tid for text, (tid, _) in added.items() if not text.isspace()) | special_ids
    by_text = special_texts(tokenizer)
    longest = sorted(by_text, key=len, reverse=True)
    info = TokenizerInfo(
        added=added,
        special_ids=special_ids,
        marker_ids=markers,
        bos=tokenizer.bos_token,
        eos=eos,
        eot_texts=frozenset(eot),
        cut_texts=cut,
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        special_by_text=by_text,
        special_pattern=re.compile("|".join(map(re.escape, longest))) if longest else None,
        unicode_forms=unicode_forms(tokenizer),
    )
    info.pieces = piece_table(tokenizer, info)
    if info.pieces is not None:
        info.words = word_cache(tokenizer, info)
    with contextlib.suppress(TypeError):
        _INFO[tokenizer] = info
    return info


def _cut_texts(tokenizer: Tokenizer, eot: set[str]) -> tuple[str, ...]:
    """Where a long text may be cut for parallel encoding: before a special token that is matched
    verbatim and does not swallow the whitespace before it, so both sides tokenize as in the
    whole string."""
    return tuple(
        tok.content
        for tok in tokenizer.added_tokens_decoder.values()
        if tok.special
        and not tok.lstrip
        and not tok.normalized
        and (tok.content in eot or tok.content == tokenizer.bos_token)
    )


@dataclass
class Encoded:
    """Token ids with their raw character offsets into the text, as two aligned int lists."""

    ids: list[int]
    starts: list[int]
    ends: list[int]
    # True when the starts never decrease (known for offsets derived from token bytes).
    ordered: bool = False
    # The three lists as int64 arrays, where they were made as arrays (`arrays`).
    made: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids, starts and ends as int64 arrays (those the offsets were derived with, else
        made now and kept); the lists must not change after the first call but by `extend`."""
        if self.made is None or len(self.made[0]) != len(self.ids):
            self.made = tuple(  # type: ignore[assignment]
                np.fromiter(column, np.int64, len(column))
                for column in (self.ids, self.starts, self.ends)
            )
        assert self.made is not None
        return self.made

    @property
    def offsets(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    @classmethod
    def from_offsets(
        cls, ids: list[int], offsets: Sequence[Sequence[int]], shift: int = 0
    ) -> Encoded:
        return cls(list(ids), [o[0] + shift for o in offsets], [o[1] + shift for o in offsets])

    def extend(self, other: Encoded) -> None:
        if self.ids or not other.ordered:
            self.ordered = (
                self.ordered
                and other.ordered
                and (not self.ids or not other.ids or other.starts[0] >= self.starts[-1])
            )
        else:
            self.ordered = True
        self.ids += other.ids
        self.starts += other.starts
        self.ends += other.ends
        self.made = None


def encode_whole(tokenizer: Tokenizer, text: str) -> Encoded:
    """Tokenize the whole text as apply_chat_template does (no BOS/EOS added, specials parsed)."""
    return encode_many(tokenizer, [text])[0]


def encode_many(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Encoded]:
    """`encode_whole` of every text, in one call to the Rust tokenizer (which uses all cores).

    Added tokens split the text before normalization and pre-tokenization, so a long text cut
    just before one encodes exactly as the whole. Where the tokenizer's offsets follow from its
    token bytes (`piece_table`), only ids are asked for and the offsets are derived, which is
    several times cheaper than reading the offsets back from Rust.
    """
    return encode_later(tokenizer, texts)()


def encode_later(
    tokenizer: Tokenizer, texts: Sequence[str], pool: Executor | None = None
) -> Callable[[], list[Encoded]]:
    """`encode_many` in two steps: the Rust call starts now on `pool` (it releases the GIL, so
    the caller's Python work runs meanwhile), and the returned function waits for it and
    derives the offsets. Without a pool the whole work happens when the function is called, as
    it does for a tokenizer with a word cache (Python, which would hold the GIL on the pool).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return lambda: [_encode_python(tokenizer, text) for text in texts]
    info = tokenizer_info(tokenizer)
    words, table = info.words, info.pieces
    owners, parts = (
        ([(k, 0) for k in range(len(texts))], list(texts))
        if words is not None
        else _split_at_cuts(texts, info.cut_texts)
    )

    def encode() -> list[Any]:
        return words.many(parts) if words is not None else _encode_rust(info, backend, parts)

    # The word cache is Python and holds the GIL: it runs where the result is wanted.
    started = pool.submit(encode) if pool is not None and words is None else None

    def finish() -> list[Encoded]:
        encs: list[Any] = started.result() if started is not None else encode()
        out: list[Encoded | None] = [None] * len(texts)
        for (k, shift), part, enc in zip(owners, parts, encs, strict=True):
            piece = derive_offsets(enc, part, table, shift) if table is not None else None
            if piece is None:
                if table is None:
                    full = enc
                else:
                    with specials_parsed(info, backend):
                        full = backend.encode(part, add_special_tokens=False)
                piece = Encoded.from_offsets(full.ids, full.offsets, shift)
            known = out[k]
            if known is None:  # a text's first part is taken as it is, not copied
                out[k] = piece
            else:
                known.extend(piece)
        return out  # type: ignore[return-value]  # every text has at least one part

    return finish


def _encode_rust(info: TokenizerInfo, backend: Any, parts: list[str]) -> list[Any]:
    """The parts' ids from the Rust tokenizer (their Encodings where offsets cannot be derived
    from the ids), special-token text parsed."""
    with specials_parsed(info, backend):
        if info.pieces is not None:
            return [e.ids for e in backend.encode_batch_fast(parts, add_special_tokens=False)]
        encodings: list[Any] = backend.encode_batch(parts, add_special_tokens=False)
        return encodings


def _split_at_cuts(
    texts: Sequence[str], cut_texts: Sequence[str]
) -> tuple[list[tuple[int, int]], list[str]]:
    """Every text cut where `cut_points` says (long texts are encoded in pieces, in parallel):
    ((text index, shift) per part, the parts).

    Example: ["Hi", ""] (short texts) -> ([(0, 0), (1, 0)], ["Hi", ""])
    """
    owners: list[tuple[int, int]] = []
    parts: list[str] = []
    for k, text in enumerate(texts):
        bounds = [*cut_points(text, cut_texts), len(text)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            owners.append((k, a))
            parts.append(text[a:b])
        if len(bounds) == 1:  # the empty text
            owners.append((k, 0))
            parts.append("")
    return owners, parts


@contextlib.contextmanager
def specials_parsed(info: TokenizerInfo, backend: Any) -> Iterator[None]:
    """Hold the tokenizer's lock with special-token text parsed as special tokens (the Rust
    tokenizer's `encode_special_tokens` mode is shared by every thread that encodes with it)."""
    with info.lock:
        backend.encode_special_tokens = False
        yield


def _encode_python(tokenizer: Tokenizer, text: str) -> Encoded:
    enc = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=False
    )
    return Encoded.from_offsets(enc["input_ids"], enc["offset_mapping"])


def encoded_from_pieces(
    tokenizer: Tokenizer, text: str, cuts: Sequence[int], pieces: Sequence[Sequence[int]]
) -> Encoded | None:
    """`encode_whole(tokenizer, text)` from ids another process computed (the template worker,
    which tokenized the text to count it): `text` cut at `cuts` (see `cut_points`), the ids of
    each piece. The offsets are derived and checked against the text as `encode_later` does;
    None when they cannot be (no piece table, ids that are no token or do not spell the text),
    and the caller encodes the text itself.

    Example: cuts [0, 5], pieces [[ids of "<|im_start|>..."], [...]] -> Encoded(ids, starts, ...)
    """
    table = tokenizer_info(tokenizer).pieces
    if table is None or len(cuts) != len(pieces) or not cuts or cuts[0] != 0:
        return None
    bounds = [*cuts, len(text)]
    out: Encoded | None = None
    made = []
    for a, b, ids in zip(bounds, bounds[1:], pieces, strict=False):
        if b < a or (ids and (set(map(type, ids)) != {int} or min(ids) < 0)):
            return None
        piece = derive_offsets(list(ids), text[a:b], table, a)
        if piece is None:
            return None
        made.append(piece.made)
        if out is None:
            out = piece
        else:
            out.extend(piece)
    if out is not None and len(made) > 1:  # the arrays, joined once (not at every extend)
        out.made = tuple(map(np.concatenate, zip(*made, strict=True)))  # type: ignore[assignment]
    return out


def marker_offsets(encoded: Encoded, markers: frozenset[int]) -> Iterator[tuple[int, int]]:
    """The raw (start, end) offsets of the tokens whose ids are in `markers`, in order: found
    with numpy in a long encoding (a 1000-message conversation has 30k tokens, 2-3k markers).

    Example: ids [1, 7, 2], offsets (0, 3), (3, 4), (4, 9); markers {1, 2} -> (0, 3), (4, 9)
    """
    if len(encoded.ids) < LONG_RENDERING or not markers:
        which = map(markers.__contains__, encoded.ids)
        return compress(zip(encoded.starts, encoded.ends, strict=True), which)
    ids, starts, ends = encoded.arrays()
    at = np.flatnonzero(np.isin(ids, np.fromiter(markers, np.int64, len(markers))))
    return zip(starts[at].tolist(), ends[at].tolist(), strict=True)


def derive_offsets(ids: list[int], text: str, table: PieceTable, shift: int = 0) -> Encoded | None:
    """Character offsets of `ids` from their bytes, or None when the bytes do not spell `text`
    (a normalizer changed it, an unknown id...): then the caller asks the tokenizer.

    A token ends after the characters started so far and starts at the first of them, or one
    earlier when its first byte finishes a character begun by the previous token: so the pieces
    of one split character both point at that character, as the Rust tokenizer's offsets do.
    Example: "é" as two byte tokens -> offsets (0, 1), (0, 1)
    """
    try:
        spelled = b"".join(map(table.data.__getitem__, ids))
    except IndexError:
        return None
    if spelled != text.encode("utf-8"):
        return None
    at = np.fromiter(ids, np.int64, len(ids))  # ids that the bytes lookup took, as an index
    ends = np.cumsum(table.chars[at])
    ends += shift
    starts = ends - table.back[at]
    # ids: the caller's list
    return Encoded(ids, starts.tolist(), ends.tolist(), ordered=True, made=(at, starts, ends))


PROBE_TEXT = (
    "<|im_start|>user\n  Héllo   wörld! 你好 😀\t\tx = [1, 2]\n\n"
    "  café<|im_end|>\n <s>[INST] naïve \u200b\u0301e </s>"
)


def piece_table(tokenizer: Tokenizer, info: TokenizerInfo) -> PieceTable | None:
    """The bytes of every token id for byte-level BPE tokenizers, when their offsets are
    exactly the characters those bytes cover (checked on a probe text); else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (
        backend is None
        or not hasattr(backend, "encode_batch_fast")
        or type(backend.decoder).__name__ != "ByteLevel"
    ):
        return None
    to_byte = {ord(char): byte for byte, char in _byte_alphabet().items()}
    vocab = backend.get_vocab(with_added_tokens=True)
    data = [b""] * (max(vocab.values(), default=-1) + 1)
    added = {tid for tid, _ in info.added.values()}
    try:
        for piece, tid in vocab.items():
            data[tid] = (
                piece.encode("utf-8")
                if tid in added
                else piece.translate(to_byte).encode("latin-1")
            )
    except UnicodeEncodeError:
        return None
    # 0x80-0xBF are UTF-8 continuation bytes: they start no character.
    starting = bytes.maketrans(bytes(range(0x80, 0xC0)), b"\0" * 64)
    chars = [len(piece) - piece.translate(starting).count(0) + piece.count(0) for piece in data]
    mid = [int(0x80 <= piece[0] < 0xC0) if piece else 0 for piece in data]
    table = PieceTable(data, np.array(chars, dtype=np.int64), np.add(chars, mid, dtype=np.int64))
    with specials_parsed(info, backend):
        enc = backend.encode(PROBE_TEXT, add_special_tokens=False)
    derived = derive_offsets(enc.ids, PROBE_TEXT, table)
    if derived is None or derived.offsets != [tuple(o) for o in enc.offsets]:
        return None
    return table


def word_cache(tokenizer: Tokenizer, info: TokenizerInfo) -> WordCache | None:
    """The tokenizer's word cache (see app.tokenizers.words), its misses encoded as the Rust
    tokenizer's ids are everywhere here; None where the cache would not be exact."""
    backend = tokenizer.backend_tokenizer  # piece_table checked that there is one
    return WordCache.for_rust(backend, lambda texts: _encode_rust(info, backend, texts))


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the others
    are moved to code points from 256 up, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    out = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


PARALLEL_MIN_CHARS = 8192
PARALLEL_PIECES = 4


def cut_points(text: str, cut_texts: Sequence[str]) -> list[int]:
    """Start offsets of the pieces to encode: [0] for short texts, else up to PARALLEL_PIECES.

    Example: a 20,000-character ChatML text -> [0, 5012, 10003, 15030] (before an <|im_end|>)
    """
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


def encode_units(tokenizer: Tokenizer, units: Sequence[Unit]) -> Encoded:
    """Encode unit by unit (control-token text inside a text unit stays plain text)."""
    texts = [u.text for u in units if u.token_id is None and u.text]
    batch: Any = {"input_ids": [], "offset_mapping": []}
    if texts:
        with tokenizer_info(tokenizer).lock:
            batch = tokenizer(
                texts,
                add_special_tokens=False,
                return_offsets_mapping=True,
                split_special_tokens=True,
            )
    out = Encoded([], [], [])
    k = 0
    for unit in units:
        if unit.token_id is not None:
            out.extend(Encoded([unit.token_id], [unit.start], [unit.start + len(unit.text)]))
        elif unit.text:
            out.extend(
                Encoded.from_offsets(batch["input_ids"][k], batch["offset_mapping"][k], unit.start)
            )
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


_ADDED: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], tuple[int, ...]]] = (
    weakref.WeakKeyDictionary()
)


def added_specials(tokenizer: Tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids `tokenizer(text)` (add_special_tokens=True) puts before and after a text's own.

    Example: gemma3 -> ((2,), ()); qwen3 -> ((), ())
    """
    with contextlib.suppress(KeyError, TypeError):
        return _ADDED[tokenizer]
    plain = list(tokenizer.encode("a", add_special_tokens=False))
    full = list(tokenizer.encode("a", add_special_tokens=True))
    at = next((i for i in range(len(full)) if full[i : i + len(plain)] == plain), len(full))
    found = (tuple(full[:at]), tuple(full[at + len(plain) :]))
    with contextlib.suppress(TypeError):
        _ADDED[tokenizer] = found
    return found


def with_added_specials(tokenizer: Tokenizer, encoded: Encoded, length: int) -> Encoded:
    """`encoded` (of a text `length` characters long) with the ids that `tokenizer(text)` adds
    (`added_specials`), as tokens of no characters at the text's start and end: the pipeline
    "apply_chat_template(tokenize=False), then tokenizer(text)".

    Example (gemma3, text "<bos>Hi"): ids [2, 10979] -> [2, 2, 10979], the first at (0, 0)
    """
    before, after = added_specials(tokenizer)
    if not before and not after:
        return encoded
    out = Encoded(list(before), [0] * len(before), [0] * len(before), ordered=True)
    out.extend(encoded)
    out.extend(Encoded(list(after), [length] * len(after), [length] * len(after), ordered=True))
    return out


def with_specials_later(
    tokenizer: Tokenizer, finish: Callable[[], list[Encoded]], texts: Sequence[str]
) -> Callable[[], list[Encoded]]:
    """`finish` (what `encode_later(tokenizer, texts)` returned), each encoding given
    `tokenizer(text)`'s own special tokens (see `with_added_specials`)."""
    return lambda: [
        with_added_specials(tokenizer, enc, len(text))
        for enc, text in zip(finish(), texts, strict=True)
    ]
