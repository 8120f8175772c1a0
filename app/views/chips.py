"""Token chips: one compact `<span>` per token, built from a Rendering.

Design concession: chips are joined in Python rather than looped in Jinja, and carry only what
cannot be derived: the index is the chip's position, the label follows from the id and the `t`
class, and the exact text is re-derived from the visible text by static/js/app.js unless a
`data-x` attribute holds it. That keeps an 8k-token conversation near 50 bytes of HTML per token;
every detail the tooltip shows is read from these attributes, never from per-token markup.

Example: Token(id=9690, text=" Hi\\n", role="user", message=1, trained=False, special=False)
         -> <span class="u b" data-id="9690" data-m="1">·Hi↵</span>
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache

from markupsafe import Markup, escape

from app.chat.tokens import Rendering, Token

ROLE_CLASS = {"system": "s", "user": "u", "assistant": "a", "tool": "o", None: "n"}
# Whitespace gets a visible stand-in; anything else unprintable becomes an escape sequence.
VISIBLE = {" ": "·", "\n": "↵", "\t": "→"}
# A raw text holding one of these cannot be recovered from its visible form, so it gets data-x.
AMBIGUOUS = frozenset("·↵→\\")
BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: which byte each byte-level character stands for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
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
    return '"' + "".join(ch if ch.isprintable() and ch != "\ufffd" else f"\\u{ord(ch):04x}"
                         for ch in body) + '"'


def _partial(raw: bytes | None) -> str | None:
    """The escaped bytes of a piece that is not valid UTF-8 on its own, else None."""
    if raw is None:
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace")
    return None


def chip(token: Token, raw: bytes | None = None) -> str:
    """One token as HTML (see the module docstring for the attribute scheme)."""
    partial = _partial(raw)
    shown, escaped = visible(token.text if partial is None else partial)
    escaped = escaped or partial is not None
    classes = [ROLE_CLASS.get(token.role, "x")]
    if token.trained:
        classes.append("t")
    if token.special:
        classes.append("k")
    if escaped:
        classes.append("e")
    if token.text.endswith("\n"):
        classes.append("b")
    attrs = f' data-id="{token.id}"'
    if token.message is not None:
        attrs += f' data-m="{token.message}"'
    if classes[0] == "x":
        attrs += f' data-r="{escape(token.role)}"'
    if escaped or AMBIGUOUS.intersection(token.text):
        attrs += f' data-x="{escape(exact_repr(token.text))}"'
    return f'<span class="{" ".join(classes)}"{attrs}>{escape(shown or "∅")}</span>'


def token_bytes(rendering: Rendering, tokenizer: object | None) -> list[bytes | None]:
    """Raw bytes for every token whose vocabulary piece spells bytes out (None elsewhere)."""
    if tokenizer is None or not hasattr(tokenizer, "convert_ids_to_tokens"):
        return [None] * len(rendering.tokens)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = "ByteLevel" in repr(getattr(backend, "decoder", None))
    pieces = tokenizer.convert_ids_to_tokens(rendering.input_ids)
    return piece_bytes([p or "" for p in pieces], byte_level)


def chips_html(rendering: Rendering, tokenizer: object | None = None) -> Markup:
    """All tokens of a rendering as one run of chips."""
    raws = token_bytes(rendering, tokenizer)
    return Markup("".join(chip(tok, raw) for tok, raw in zip(rendering.tokens, raws, strict=True)))
