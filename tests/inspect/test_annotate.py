"""Generation-annotated templates checked against transformers itself: the text is byte-identical
and `return_assistant_tokens_mask` (what TRL's assistant_only_loss uses) marks the answers."""

from __future__ import annotations

import pytest

from app.inspect.annotate import annotate_generation, scan, split_terms
from app.inspect.export import export_generation_template
from app.settings import Settings
from tests.helpers.tokenizers import bundled

CHATS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}],
    [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "A fruit?"},
        {"role": "assistant", "content": "  Apple. "},
    ],
]


def test_scan_round_trips_and_respects_strings():
    source = "a{{ '}}' + x }}b{%- if y -%}c{# {{ #}}d"
    tags = scan(source)
    assert "".join(t.text for t in tags) == source
    assert [t.kind for t in tags] == ["data", "var", "data", "block", "data", "comment", "data"]


def test_split_terms_top_level_only():
    assert split_terms("'a' + f(x + 1) ~ m['content'] | trim") == [
        "'a' ",
        "+ f(x + 1) ",
        "~ m['content'] | trim",
    ]


@pytest.mark.parametrize("name", ["smollm2", "gemma3", "qwen3"])
def test_annotated_template_matches_transformers(name):
    tokenizer = bundled(name)
    found = export_generation_template(tokenizer, "tokenizer", Settings.from_env())
    assert found["verification"]["ok"], found["notes"]
    annotated = found["template"]
    assert "{% generation %}" in annotated
    for chat in CHATS:
        want = tokenizer.apply_chat_template(chat, tokenize=False)
        got = tokenizer.apply_chat_template(chat, tokenize=False, chat_template=annotated)
        assert got.encode() == want.encode()
        out = tokenizer.apply_chat_template(
            chat,
            chat_template=annotated,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        trained = tokenizer.decode(
            [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
        )
        for message in chat:
            if message["role"] == "assistant":
                assert message["content"].strip() in trained
            else:
                assert message["content"] not in trained


def test_template_that_builds_turns_in_set_is_refused():
    found = export_generation_template(bundled("llama3"), "tokenizer", Settings.from_env())
    assert found["template"] is None
    assert not found["verification"]["excludes_headers"]


def test_whitespace_control_kept():
    source = "{% for m in messages %}\n  {{- m['content'] + '<e>' -}}\n{% endfor %}"
    out = annotate_generation(source, eot_text="<e>")
    assert out.wrapped == 1
    assert out.template.count("{%-") == 1 and out.template.count("-%}") == 1
