"""Mask policy on message spans: which character ranges are trained."""

from __future__ import annotations

import pytest

from app.chat.masking import MaskPolicy, trained_ranges
from app.chat.tokens import MessageSpan
from app.errors import InputError

# "<u>Q</u><a>A1</a><a>A2</a>" style layout: (message, role, start, end, content, eot)
SPANS = [
    MessageSpan(0, "user", 0, 10, 3, 5, 5, 9),
    MessageSpan(1, "assistant", 10, 20, 13, 15, 16, 19),
    MessageSpan(2, "assistant", 20, 30, 23, 25, None, None),
]


def test_assistant_trains_content_gap_and_eot():
    assert trained_ranges(SPANS, MaskPolicy(), 30) == [(13, 19, 1), (23, 25, 2)]


def test_last_assistant_and_no_eot():
    assert trained_ranges(SPANS, MaskPolicy("last_assistant"), 30) == [(23, 25, 2)]
    assert trained_ranges(SPANS, MaskPolicy(train_on_eot=False), 30) == [(13, 15, 1), (23, 25, 2)]


def test_all_trains_everything():
    assert trained_ranges(SPANS, MaskPolicy("all"), 30) == [(0, 30, None)]


def test_generation_spans_are_used_as_given_and_eot_removed_on_request():
    gen = [(13, 19), (23, 25)]
    assert trained_ranges(SPANS, MaskPolicy(), 30, gen) == [(13, 19, 1), (23, 25, 2)]
    assert trained_ranges(SPANS, MaskPolicy(train_on_eot=False), 30, gen) == [
        (13, 16, 1),
        (23, 25, 2),
    ]
    assert trained_ranges(SPANS, MaskPolicy("last_assistant"), 30, gen) == [(23, 25, 2)]


def test_unknown_policy_is_refused():
    with pytest.raises(InputError) as err:
        MaskPolicy("users")
    assert err.value.field == "train_on"
