"""Already-tokenized dataset rows: validation and the token view the lints read.

Design concession: a row without `labels` is taken as labels == input_ids (what a plain language
modelling collator does), so `labels-equal-inputs` explains it instead of the row being refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import InputError


@dataclass
class TokenRow:
    """A pre-tokenized row. Example: TokenRow([1, 5, 2], [-100, 5, 2], [1, 1, 1], None, None)"""

    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int] | None
    position_ids: list[int] | None
    messages: list[Any] | None

    def segments(self) -> list[int]:
        """Start index of each packed sequence (position_ids restarting at 0), else [0].

        Example: position_ids [0, 1, 2, 0, 1] -> [0, 3]
        """
        if not self.position_ids:
            return [0]
        return [0] + [
            i
            for i in range(1, len(self.position_ids))
            if self.position_ids[i] <= self.position_ids[i - 1]
        ]

    def real_tokens(self) -> int:
        """Tokens that are not padding (attention_mask 1), or all of them without a mask."""
        return sum(self.attention_mask) if self.attention_mask is not None else len(self.input_ids)


def is_token_row(row: dict[str, Any]) -> bool:
    return "input_ids" in row


def parse_token_row(row: dict[str, Any]) -> TokenRow:
    """Validate a pre-tokenized row; raise InputError naming the bad field."""
    ids = _int_list(row, "input_ids")
    if not ids:
        raise InputError("input_ids is empty.", field="input_ids")
    labels = _int_list(row, "labels") if row.get("labels") is not None else list(ids)
    mask = _int_list(row, "attention_mask") if row.get("attention_mask") is not None else None
    positions = _int_list(row, "position_ids") if row.get("position_ids") is not None else None
    for name, values in (("labels", labels), ("attention_mask", mask), ("position_ids", positions)):
        if values is not None and len(values) != len(ids):
            raise InputError(
                f"{name} has {len(values)} entries but input_ids has {len(ids)}.", field=name
            )
    if mask is not None and any(v not in (0, 1) for v in mask):
        raise InputError("attention_mask may hold only 0 and 1.", field="attention_mask")
    messages = row.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise InputError("messages must be a list of {role, content} objects.", field="messages")
    return TokenRow(ids, labels, mask, positions, messages)


def _int_list(row: dict[str, Any], name: str) -> list[int]:
    values = row.get(name)
    # bool is an int subclass; a list of true/false is not a list of token ids.
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise InputError(f"{name} must be a list of integers.", field=name)
    return values
