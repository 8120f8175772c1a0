"""Images in a rendering: placeholders expanded as the processor does, never trained, and the
lints that say when placeholders and images disagree."""

from __future__ import annotations

import pytest

from app.chat.messages import parse_row
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from tests.helpers.lint import by_code, lint_conversation
from tests.helpers.tokenizers import bundled
from tests.zoo.templates import template_source

PICTURE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "width": 640, "height": 480},
        ],
    },
    {"role": "assistant", "content": "A cat."},
]


def _render(tokenizer: str, template: str, train_on: str = "assistant"):
    spec = RenderSpec(dialect="custom", template=template_source(template), train_on=train_on)
    conversation = parse_row({"messages": PICTURE})
    return render(conversation, get_dialect("custom"), bundled(tokenizer), spec)


@pytest.mark.parametrize(
    ("tokenizer", "template", "token", "count"),
    [
        ("gemma3", "trl/gemma3", "<image_soft_token>", 256),
        # Qwen3's vocabulary is Qwen3-VL's: 640x480 stays 640x480 -> 40*30/4
        ("qwen3", "trl/qwen3_vl", "<|image_pad|>", 300),
    ],
)
def test_image_placeholders_expand_and_are_never_trained(tokenizer, template, token, count):
    r = _render(tokenizer, template)
    image = [t for t in r.tokens if t.part == "image"]
    assert sum(t.text == token for t in image) == count
    assert not any(t.trained for t in image)
    assert all(t.role == "user" for t in image)
    assert "".join(t.text for t in r.tokens) == r.text
    assert "".join(t.text for t in r.tokens if t.trained).startswith("A cat.")


def test_images_stay_untrained_even_under_train_on_all():
    r = _render("gemma3", "trl/gemma3", train_on="all")
    assert not any(t.trained for t in r.tokens if t.part == "image")
    assert all(t.trained for t in r.tokens if t.part != "image")


def test_a_pre_tokenized_row_that_trains_image_tokens_is_said():
    from tests.lint.test_tokenized_checks import lint_row

    tok = bundled("gemma3")
    soft = tok.convert_tokens_to_ids("<image_soft_token>")
    ids = [2, 105, *[soft] * 4, 106, 9259, 106]
    findings = lint_row(tok, ids, list(ids), "<end_of_turn>")
    assert by_code(findings, "image-trained")
    quiet = lint_row(tok, ids, [-100] * 7 + ids[7:], "<end_of_turn>")
    assert by_code(quiet, "image-trained") == []


def test_a_template_that_drops_the_image_is_an_image_count_mismatch():
    text_only = (
        "{% for m in messages %}<start_of_turn>{{ m.role }}\n"
        "{% if m.content is string %}{{ m.content }}{% else %}{{ m.content[0].text }}{% endif %}"
        "<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )
    _, findings, _ = lint_conversation("gemma3", "custom", PICTURE, template=text_only)
    hits = by_code(findings, "image-count-mismatch")
    assert hits and "1 image(s) but the template wrote 0" in hits[0].message
    _, quiet, _ = lint_conversation(
        "gemma3", "custom", PICTURE, template=template_source("trl/gemma3")
    )
    assert by_code(quiet, "image-count-mismatch") == []
