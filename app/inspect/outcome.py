"""One evaluated row: what the report counts and the export writes, small enough to send
between processes.

Example: Outcome(3, 120, "conversation", RowStats(...), [Finding("pad-is-eos", ...)],
                 '{"input_ids": [...], "labels": [...], "attention_mask": [...]}\\n')

Design concession: the processed row is kept only as its JSONL line (made by `Processed.jsonl`
without the json encoder), so an outcome carries no token lists once evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from app.chat.tokens import Finding
from app.inspect.summary import RowStats


@dataclass
class Outcome:
    """One evaluated row: its line, byte offset, kind, counts and findings, or its error."""

    line: int
    offset: int
    kind: str
    stats: RowStats | None = None
    findings: list[Finding] = field(default_factory=list)
    export_line: str | None = None
    error: str | None = None


@dataclass
class Processed:
    """A row as the trainer would see it."""

    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int]

    def jsonl(self) -> str:
        """The row as one JSONL line, byte for byte what `json.dumps` writes.

        A list of exact ints prints as its JSON array (`str([5, -100])` == "[5, -100]", and
        `_ints` writes the same) at a fraction of the encoder's cost; all three lists hold
        exact ints (token ids from the tokenizer, or a row's own lists, where booleans are
        refused).
        """
        mask = self.attention_mask
        # Conversation rows attend to every token: their mask's text is made once per length.
        text = _all_ones(len(mask)) if mask and all(mask) else str(mask)  # 0/1 only
        return (
            f'{{"input_ids": {_ints(self.input_ids)}, "labels": {_ints(self.labels)}, '
            f'"attention_mask": {text}}}\n'
        )


def _ints(values: list[int]) -> str:
    """`str(values)` of a list of ints, from orjson's compact text with json.dumps's ", " put
    back (a third of the time; the only commas in it are separators). An int over 64 bits,
    which orjson refuses, takes the plain way."""
    try:
        return orjson.dumps(values).decode().replace(",", ", ")
    except TypeError:
        return str(values)


@lru_cache(maxsize=1024)
def _all_ones(n: int) -> str:
    return str([1] * n)
