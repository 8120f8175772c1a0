"""Hypothesis strategies for conversations shaped like chat datasets.

Example: conversations_of(st.text()).example() -> [Message("user", "x"), Message("assistant", "")]
"""

from __future__ import annotations

from hypothesis import strategies as st

from app.chat.messages import Message


def conversations_of(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[Message]]:
    """Conversations for property tests: an optional system message, then one to three
    user/assistant exchanges, every content drawn from `text`."""

    @st.composite
    def conversations(draw: st.DrawFn) -> list[Message]:
        conv = [Message("system", draw(text))] if draw(st.booleans()) else []
        for _ in range(draw(st.integers(1, 3))):
            conv += [Message("user", draw(text)), Message("assistant", draw(text))]
        return conv

    return conversations()
