"""Modern message fields (DESIGN §3.1): the developer role, content as a list of parts, and a
message's own `train` / `weight`, under built-in dialects and real templates."""

from __future__ import annotations

import pytest

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.errors import InputError
from tests.helpers.tokenizers import bundled

TWO_ANSWERS = [
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
    {"role": "assistant", "content": "A2"},
]


def _render(messages, dialect="chatml", tokenizer="qwen3", **options):
    spec = RenderSpec(tokenizer=tokenizer, dialect=dialect, **options)
    return render(parse_messages(messages), get_dialect(dialect), bundled(tokenizer), spec)


def _trained(rendering) -> str:
    return "".join(t.text for t in rendering.tokens if t.trained)


@pytest.mark.parametrize("dialect", ["chatml", "llama3", "gemma", "llama2", "alpaca"])
def test_builtins_write_a_developer_message_as_their_system_message(dialect):
    tokenizer = {"chatml": "qwen3", "llama3": "llama3", "gemma": "gemma3"}.get(dialect, "llama2")
    as_system = [{"role": "system", "content": "Be brief."}, *TWO_ANSWERS[:2]]
    as_developer = [{"role": "developer", "content": "Be brief."}, *TWO_ANSWERS[:2]]
    want = _render(as_system, dialect, tokenizer)
    got = _render(as_developer, dialect, tokenizer)
    assert got.input_ids == want.input_ids and got.labels == want.labels
    assert {t.role for t in got.tokens if t.message == 0} == {"developer"}


def test_a_template_gets_the_developer_role_as_given():
    messages = [{"role": "developer", "content": "Be brief."}, *TWO_ANSWERS[:2]]
    want = bundled("qwen3").apply_chat_template(messages, tokenize=False)
    assert _render(messages, "tokenizer").text == want


def test_text_parts_are_joined_for_a_builtin():
    parts = [{"type": "text", "text": "Q"}, {"type": "text", "text": "1"}]
    got = _render([{"role": "user", "content": parts}, TWO_ANSWERS[1]])
    assert got.input_ids == _render(TWO_ANSWERS[:2]).input_ids


def test_a_builtin_refuses_an_image_part_naming_the_dialect():
    parts = [{"type": "image"}, {"type": "text", "text": "What is this?"}]
    with pytest.raises(InputError) as err:
        _render([{"role": "user", "content": parts}, TWO_ANSWERS[1]], "llama3", "llama3")
    assert err.value.field == "messages[0].content[0]"
    assert "image part" in err.value.message and "llama3 format" in err.value.message


# Writes each message's content as JSON: what the template was given, list or string.
AS_GIVEN = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | tojson }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_gets_the_parts_list_as_transformers_passes_it():
    parts = [{"type": "audio"}, {"type": "text", "text": "What is this sound?"}]
    messages = [{"role": "user", "content": parts}, {"role": "assistant", "content": "A cat."}]
    want = bundled("qwen3").apply_chat_template(messages, chat_template=AS_GIVEN, tokenize=False)
    got = _render(messages, "custom", template=AS_GIVEN)
    assert got.text == want and '[{"type": "audio"}, {"type": "text"' in got.text
    assert _trained(got) == '"A cat."<|im_end|>'


def test_a_bad_part_is_refused_by_name():
    with pytest.raises(InputError) as err:
        parse_messages([{"role": "user", "content": [{"type": "video_frame"}]}])
    assert err.value.field == "messages[0].content[0]"


@pytest.mark.parametrize("flag", [{"weight": 0}, {"train": False}])
def test_weight_0_or_train_false_leaves_an_assistant_turn_untrained(flag):
    messages = [*TWO_ANSWERS[:1], {**TWO_ANSWERS[1], **flag}, *TWO_ANSWERS[2:]]
    trained = _trained(_render(messages))
    assert "A1" not in trained and "A2<|im_end|>" in trained


@pytest.mark.parametrize("flag", [{"weight": 1}, {"train": True}])
def test_train_true_trains_an_assistant_turn_under_last_assistant(flag):
    messages = [*TWO_ANSWERS[:1], {**TWO_ANSWERS[1], **flag}, *TWO_ANSWERS[2:]]
    assert _trained(_render(TWO_ANSWERS, train_on="last_assistant")) == "A2<|im_end|>"
    trained = _trained(_render(messages, train_on="last_assistant"))
    assert trained == "A1<|im_end|>A2<|im_end|>"


def test_train_false_holds_under_a_template_and_under_all():
    messages = [*TWO_ANSWERS[:1], {**TWO_ANSWERS[1], "train": False}, *TWO_ANSWERS[2:]]
    assert "A1" not in _trained(_render(messages, "tokenizer"))
    everything = _trained(_render(messages, train_on="all"))
    assert "A1" not in everything and "Q1" in everything and "A2" in everything


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ({"weight": 2}, "weight"),
        ({"train": "yes"}, "train"),
        ({"train": True, "weight": 0}, "weight"),
    ],
)
def test_bad_train_or_weight_is_refused_by_name(flag, field):
    with pytest.raises(InputError) as err:
        parse_messages([TWO_ANSWERS[0], {**TWO_ANSWERS[1], **flag}])
    assert err.value.field == f"messages[1].{field}"
