"""Token chips: one compact `<span>` per token, built from a Rendering.

Design concession: chips are joined in Python rather than looped in Jinja, and carry only what
cannot be derived: the index is the chip's position (its run's `data-o` plus its place in the
run), the label follows from the id and the `t` class unless a `data-l` attribute holds the
row's own (pre-tokenized rows with shifted labels), and the exact text is re-derived from the
visible text by static/js/app.js unless a `data-x` attribute holds it. That keeps an 8k-token
conversation near 50 bytes of HTML per token; every detail the tooltip shows is read from these
attributes, never from per-token markup.

Example: Token(id=9690, text=" Hi\\n", role="user", message=1, trained=False, special=False)
         -> <span class="u b" data-id="9690" data-m="1">·Hi↵</span>
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache

from markupsafe import Markup, escape

from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Rendering, Token

ROLE_CLASS = {"system": "s", "user": "u", "assistant": "a", "tool": "o", None: "n"}
# What a token is inside its turn, where it is not plain content or markup (DESIGN §3.1).
PART_CLASS = {"reasoning": " q", "tool_call": " f", "image": " i", "audio": " i au"}
# Parts whose runs of one token collapse into one chip (an encoder's placeholder positions).
REPEATED_PARTS = frozenset(("image", "audio"))
# Whitespace gets a visible stand-in; anything else unprintable becomes an escape sequence.
VISIBLE = {" ": "·", "\n": "↵", "\t": "→"}
# A raw text holding one of these cannot be recovered from its visible form, so it gets data-x.
AMBIGUOUS = frozenset("·↵→\\")
BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
RUN_TOKENS = 256


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: which byte each byte-level character stands for."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def piece_bytes(pieces: Sequence[str], byte_level: bool) -> list[bytes | None]:
    """The raw bytes behind each vocabulary piece, where the piece spells bytes out.

    Example: (["ĠæĪ", "ĳ"], byte_level=True) -> [b" \\xe6\\x88", b"\\x91"];
             (["<0xF0>", "▁ok"], byte_level=False) -> [b"\\xf0", None]
    """
    table = _byte_decoder()
    out: list[bytes | None] = []
    for piece in pieces:
        match = BYTE_PIECE.match(piece or "")
        if match:
            out.append(bytes([int(match.group(1), 16)]))
        elif byte_level and piece and all(ch in table for ch in piece):
            out.append(bytes(table[ch] for ch in piece))
        else:
            out.append(None)
    return out


def visible(text: str) -> tuple[str, bool]:
    """Make whitespace visible and escape what cannot be printed; say whether anything was escaped.

    Example: "a b\\n" -> ("a·b↵", False); "\\x07\\u200b" -> ("\\\\x07\\\\u200b", True)
    """
    out, escaped = [], False
    for ch in text:
        if ch in VISIBLE:
            out.append(VISIBLE[ch])
        elif ch.isprintable() and ch != "\ufffd":
            out.append(ch)
        else:
            escaped = True
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out), escaped


def exact_repr(text: str) -> str:
    """A quoted, escaped form of a token's exact text for the tooltip (JSON rules, plus invisibles).

    Example: "a\\u200b\\n" -> '"a\\\\u200b\\\\n"'
    """
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    return (
        '"'
        + "".join(ch if ch.isprintable() and ch != "\ufffd" else f"\\u{ord(ch):04x}" for ch in body)
        + '"'
    )


def _partial(raw: bytes | None) -> str | None:
    """The escaped bytes of a piece that is not valid UTF-8 on its own, else None."""
    if raw is None:
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace")
    return None


@lru_cache(maxsize=65_536)
def _face(text: str, partial: str | None) -> tuple[str, bool, str]:
    """(escaped visible HTML, whether escaped, data-x attribute or "") for one token text.

    Cached: the same texts recur thousands of times in a long conversation.
    """
    shown, escaped = visible(text if partial is None else partial)
    escaped = escaped or partial is not None
    data_x = ""
    if escaped or AMBIGUOUS.intersection(text):
        data_x = f' data-x="{escape(exact_repr(text))}"'
    return str(escape(shown or "∅")), escaped, data_x


def chip(token: Token, partial: str | None = None, label: int | None = None) -> str:
    """One token as HTML (see the module docstring); `partial`: its bytes, if a split character;
    `label`: the row's own label, written out (data-l) only where it is not what the id and the
    trained flag give (a pre-tokenized row with shifted labels)."""
    shown, escaped, data_x = _face(token.text, partial)
    role = ROLE_CLASS.get(token.role, "x")
    classes = role + " t" * token.trained + " k" * token.special + " e" * escaped
    classes += PART_CLASS.get(token.part, "")
    if token.text.endswith("\n"):
        classes += " b"
    attrs = f' data-id="{token.id}"'
    if token.message is not None:
        attrs += f' data-m="{token.message}"'
    if role == "x":
        attrs += f' data-r="{escape(token.role)}"'
    if label is not None and label != token.label:
        attrs += f' data-l="{label}"'
    return f'<span class="{classes}"{attrs}{data_x}>{shown}</span>'


def _byte_level(tokenizer: Tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return "ByteLevel" in repr(getattr(backend, "decoder", None))


def token_bytes(ids: Sequence[int], tokenizer: Tokenizer) -> list[bytes | None]:
    """Raw bytes for every id whose vocabulary piece spells bytes out (None elsewhere)."""
    pieces = tokenizer.convert_ids_to_tokens(list(ids))
    return piece_bytes([p or "" for p in pieces], _byte_level(tokenizer))


def token_partials(rendering: Rendering, tokenizer: Tokenizer | None) -> list[str | None]:
    """For each token, its escaped bytes when its piece is not valid UTF-8 alone (else None).

    Looked up once per distinct id: a long conversation repeats a small vocabulary.
    """
    if tokenizer is None or not hasattr(tokenizer, "convert_ids_to_tokens"):
        return [None] * len(rendering.tokens)
    distinct = sorted(set(rendering.input_ids))
    raws = token_bytes(distinct, tokenizer)
    partial = {i: _partial(raw) for i, raw in zip(distinct, raws, strict=True)}
    return [partial[i] for i in rendering.input_ids]


def runs(tokens: Sequence[Token], size: int = RUN_TOKENS) -> list[tuple[int, int]]:
    """Split token positions into runs of about `size`, ending after a newline where one is near.

    A run is a block that the browser lays out only when it scrolls into view
    (content-visibility), so an 8k-token conversation costs the layout of what is on screen.
    Ending runs at a newline keeps their block boundaries invisible.
    Example: 700 tokens with newlines at 255 and 530 -> [(0, 256), (256, 531), (531, 700)]
    """
    out, start = [], 0
    for i, tok in enumerate(tokens):
        length = i + 1 - start
        if (length >= size and tok.text.endswith("\n")) or length >= 2 * size:
            out.append((start, i + 1))
            start = i + 1
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


def chip_strings(rendering: Rendering, tokenizer: Tokenizer | None = None) -> list[str]:
    """Every token of a rendering as its chip's HTML; a repeated image token (256
    `<image_soft_token>`) shows as one chip with its count, the repeats hidden until that chip
    is clicked (they stay in place, so indices hold)."""
    partials = token_partials(rendering, tokenizer)
    tokens, labels = rendering.tokens, rendering.labels
    repeats = image_repeats(tokens)

    def one(i: int) -> str:
        html = chip(tokens[i], partials[i], labels[i])
        count = repeats.get(i)
        if count is None:
            return html
        if count == 0:  # a hidden repeat
            return mark(html, "ih")
        return html.replace("<span ", f'<span data-rep="{count}" ', 1)

    return [one(i) for i in range(len(tokens))]


def mark(html: str, cls: str) -> str:
    """A chip's HTML with one more class (after the role class, which stays first).

    Example: ('<span class="u" data-id="5">Hi</span>', "dx")
             -> '<span class="u dx" data-id="5">Hi</span>'
    """
    return html.replace('" data-id=', f' {cls}" data-id=', 1)


def runs_html(chips: Sequence[str], bounds: Sequence[tuple[int, int]], between: str = "") -> Markup:
    """Chips grouped in runs (start, end), each carrying its first index (data-o); `between`
    goes between two chips (a zero-width space lets a line break there and only there)."""
    return Markup(
        "".join(
            f'<div class="run" data-o="{start}">' + between.join(chips[start:end]) + "</div>"
            for start, end in bounds
        )
    )


def chips_html(rendering: Rendering, tokenizer: Tokenizer | None = None) -> Markup:
    """All tokens of a rendering as chips, in runs of about RUN_TOKENS (see `runs`)."""
    return runs_html(chip_strings(rendering, tokenizer), runs(rendering.tokens))


def image_repeats(tokens: Sequence[Token]) -> dict[int, int]:
    """For runs of one image token: the first's index -> the run's length, each repeat -> 0.

    Example: parts [content, image×3 of one id] -> {1: 3, 2: 0, 3: 0}
    """
    out: dict[int, int] = {}
    i, n = 0, len(tokens)
    while i < n:
        if tokens[i].part not in REPEATED_PARTS:
            i += 1
            continue
        j = i + 1
        while j < n and tokens[j].part == tokens[i].part and tokens[j].id == tokens[i].id:
            j += 1
        if j - i > 1:
            out[i] = j - i
            out.update(dict.fromkeys(range(i + 1, j), 0))
        i = j
    return out
