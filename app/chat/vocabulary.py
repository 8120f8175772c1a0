"""What a tokenizer's vocabulary and normalizer say about text: its special strings and the
Unicode normal forms it applies. Read once per tokenizer into `TokenizerInfo`.

Example: special_texts(qwen3)["<|im_end|>"] -> 151645; unicode_forms(qwen3) -> ("NFC",)

Design concession: the normalizer is read from the serialized `tokenizer.json` (the Rust object
does not expose its steps), so an unreadable one counts as applying no normal form.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from app.chat.tokenizer import Tokenizer


def special_texts(tokenizer: Tokenizer) -> dict[str, int]:
    """Every special string the tokenizer knows, with its id (added special tokens first)."""
    special: dict[str, int] = {}
    for token_id, added in tokenizer.added_tokens_decoder.items():
        if added.special and added.content:
            special[added.content] = token_id
    for text in tokenizer.all_special_tokens:
        token_id = tokenizer.convert_tokens_to_ids(text)
        if isinstance(token_id, int) and text:
            special.setdefault(text, token_id)
    return special


NormalForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
UNICODE_FORMS: tuple[NormalForm, ...] = ("NFC", "NFD", "NFKC", "NFKD")


def unicode_forms(tokenizer: Tokenizer) -> tuple[NormalForm, ...]:
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
