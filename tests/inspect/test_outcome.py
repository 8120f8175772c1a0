"""outcome: the processed row's JSONL line is byte for byte what json.dumps writes."""

import json

import pytest

from app.inspect.outcome import Processed


@pytest.mark.parametrize(
    ("ids", "labels", "mask"),
    [
        ([1, 2, 3], [-100, 2, 3], [1, 1, 1]),
        ([], [], []),
        ([0], [-100], [0]),
        ([5, 2**40, 7], [-100, -100, 7], [1, 0, 1]),
        ([2**70, 1], [-(2**70), 1], [1, 1]),  # over 64 bits: orjson refuses, str() writes it
        (list(range(300)), [-100] * 150 + list(range(150, 300)), [1] * 300),
    ],
)
def test_the_line_equals_json_dumps(ids, labels, mask):
    line = Processed(ids, labels, mask).jsonl()
    want = json.dumps({"input_ids": ids, "labels": labels, "attention_mask": mask}) + "\n"
    assert line == want
