"""Compare aligned by message: each row holds exactly the tokens the reference gives that
message, and the sentences name real differences (and none where the columns agree)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from app.chat.spec import RenderSpec
from app.service.compare import align, quote, row_of_tokens
from app.service.render import render_messages

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]


def rendering(settings, tokenizer: str, dialect: str, **spec):
    return render_messages(
        MESSAGES, RenderSpec(tokenizer=tokenizer, dialect=dialect, **spec), settings
    ).rendering


def test_each_row_holds_the_tokens_the_reference_adds_for_that_message(settings):
    # SmolLM2's own template renders every prefix of this conversation as a prefix of the whole,
    # so the tokens message k adds are len(prefix k+1) - len(prefix k), as transformers gives.
    reference = AutoTokenizer.from_pretrained(settings.assets_dir / "smollm2")
    lengths = [
        len(reference(reference.apply_chat_template(MESSAGES[:k], tokenize=False))["input_ids"])
        if k
        else 0
        for k in range(len(MESSAGES) + 1)
    ]
    expected = [b - a for a, b in zip(lengths, lengths[1:], strict=False)]
    rows = align(
        MESSAGES, [rendering(settings, "smollm2", "tokenizer")], [("smollm2", "tokenizer")]
    )
    counts = {row.key: len(row.cells[0].tokens) for row in rows}
    # What the template writes before the first message (here its opening token, which the
    # engine attributes to no message) belongs to the first prefix in the reference.
    shown = [counts.pop("before", 0) + counts.pop("0"), *counts.values()]
    assert list(counts) == ["1", "2", "3", "4"]
    assert shown == expected


def test_llama2_pairs_open_with_a_bos_that_belongs_to_the_next_message(settings):
    r = rendering(settings, "llama2", "llama2")
    rows = row_of_tokens(r)
    assert rows[0] == "before"
    second_bos = [t.index for t in r.tokens if t.text == "<s>"][1]
    assert rows[second_bos] == "3"  # the <s> before the second [INST] opens user message 3
    assert sorted({key for key in rows}) == ["0", "1", "2", "3", "4", "before"]


def test_differences_name_the_think_scaffold_and_llama2s_trailing_space(settings):
    targets = [("qwen3", "tokenizer"), ("smollm2", "chatml"), ("llama2", "llama2")]
    rows = align(MESSAGES, [rendering(settings, t, d) for t, d in targets], targets)
    last = next(row for row in rows if row.key == "4")
    assert "qwen3 trains `<think>\\n\\n</think>\\n\\n` before the content" in last.differences
    assert "llama2 trains a space after the content" in last.differences
    qwen3, smollm2, llama2 = last.cells
    assert qwen3 and smollm2 and llama2
    assert qwen3.differs and llama2.differs and not smollm2.differs
    q, l2 = rendering(settings, "qwen3", "tokenizer"), rendering(settings, "llama2", "llama2")
    assert {q.tokens[i].text for i in qwen3.marked} >= {"<think>", "</think>"}
    assert [l2.tokens[i].text for i in sorted(llama2.marked)] == [" "]


def test_columns_that_agree_have_no_differences(settings):
    targets = [("qwen3", "chatml"), ("qwen3", "chatml")]
    rows = align(MESSAGES, [rendering(settings, t, d) for t, d in targets], targets)
    assert [row.differences for row in rows] == [[] for _ in rows]


def test_an_untrained_end_of_turn_is_named_when_another_column_trains_it(settings):
    targets = [("qwen3", "chatml"), ("llama3", "llama3")]
    renderings = [
        rendering(settings, "qwen3", "chatml", train_on_eot=False),
        rendering(settings, "llama3", "llama3"),
    ]
    rows = align(MESSAGES, renderings, targets)
    last = next(row for row in rows if row.key == "4")
    assert "qwen3 does not train its end of turn `<|im_end|>`" in last.differences


def test_a_failed_column_is_left_out_of_the_comparison(settings):
    targets = [("qwen3", "chatml"), ("nope", "chatml"), ("qwen3", "chatml")]
    rows = align(MESSAGES, [rendering(settings, "qwen3", "chatml"), None, None], targets)
    assert all(row.cells[1] is None and not row.differences for row in rows)


@pytest.mark.parametrize(
    ("text", "shown"),
    [(" ", "a space"), ("\n", "a newline"), ("<s>", "`<s>`"), ("x" * 60, "`" + "x" * 39 + "…`")],
)
def test_quote(text, shown):
    assert quote(text) == shown
