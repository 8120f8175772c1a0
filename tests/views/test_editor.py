"""The playground's structured editor: tool calls, tool responses, reasoning, an image part, the
tools and template-variable boxes; checked against transformers' apply_chat_template, and the
permalink and no-JS form post round-tripping every field."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from starlette.datastructures import QueryParams

from app.views.examples import EXAMPLES
from app.views.forms import EditorState, body_messages, parse_state
from tests.helpers.forms import submitted_fields
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS
from tests.helpers.views import tok

FRAGMENT = {"HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"}


def post_fragment(client, fields):
    """The htmx re-render of the playground's result for these form fields (repeats kept)."""
    return client.post("/fragments/render", content=urlencode(fields), headers=FRAGMENT)


def editor_query(messages, **options) -> list[tuple[str, str]]:
    """The fields the editor posts for `messages` (as a user would fill them in by hand)."""
    fields = [("v", "1"), *options.items()]
    for i, m in enumerate(messages):
        content = m["content"]
        text = (
            content
            if isinstance(content, str)
            else "".join(p.get("text", "") for p in content if p["type"] == "text")
        )
        fields += [("role", m["role"]), ("content", text)]
        if m.get("reasoning_content"):
            fields.append((f"reasoning_{i}", m["reasoning_content"]))
        for call in m.get("tool_calls", []):
            fields += [
                (f"call_name_{i}", call["function"]["name"]),
                (f"call_id_{i}", call.get("id", "")),
                (f"call_arguments_{i}", json.dumps(call["function"]["arguments"])),
            ]
        if m["role"] == "tool":
            fields += [(f"tool_name_{i}", m["name"]), (f"tool_call_id_{i}", m["tool_call_id"])]
        for part in content if isinstance(content, list) else []:
            if part["type"] == "image":
                fields += [(f"image_width_{i}", str(part["width"]))]
                fields += [(f"image_height_{i}", str(part["height"]))]
            if part["type"] == "audio":
                fields += [(f"audio_seconds_{i}", str(part["duration_s"]))]
    return fields


def stat(html: str, name: str) -> int:
    found = re.search(rf'data-stat="{re.escape(name)}">(\d+)<', html)
    assert found, f"no {name} figure in the result"
    return int(found.group(1))


def qwen3_reference(messages, **kwargs):
    return tok("qwen3").apply_chat_template(messages, tools=WEATHER_TOOLS, tokenize=False, **kwargs)


def test_the_posted_tool_turns_render_as_apply_chat_template_does(client):
    fields = editor_query(
        TOOL_CALL_TURNS, tokenizer="qwen3", dialect="tokenizer", tools=json.dumps(WEATHER_TOOLS)
    )
    state = parse_state(QueryParams(urlencode(fields)), EditorState())
    assert body_messages(state.messages) == TOOL_CALL_TURNS
    body = {**state.render_request(), "add_special_tokens": False}
    api = client.post("/api/render", json=body).json()
    assert api["text"] == qwen3_reference(TOOL_CALL_TURNS)
    html = post_fragment(client, fields).text
    assert stat(html, "tokens") == len(api["input_ids"])
    # Per-part trained counts, counted from the API's own token list.
    for part in ("content", "reasoning", "tool_call", "markup"):
        want = sum(t["trained"] for t in api["tokens"] if t["part"] == part)
        assert stat(html, f"trained-{part}") == want, part
    assert stat(html, "trained-reasoning") > 0 and stat(html, "trained-tool_call") > 0


def test_leaving_reasoning_and_tool_calls_untrained_moves_exactly_their_tokens(client):
    base = editor_query(
        TOOL_CALL_TURNS, tokenizer="qwen3", dialect="tokenizer", tools=json.dumps(WEATHER_TOOLS)
    )
    trained = post_fragment(client, base).text
    off = [*base, ("train_reasoning", "off"), ("train_tool_calls", "off")]
    untrained = post_fragment(client, off).text
    assert stat(untrained, "trained-reasoning") == stat(untrained, "trained-tool_call") == 0
    moved = stat(trained, "trained-reasoning") + stat(trained, "trained-tool_call")
    assert stat(untrained, "trained") == stat(trained, "trained") - moved


def test_the_enable_thinking_box_is_offered_only_when_the_template_reads_it(client):
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    qwen = client.get("/?" + urlencode(editor_query(turns, tokenizer="qwen3", dialect="tokenizer")))
    chatml = client.get("/?" + urlencode(editor_query(turns, tokenizer="qwen3", dialect="chatml")))
    assert 'data-reads-thinking="1"' in qwen.text and 'data-reads-thinking="0"' in chatml.text
    assert ("enable_thinking", "on") in submitted_fields(qwen.text, "playground")
    assert not any(n == "enable_thinking" for n, _ in submitted_fields(chatml.text, "playground"))
    # Unticked, the template gets enable_thinking=false: Qwen3's prompt writes an empty think.
    prompt = [*editor_query(turns[:1], tokenizer="qwen3", dialect="tokenizer")]
    prompt.append(("add_generation_prompt", "on"))
    texts = {}
    for box in ("off", "on"):
        state = parse_state(
            QueryParams(urlencode([*prompt, ("enable_thinking", box)])), EditorState()
        )
        texts[box] = client.post("/api/render", json=state.render_request()).json()["text"]
    reference = tok("qwen3").apply_chat_template
    for box, value in (("off", False), ("on", True)):
        want = reference(
            turns[:1], tokenize=False, add_generation_prompt=True, enable_thinking=value
        )
        assert texts[box] == want
    assert texts["off"] != texts["on"]


def test_the_permalink_and_the_no_js_post_carry_every_structured_field(client):
    image_turn = {
        "role": "user",
        "content": [
            {"type": "image", "width": 640, "height": 480},
            {"type": "audio", "duration_s": 2.5},
            {"type": "text", "text": "Hi"},
        ],
    }
    turns = [image_turn, *TOOL_CALL_TURNS[1:]]
    # A pasted template: the page (a GET) leaves it for the form's post to run.
    fields = editor_query(
        turns,
        tokenizer="qwen3",
        dialect="custom",
        template="{% for m in messages %}{{ m.role }}: {{ m.content | tojson }}\n{% endfor %}",
        tools=json.dumps(WEATHER_TOOLS),
        chat_template_kwargs='{"custom_flag": 1}',
    )
    fields += [("enable_thinking", "off"), ("train_tool_calls", "off"), ("train_tool_calls", "on")]
    first = parse_state(QueryParams(urlencode(fields)), EditorState())
    page = client.get("/?" + urlencode(fields))
    assert page.status_code == 200 and "data-pending" in page.text
    # What the served page's form submits (no JavaScript) is the same state again.
    again = parse_state(
        QueryParams(urlencode(submitted_fields(page.text, "playground"))), EditorState()
    )
    assert again == first
    assert body_messages(again.messages) == turns
    assert again.template_kwargs() == {"custom_flag": 1, "enable_thinking": False}
    assert (again.train_reasoning, again.train_tool_calls) == (True, True)


def test_an_old_permalink_keeps_the_new_defaults():
    state = parse_state(QueryParams("v=1&role=user&content=a"), EditorState())
    assert (state.train_reasoning, state.train_tool_calls, state.enable_thinking) == (
        True,
        True,
        None,
    )
    assert state.render_request()["chat_template_kwargs"] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ([("tools", "[{bad")], "tools"),
        ([("chat_template_kwargs", "[1, 2]")], "chat_template_kwargs"),
        ([("chat_template_kwargs", '{"x": ')], "chat_template_kwargs"),
        (
            [("call_name_1", "f"), ("call_id_1", ""), ("call_arguments_1", "{'a': 1}")],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [("call_name_1", ""), ("call_id_1", ""), ("call_arguments_1", "{}")],
            "messages[1].tool_calls[0].function.name",
        ),
        ([("image_width_0", "wide"), ("image_height_0", "3")], "messages[0].content[0].width"),
        ([("audio_seconds_0", "-2")], "messages[0].content[0].duration_s"),
        (
            [("enable_thinking", "on"), ("chat_template_kwargs", '{"enable_thinking": false}')],
            "chat_template_kwargs",
        ),
    ],
)
def test_bad_typed_input_is_an_error_naming_its_field_not_a_stale_result(client, extra, field):
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    fields = [*editor_query(turns, tokenizer="qwen3", dialect="tokenizer"), *extra]
    fragment = post_fragment(client, fields)
    assert fragment.status_code == 422
    assert f'data-field="{field}"' in fragment.text
    assert "data-tokens" not in fragment.text  # the error replaces the result
    # The page itself (a permalink, the no-JS post) keeps what was typed and shows the error.
    page = client.get("/?" + urlencode(fields))
    assert page.status_code == 422 and f'data-field="{field}"' in page.text
    kept = parse_state(
        QueryParams(urlencode(submitted_fields(page.text, "playground"))), EditorState()
    )
    assert kept == parse_state(QueryParams(urlencode(fields)), EditorState())


def test_the_legend_lists_only_the_roles_and_parts_in_the_result(client):
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    html = post_fragment(client, editor_query(plain, tokenizer="qwen3", dialect="chatml")).text
    assert set(re.findall(r'data-legend="([^"]+)"', html)) == {"user", "assistant"}
    tools = editor_query(
        TOOL_CALL_TURNS, tokenizer="qwen3", dialect="tokenizer", tools=json.dumps(WEATHER_TOOLS)
    )
    html = post_fragment(client, tools).text
    # Qwen3's template writes its own system turn for the tools.
    assert set(re.findall(r'data-legend="([^"]+)"', html)) == {
        "system",
        "user",
        "assistant",
        "tool",
        "reasoning",
        "tool_call",
    }


def test_an_image_part_under_gemma3_is_one_collapsed_chip_of_256(client):
    turns = [
        {
            "role": "user",
            "content": [
                {"type": "image", "width": 64, "height": 64},
                {"type": "text", "text": "What?"},
            ],
        },
        {"role": "assistant", "content": "A cat."},
    ]
    fields = editor_query(turns, tokenizer="gemma3", dialect="tokenizer")
    html = post_fragment(client, fields).text
    assert html.count('data-rep="256"') == 1
    assert stat(html, "trained-image") == 0
    assert 'data-legend="image"' in html


def test_the_tool_use_example_renders_as_transformers_does(client):
    example = EXAMPLES["tool_use"]
    body = {
        "messages": example["messages"],
        "tools": example["tools"],
        "tokenizer": "qwen3",
        "dialect": "tokenizer",
    }
    text = client.post("/api/render", json=body).json()["text"]
    reference = tok("qwen3").apply_chat_template(
        example["messages"], tools=example["tools"], tokenize=False
    )
    assert text == reference and "<tool_call>" in text and "<think>" in text


def test_the_jobs_preset_trains_on_what_the_playground_rendered(client):
    from app.train.spec import JobSpec
    from app.views.jobs import playground_preset

    fields = editor_query(
        TOOL_CALL_TURNS, tokenizer="qwen3", dialect="tokenizer", tools=json.dumps(WEATHER_TOOLS)
    )
    fields.append(("train_reasoning", "off"))
    preset = playground_preset(QueryParams(urlencode(fields)))
    assert preset is not None
    spec = preset["spec"]
    # The typed arguments arrive parsed (an object, as the playground rendered them), with the
    # tools and the training switches.
    assert spec["data"]["conversations"] == [TOOL_CALL_TURNS]
    assert spec["tools"] == WEATHER_TOOLS and spec["train_reasoning"] is False
    assert "train_tool_calls" not in spec and spec["sample_prompts"] == ["Weather in Paris?"]
    JobSpec.model_validate(spec)
    # A typo in the editor's JSON offers no preset rather than a conversation it cannot render.
    typo = [(name, "[" if name == "tools" else value) for name, value in fields]
    assert playground_preset(QueryParams(urlencode(typo))) is None
