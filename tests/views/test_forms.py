"""Editor form state: what a browser submits, and what a permalink query restores."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from app.errors import InputError
from app.views.forms import EditorState, Target, parse_state


def test_a_query_naming_no_field_keeps_the_defaults():
    defaults = EditorState(messages=[{"role": "user", "content": "x"}])
    assert parse_state(QueryParams("utm_source=mail"), defaults) is defaults


def test_a_hand_made_link_without_the_marker_keeps_the_documented_defaults():
    defaults = EditorState(messages=[{"role": "user", "content": "x"}])
    state = parse_state(QueryParams("tokenizer=llama3&dialect=llama3"), defaults)
    assert (state.tokenizer, state.dialect, state.messages) == (
        "llama3",
        "llama3",
        defaults.messages,
    )
    assert state.train_on_eot is True and state.add_generation_prompt is False
    state = parse_state(QueryParams("role=user&content=Hi&train_on_eot=off"), defaults)
    assert state.messages[0]["content"] == "Hi" and len(state.messages) == 1
    assert state.train_on_eot is False
    # What the form writes (with the marker): an absent box is unticked.
    assert parse_state(QueryParams("v=1&role=user&content=Hi"), defaults).train_on_eot is False


def test_a_submitted_form_round_trips_into_the_render_body():
    query = QueryParams(
        "v=1&tokenizer=llama3&dialect=llama3&train_on=last_assistant"
        "&max_length=12&role=user&content=a%0D%0Ab&role=assistant&content=c"
    )
    state = parse_state(query, EditorState())
    assert state.render_request() == {
        "messages": [{"role": "user", "content": "a\nb"}, {"role": "assistant", "content": "c"}],
        "tokenizer": "llama3",
        "dialect": "llama3",
        "template": None,
        "train_on": "last_assistant",
        "train_on_eot": False,
        "add_generation_prompt": False,
        "max_length": 12,
        "add_special_tokens": False,
        "tools": None,
        "chat_template_kwargs": None,
        "train_reasoning": True,
        "train_tool_calls": True,
    }


def test_the_add_special_tokens_box_reaches_the_render_body():
    state = parse_state(QueryParams("v=1&role=user&content=a&add_special_tokens=on"), EditorState())
    assert state.render_request()["add_special_tokens"] is True


def test_targets_pair_up_and_custom_keeps_its_template():
    query = QueryParams(
        "v=1&target_tokenizer=qwen3&target_dialect=custom&target_template=T"
        "&target_tokenizer=llama3&target_dialect=llama3&target_template="
    )
    state = parse_state(query, EditorState())
    assert state.targets == [Target("qwen3", "custom", "T"), Target("llama3", "llama3", None)]
    assert state.render_request(state.targets[0])["template"] == "T"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("v=1&max_length=-3", "max_length"),
        ("v=1&train_on=everything", "train_on"),
        ("v=1&role=user", "messages"),
        ("v=1&padding_side=middle", "padding_side"),
    ],
)
def test_bad_values_name_their_field(query, field):
    with pytest.raises(InputError) as caught:
        parse_state(QueryParams(query), EditorState())
    assert caught.value.field == field
