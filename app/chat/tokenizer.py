"""The tokenizer as the engine sees it: the part of transformers' fast tokenizer that Maskscope
reads, as a Protocol, so every seam says what it needs instead of `Any`.

Example: a `PreTrainedTokenizerFast` loaded by app.tokenizers satisfies it; so does any object
with these attributes (the tests' tiny fixture tokenizer loads through transformers too).

Design concession: method parameters are loose (`*args`, `**kwargs`) because transformers'
own signatures are wide and version-dependent; attributes and return types are what callers
rely on and are spelled out.
"""

from __future__ import annotations

from typing import Any, Protocol


class Tokenizer(Protocol):
    """A Hugging Face fast tokenizer (tokenizer.json backed)."""

    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    chat_template: str | dict[str, str] | None
    name_or_path: str
    is_fast: bool

    @property
    def special_tokens_map(self) -> dict[str, Any]: ...
    @property
    def added_tokens_decoder(self) -> dict[int, Any]: ...
    @property
    def all_special_ids(self) -> list[int]: ...
    @property
    def all_special_tokens(self) -> list[str]: ...
    @property
    def backend_tokenizer(self) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def encode(self, *args: Any, **kwargs: Any) -> list[int]: ...
    def decode(self, *args: Any, **kwargs: Any) -> str: ...
    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]: ...
    def convert_ids_to_tokens(self, *args: Any, **kwargs: Any) -> Any: ...
    def convert_tokens_to_ids(self, *args: Any, **kwargs: Any) -> Any: ...
    def get_vocab(self) -> dict[str, int]: ...
    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any: ...
    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any: ...
