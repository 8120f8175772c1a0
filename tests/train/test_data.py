"""Job data: what a fine-tune trains on is what the engine renders for the same row, its own
tools and template variables included (checked against transformers and POST /api/render);
malformed row inputs are refused by index at submit."""

from __future__ import annotations

import pytest

from app.chat.tokens import IGNORE_INDEX
from app.errors import InputError
from app.settings import Settings
from app.train.data import load_data, parse_conversations, prompt_ids, render_examples
from app.train.spec import JobSpec
from tests.helpers.tokenizers import bundled
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS

CHAT = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def job_examples(spec: JobSpec) -> list[dict[str, list[int]]]:
    """The examples a job renders from its spec, as app.train.job does."""
    data = load_data(spec.data.model_dump(exclude_none=True), spec.sample_prompts)
    tokenizer = bundled(spec.render_spec().tokenizer)
    return render_examples(
        data.conversations, spec.render_spec(), tokenizer, Settings.from_env(), rows=data.rows
    )


def api_render(client, **body) -> dict:
    response = client.post("/api/render", json={"tokenizer": "qwen3", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_row_with_its_own_tools_trains_on_its_own_render(client):
    rows = [{"messages": TOOL_CALL_TURNS, "tools": WEATHER_TOOLS}, {"messages": CHAT}]
    spec = JobSpec(
        tokenizer="qwen3", dialect="tokenizer", max_length=512, data={"conversations": rows}
    )
    with_tools, plain = job_examples(spec)
    reference = bundled("qwen3").apply_chat_template(
        TOOL_CALL_TURNS, tools=WEATHER_TOOLS, tokenize=True, return_dict=True
    )["input_ids"]
    assert with_tools["input_ids"] == reference
    api = api_render(
        client, messages=TOOL_CALL_TURNS, tools=WEATHER_TOOLS, dialect="tokenizer", max_length=512
    )
    assert with_tools["labels"] == api["labels"]
    # The next row has no tools column: no tools block in its system turn.
    assert plain["input_ids"] == api_render(client, messages=CHAT, dialect="tokenizer")["input_ids"]


def test_job_level_tools_kwargs_and_training_switches_reach_every_row(client):
    spec = JobSpec(
        tokenizer="qwen3",
        dialect="tokenizer",
        max_length=512,
        tools=WEATHER_TOOLS,
        chat_template_kwargs={"enable_thinking": True},
        train_reasoning=False,
        train_tool_calls=False,
        data={"conversations": [TOOL_CALL_TURNS]},
    )
    (example,) = job_examples(spec)
    api = api_render(
        client,
        messages=TOOL_CALL_TURNS,
        tools=WEATHER_TOOLS,
        dialect="tokenizer",
        max_length=512,
        chat_template_kwargs={"enable_thinking": True},
        train_reasoning=False,
        train_tool_calls=False,
    )
    assert example == {"input_ids": api["input_ids"], "labels": api["labels"]}
    untrained = {
        t["part"]
        for t, label in zip(api["tokens"], example["labels"], strict=True)
        if label == IGNORE_INDEX
    }
    assert {"reasoning", "tool_call"} <= untrained
    assert not any(t["trained"] for t in api["tokens"] if t["part"] in ("reasoning", "tool_call"))


def test_sample_prompts_see_the_jobs_template_variables():
    spec = JobSpec(
        tokenizer="qwen3", dialect="tokenizer", chat_template_kwargs={"enable_thinking": False}
    )
    want = bundled("qwen3").apply_chat_template(
        [{"role": "user", "content": "Hi?"}],
        add_generation_prompt=True,
        enable_thinking=False,
        return_dict=True,
    )["input_ids"]
    assert prompt_ids("Hi?", spec.render_spec(), bundled("qwen3")) == want


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (
            {"messages": CHAT, "chat_template_kwargs": [1]},
            "data.conversations[1].chat_template_kwargs",
        ),
        ({"messages": CHAT, "tools": "get_weather"}, "data.conversations[1].tools"),
        (
            {"messages": CHAT, "chat_template_kwargs": {"messages": []}},
            "data.conversations[1].chat_template_kwargs",
        ),
    ],
)
def test_malformed_row_inputs_are_refused_by_index(row, field):
    assert len(parse_conversations([{"messages": CHAT}, CHAT])) == 2
    with pytest.raises(InputError) as err:
        parse_conversations([{"messages": CHAT}, row])
    assert err.value.field == field and "data.conversations[1]" in err.value.message


def test_a_reserved_template_variable_in_the_job_is_refused_naming_the_field():
    spec = JobSpec(tokenizer="qwen3", chat_template_kwargs={"add_generation_prompt": True})
    with pytest.raises(InputError) as err:
        spec.render_spec()
    assert err.value.field == "chat_template_kwargs"
