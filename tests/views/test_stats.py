"""Summary figures and marker positions, checked against counts made independently of the engine."""

from __future__ import annotations

from app.views.stats import markers, summarize
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


def test_llama3_markers_sit_where_the_ids_are():
    tokenizer = tok("llama3")
    rendering = rendered(TURNS, "llama3", "llama3")
    found = markers(rendering, tokenizer)
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    bos = tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    want_eot = [i for i, x in enumerate(rendering.input_ids) if x == eot]
    assert found["BOS"]["first"] == [i for i, x in enumerate(rendering.input_ids) if x == bos]
    assert found["BOS"]["first"] == [0]
    assert found["end of turn"]["count"] == len(TURNS) == len(want_eot)
    assert found["end of turn"]["first"] == want_eot


def test_marker_lists_are_cut_but_counted():
    many = [("user", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj"), ("assistant", "k")]
    found = markers(rendered(many, "chatml", "qwen3"), tok("qwen3"))
    newline = found["newline"]
    assert len(newline["first"]) == 8 and newline["count"] == 8 + newline["more"] > 8
