"""Summary figures and marker positions, checked against counts made independently of the engine."""

from __future__ import annotations

from app.views.stats import summarize
from tests.helpers.views import rendered, tok

TURNS = [
    ("system", "Be brief."),
    ("user", "What is 2 + 2?"),
    ("assistant", "4."),
    ("user", "And 3 + 3?"),
    ("assistant", "6."),
]


def test_overhead_is_everything_but_the_content_tokens():
    # Reference: ChatML encodes each content on its own, so content tokens = sum of those lengths.
    tokenizer = tok("qwen3")
    summary = summarize(rendered(TURNS, "chatml", "qwen3"))
    content = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for _, c in TURNS)
    assert summary.tokens - summary.overhead == content
    assert summary.trained == sum(r.trained for r in summary.roles)
    assert [r.role for r in summary.roles] == ["system", "user", "assistant"]
    assert {r.role: r.trained for r in summary.roles} == {
        "system": 0,
        "user": 0,
        "assistant": summary.trained,
    }
