"""Job data parsing: rows the engine would render differently from what a job trains on are
refused by name rather than trained on silently."""

from __future__ import annotations

import pytest

from app.errors import InputError
from app.train.data import parse_conversations

CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def test_a_row_with_its_own_tools_is_refused_by_index():
    assert len(parse_conversations([{"messages": CHAT}, CHAT])) == 2
    with pytest.raises(InputError) as err:
        parse_conversations([{"messages": CHAT}, {"messages": CHAT, "tools": []}])
    assert err.value.field == "data.conversations[1]" and "tools" in err.value.message
