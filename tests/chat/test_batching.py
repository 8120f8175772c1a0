"""pad_batch and pack_sequences against transformers' own collators and invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, DataCollatorWithFlattening

from app.chat.batching import pack_sequences, pad_batch
from app.chat.tokens import IGNORE_INDEX
from tests.helpers.assets import require_asset

QWEN = Path.home() / ".cache/maskscope/assets/qwen3"

SEQS = [
    {"input_ids": [11, 12, 13, 14], "labels": [-100, -100, 13, 14]},
    {"input_ids": [21, 22], "labels": [21, 22]},
    {"input_ids": [31, 32, 33], "labels": [-100, 32, -100]},
]


def test_docstring_example_right_padding():
    rows = pad_batch(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}],
        pad_id=0,
    )
    assert rows[1] == {
        "input_ids": [8, 0, 0],
        "attention_mask": [1, 0, 0],
        "labels": [8, -100, -100],
        "position_ids": [0, 0, 0],
        "segments": [[0, 1, 1]],
    }


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_batch_matches_transformers_collator(side):
    require_asset(QWEN, "qwen3")
    tok = AutoTokenizer.from_pretrained(str(QWEN))
    tok.padding_side = side
    ref = DataCollatorForSeq2Seq(tok, return_tensors="np")([dict(s) for s in SEQS])
    rows = pad_batch(SEQS, tok.pad_token_id, padding_side=side)
    for key in ("input_ids", "attention_mask", "labels"):
        assert [r[key] for r in rows] == ref[key].tolist(), key


def test_left_padding_positions_start_at_first_real_token():
    rows = pad_batch(SEQS, pad_id=0, padding_side="left")
    assert rows[1]["position_ids"] == [0, 0, 0, 1]
    assert rows[1]["segments"] == [[2, 4, 1]]


def test_pad_batch_truncates_at_max_length():
    rows = pad_batch(SEQS, pad_id=0, max_length=3)
    assert [len(r["input_ids"]) for r in rows] == [3, 3, 3]
    assert rows[0]["input_ids"] == [11, 12, 13]
    assert rows[0]["segments"] == [[0, 3, 0]]


def test_pad_batch_rejects_unknown_side_and_mismatched_labels():
    with pytest.raises(ValueError, match="padding_side"):
        pad_batch(SEQS, 0, padding_side="middle")
    with pytest.raises(ValueError, match="differ"):
        pad_batch([{"input_ids": [1, 2], "labels": [1]}], 0)


def test_single_packed_row_matches_transformers_flattening_collator():
    ref = DataCollatorWithFlattening(return_tensors="np", return_position_ids=True)(
        [dict(s) for s in SEQS]
    )
    (row,) = pack_sequences(SEQS, max_length=100)
    assert row["input_ids"] == ref["input_ids"][0].tolist()
    assert row["labels"] == ref["labels"][0].tolist()
    assert row["position_ids"] == ref["position_ids"][0].tolist()
    assert row["segments"] == [[0, 4, 0], [4, 6, 1], [6, 9, 2]]


def test_pack_first_fit_fills_earlier_rows():
    rows = pack_sequences(SEQS, max_length=6)
    assert [[s[2] for s in r["segments"]] for r in rows] == [[0, 1], [2]]


seq_strategy = st.lists(
    st.lists(st.tuples(st.integers(0, 999), st.booleans()), min_size=0, max_size=20).map(
        lambda toks: {
            "input_ids": [t for t, _ in toks],
            "labels": [t if trained else IGNORE_INDEX for t, trained in toks],
        }
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(seqs=seq_strategy, max_length=st.integers(1, 40))
def test_pack_invariants(seqs, max_length):
    rows = pack_sequences(seqs, max_length)
    seen = []
    for row in rows:
        n = len(row["input_ids"])
        assert 0 < n <= max_length
        assert row["attention_mask"] == [1] * n
        assert [len(row[k]) for k in ("labels", "position_ids")] == [n, n]
        cursor = 0
        for start, end, index in row["segments"]:
            assert start == cursor
            cursor = end
            kept = min(len(seqs[index]["input_ids"]), max_length)
            assert end - start == kept
            assert row["input_ids"][start:end] == seqs[index]["input_ids"][:kept]
            assert row["position_ids"][start:end] == list(range(kept))
            assert row["labels"][start] == IGNORE_INDEX
            assert row["labels"][start + 1 : end] == seqs[index]["labels"][1:kept]
            seen.append(index)
        assert cursor == n
    assert sorted(seen) == [i for i, s in enumerate(seqs) if s["input_ids"]]


@settings(max_examples=100, deadline=None)
@given(seqs=seq_strategy, side=st.sampled_from(["left", "right"]))
def test_pad_invariants(seqs, side):
    rows = pad_batch(seqs, pad_id=-1, padding_side=side)
    width = max((len(s["input_ids"]) for s in seqs), default=0)
    for index, (seq, row) in enumerate(zip(seqs, rows, strict=True)):
        ((start, end, seg_index),) = row["segments"]
        assert seg_index == index and end - start == len(seq["input_ids"])
        assert len(row["input_ids"]) == width
        assert row["input_ids"][start:end] == seq["input_ids"]
        assert row["labels"][start:end] == seq["labels"]
        assert sum(row["attention_mask"]) == end - start
        assert all(row["labels"][i] == IGNORE_INDEX for i in range(width) if not start <= i < end)
