"""Tools, template kwargs and reasoning/tool-call masking (DESIGN §3.1) on qwen3's own template:
the text equals apply_chat_template(messages, tools=..., **kwargs), and the parts that
train_reasoning / train_tool_calls switch off are untrained."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.jinja import template_source
from app.dialects.registry import get_dialect
from app.errors import InputError, LimitError
from app.settings import Settings
from tests.helpers.tokenizers import bundled
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS

TOOLS, MESSAGES = WEATHER_TOOLS, TOOL_CALL_TURNS


def _render(messages=MESSAGES, **options):
    spec = RenderSpec(tokenizer="qwen3", dialect="tokenizer", **options)
    return render(parse_messages(messages), get_dialect("tokenizer"), bundled("qwen3"), spec)


def _trained_text(rendering) -> str:
    return "".join(t.text for t in rendering.tokens if t.trained)


def test_tools_reach_the_template_as_apply_chat_template_passes_them():
    want = bundled("qwen3").apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False)
    got = _render(tools=TOOLS)
    assert got.text == want
    assert '"name": "get_weather", "description": "Weather in a city"' in got.text


def test_chat_template_kwargs_reach_the_template():
    messages = MESSAGES[:1]
    want = bundled("qwen3").apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    got = _render(
        messages, add_generation_prompt=True, chat_template_kwargs={"enable_thinking": False}
    )
    assert got.text == want
    assert got.text.endswith("<think>\n\n</think>\n\n")


def test_arguments_as_a_json_string_reach_the_template_as_given():
    as_string = json.loads(json.dumps(MESSAGES))
    call = as_string[1]["tool_calls"][0]["function"]
    call["arguments"] = json.dumps(call["arguments"])
    want = bundled("qwen3").apply_chat_template(as_string, tools=TOOLS, tokenize=False)
    assert _render(as_string, tools=TOOLS).text == want


@pytest.mark.parametrize("name", ["messages", "add_generation_prompt", "bos_token", "tools"])
def test_reserved_template_variables_are_refused_by_name(name):
    with pytest.raises(InputError) as err:
        RenderSpec(chat_template_kwargs={name: 1})
    assert err.value.field == "chat_template_kwargs"
    assert repr(name) in err.value.message


def test_spec_stays_hashable_and_equal_with_tools():
    a = RenderSpec(tools=TOOLS, chat_template_kwargs={"enable_thinking": True})
    b = RenderSpec(
        tools=json.loads(json.dumps(TOOLS)), chat_template_kwargs={"enable_thinking": 1 == 1}
    )
    assert a == b and hash(a) == hash(b)
    assert a.template_variables() == {"tools": TOOLS, "enable_thinking": True}


def test_tools_are_bounded_by_max_chars():
    settings = Settings.from_env(max_chars=100)
    spec = RenderSpec(tokenizer="qwen3", dialect="tokenizer", tools=TOOLS)
    with pytest.raises(LimitError) as err:
        render(
            parse_messages(MESSAGES[:1]), get_dialect("tokenizer"), bundled("qwen3"), spec, settings
        )
    assert err.value.field == "tools" and "max_chars" in err.value.message


def test_reasoning_and_tool_calls_are_trained_by_default():
    trained = _trained_text(_render(tools=TOOLS))
    assert "I should call the tool." in trained and "It is mild." in trained
    assert '"name": "get_weather", "arguments": {"city": "Paris"}' in trained
    assert '{"temp": 18}' not in trained


def test_train_reasoning_false_leaves_every_reasoning_part_untrained():
    rendering = _render(tools=TOOLS, train_reasoning=False)
    assert not [t for t in rendering.tokens if t.part == "reasoning" and t.trained]
    trained = _trained_text(rendering)
    assert "I should call" not in trained and "mild" not in trained
    assert "It is 18 °C.<|im_end|>" in trained and "get_weather" in trained


def test_train_tool_calls_false_leaves_the_tool_call_untrained():
    rendering = _render(tools=TOOLS, train_tool_calls=False)
    assert [t for t in rendering.tokens if t.part == "tool_call"]
    assert not [t for t in rendering.tokens if t.part == "tool_call" and t.trained]
    trained = _trained_text(rendering)
    assert "get_weather" not in trained and "I should call the tool." in trained
    assert "It is 18 °C.<|im_end|>" in trained


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tools": [{"type": "function", "function": {"name": "a\ud800"}}]}, "tools[0]"),
        ({"chat_template_kwargs": {"note": "a\ud800"}}, "chat_template_kwargs.note"),
    ],
)
def test_a_lone_surrogate_in_tools_or_kwargs_is_refused_by_name(options, field):
    with pytest.raises(InputError) as err:
        RenderSpec(**options)
    assert err.value.field.startswith(field) and "surrogate" in err.value.message


def test_a_named_tool_use_template_is_chosen_when_tools_are_given():
    tokenizer = SimpleNamespace(chat_template={"default": "plain", "tool_use": "with tools"})
    assert template_source("tokenizer", tokenizer, RenderSpec()) == "plain"
    assert template_source("tokenizer", tokenizer, RenderSpec(tools=TOOLS)) == "with tools"
