"""Turn rendered conversations into training rows: padded batches or padding-free packed rows.

Pure functions on plain lists (no torch), so the batch view and the trainer share one source of
truth. Every row carries the same five fields:

- ``input_ids``, ``labels``: the tokens and their loss labels (-100 = not trained);
- ``attention_mask``: 1 on real tokens, 0 on padding;
- ``position_ids``: restart at 0 where each conversation starts (this is how a padding-free model
  call tells conversations apart: a new segment begins wherever the position does not go up by 1);
- ``segments``: ``[[start, end, seq_index], ...]``, end exclusive, one per conversation in the row.

Design concession: packing is first-fit in input order (deterministic, good enough for chat data)
rather than an optimal bin-packing, and a conversation longer than ``max_length`` is cut at
``max_length`` (the end is dropped, like right truncation) instead of being split across rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.chat.tokens import IGNORE_INDEX

Row = dict[str, list[Any]]
SeqLike = Mapping[str, Sequence[int]]


def _clip(seq: SeqLike, max_length: int | None) -> tuple[list[int], list[int]]:
    ids = list(seq["input_ids"])
    labels = list(seq["labels"])
    if len(ids) != len(labels):
        raise ValueError(f"input_ids ({len(ids)}) and labels ({len(labels)}) differ in length")
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


def pad_batch(
    seqs: Sequence[SeqLike], pad_id: int, padding_side: str = "right", max_length: int | None = None
) -> list[Row]:
    """Pad sequences to the longest one (after cutting each at ``max_length``).

    Padding gets ``pad_id``, label -100, attention 0 and position 0; real tokens count their
    positions from 0 wherever the padding sits.

    Example (right): pad_batch([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                                {"input_ids": [8], "labels": [8]}], pad_id=0)
      -> [{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7],
           "position_ids": [0, 1, 2], "segments": [[0, 3, 0]]},
          {"input_ids": [8, 0, 0], "attention_mask": [1, 0, 0], "labels": [8, -100, -100],
           "position_ids": [0, 0, 0], "segments": [[0, 1, 1]]}]
    Example (left): the second row becomes input_ids [0, 0, 8], attention_mask [0, 0, 1],
      position_ids [0, 0, 0], segments [[2, 3, 1]].
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', not {padding_side!r}")
    clipped = [_clip(seq, max_length) for seq in seqs]
    width = max((len(ids) for ids, _ in clipped), default=0)
    rows = []
    for index, (ids, labels) in enumerate(clipped):
        n, gap = len(ids), width - len(ids)
        real = {
            "input_ids": ids,
            "attention_mask": [1] * n,
            "labels": labels,
            "position_ids": list(range(n)),
        }
        fill = {
            "input_ids": [pad_id] * gap,
            "attention_mask": [0] * gap,
            "labels": [IGNORE_INDEX] * gap,
            "position_ids": [0] * gap,
        }
        start = 0 if padding_side == "right" else gap
        right = padding_side == "right"
        row: Row = {key: real[key] + fill[key] if right else fill[key] + real[key] for key in real}
        row["segments"] = [[start, start + n, index]]
        rows.append(row)
    return rows


def pack_sequences(seqs: Sequence[SeqLike], max_length: int) -> list[Row]:
    """Pack conversations into rows of at most ``max_length`` tokens, without padding.

    Each conversation goes into the first row with room for it (first-fit, in input order).
    Positions restart at 0 for every conversation, and the first label of every conversation is
    -100: the model shifts labels by one, so that label would be predicted from the previous
    conversation's last token.

    Example: pack_sequences([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]},
                             {"input_ids": [4, 5], "labels": [-100, 5]},
                             {"input_ids": [6, 7], "labels": [6, 7]}], max_length=5)
      -> [{"input_ids": [1, 2, 3, 4, 5], "attention_mask": [1, 1, 1, 1, 1],
           "labels": [-100, 2, 3, -100, 5], "position_ids": [0, 1, 2, 0, 1],
           "segments": [[0, 3, 0], [3, 5, 1]]},
          {"input_ids": [6, 7], "attention_mask": [1, 1], "labels": [-100, 7],
           "position_ids": [0, 1], "segments": [[0, 2, 2]]}]
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, not {max_length}")
    rows: list[Row] = []
    for index, seq in enumerate(seqs):
        ids, labels = _clip(seq, max_length)
        if not ids:
            continue
        row = next((r for r in rows if len(r["input_ids"]) + len(ids) <= max_length), None)
        if row is None:
            row = {
                "input_ids": [],
                "attention_mask": [],
                "labels": [],
                "position_ids": [],
                "segments": [],
            }
            rows.append(row)
        start = len(row["input_ids"])
        row["input_ids"] += ids
        row["attention_mask"] += [1] * len(ids)
        row["labels"] += [IGNORE_INDEX] + labels[1:]
        row["position_ids"] += list(range(len(ids)))
        row["segments"].append([start, start + len(ids), index])
    return rows
