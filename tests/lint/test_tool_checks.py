"""The modern-conversation codes (tool calls, tool lists, tool results, reasoning): a real case
that triggers each, on the bundled tokenizers and their own or zoo templates, and a near-identical
one that does not. Where the cause is a template, transformers' apply_chat_template shows it."""

from __future__ import annotations

import pytest

from tests.helpers.lint import by_code, lint_conversation
from tests.helpers.tokenizers import bundled
from tests.zoo.templates import template_source

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


def call(*functions: dict, ids: tuple[str, ...] = ()) -> dict:
    calls = [{"type": "function", "function": f} for f in functions]
    for item, ident in zip(calls, ids, strict=False):
        item["id"] = ident
    return assistant("", tool_calls=calls)


def tool(content: str, **extra) -> dict:
    return {"role": "tool", "content": content, **extra}


WEATHER_CHAT = [
    user("Weather in Paris?"),
    call(WEATHER, ids=("call_1",)),
    tool("18", tool_call_id="call_1", name="get_weather"),
    assistant("It is 18 °C."),
]


@pytest.mark.parametrize("tokenizer", ["smollm2", "llama3"])
def test_tool_calls_dropped_by_templates_that_write_only_content(tokenizer):
    tok = bundled(tokenizer)
    text = tok.apply_chat_template(WEATHER_CHAT, tokenize=False)
    assert "get_weather" not in text and "Paris" in text  # only the user's words, no call
    rendering, findings, _ = lint_conversation(tokenizer, "tokenizer", WEATHER_CHAT)
    assert rendering.text == text
    (hit,) = by_code(findings, "tool-calls-dropped")
    assert hit.severity == "error"
    assert "assistant message(s) 1 (get_weather)" in hit.message
    assert "never learns to call" in hit.message
    # What is trained of that turn is its bare end-of-turn marker.
    trained = [rendering.tokens[i] for i in hit.tokens if rendering.tokens[i].trained]
    assert trained and all(t.message == 1 and t.part == "markup" for t in trained)
    assert by_code(findings, "empty-answer") == []  # the data has an answer: its call


@pytest.mark.parametrize("tokenizer", ["qwen3", "gptoss"])
def test_tool_calls_written_by_tool_templates_are_quiet(tokenizer):
    rendering, findings, _ = lint_conversation(tokenizer, "tokenizer", WEATHER_CHAT)
    assert "get_weather" in rendering.text
    assert by_code(findings, "tool-calls-dropped") == []
    assert by_code(findings, "tool-call-unmatched") == []


def test_tool_calls_dropped_is_a_warning_for_untrained_turns():
    chat = [*WEATHER_CHAT, user("And in Rome?"), assistant("Let me check.")]
    _, findings, _ = lint_conversation("smollm2", "chatml", chat, train_on="last_assistant")
    (hit,) = by_code(findings, "tool-calls-dropped")
    assert hit.severity == "warning" and "untrained" in hit.message


NAME_ONLY = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% for tc in m.tool_calls or [] %}<tool_call>{{ tc.function.name }}"
    "{{ ARGS }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
)


@pytest.mark.parametrize(
    "args, dropped", [("()", True), ("({{ tc.function.arguments | tojson }})", False)]
)
def test_tool_calls_dropped_when_only_the_name_is_written(args, dropped):
    template = NAME_ONLY.replace("{{ ARGS }}", args)
    rendering, findings, _ = lint_conversation("qwen3", "custom", WEATHER_CHAT, template=template)
    assert "<tool_call>get_weather(" in rendering.text
    assert ('"city"' not in rendering.text) is dropped
    assert bool(by_code(findings, "tool-calls-dropped")) is dropped


def test_tool_calls_with_string_arguments_are_recognised():
    chat = [
        user("Weather in Paris?"),
        call({"name": "get_weather", "arguments": '{"city": "Paris"}'}),
        tool("18"),
        assistant("18 °C."),
    ]
    _, findings, _ = lint_conversation(
        "qwen3", "custom", chat, template=template_source("trl/qwen3")
    )
    assert by_code(findings, "tool-calls-dropped") == []


def tools_not_rendered(tokenizer: str, chat: list[dict], **options) -> list:
    return by_code(
        lint_conversation(tokenizer, "tokenizer", chat, **options)[1], "tools-not-rendered"
    )


def test_tools_not_rendered_by_a_template_without_a_tool_list():
    chat = [user("Weather in Paris?"), assistant("I will look it up.")]
    text = bundled("smollm2").apply_chat_template(chat, tools=TOOLS, tokenize=False)
    assert "get_weather" not in text  # transformers passes the tools; the template ignores them
    (hit,) = tools_not_rendered("smollm2", chat, tools=TOOLS)
    assert hit.severity == "warning"
    assert "1 tool(s) (get_weather)" in hit.message and "never shown" in hit.message
    # Quiet where the tools reach the text another way: the system message describes them.
    described = [{"role": "system", "content": "You may call get_weather(city)."}, *chat]
    assert tools_not_rendered("smollm2", described, tools=TOOLS) == []
    assert tools_not_rendered("smollm2", chat) == []  # and without tools at all


def test_tools_rendered_by_qwen3_are_quiet():
    chat = [user("Weather in Paris?"), assistant("I will look it up.")]
    assert "get_weather" in bundled("qwen3").apply_chat_template(chat, tools=TOOLS, tokenize=False)
    assert tools_not_rendered("qwen3", chat, tools=TOOLS) == []


THINKING = [
    user("2+2?"),
    assistant("4.", reasoning_content="Two plus two is four."),
    user("3+3?"),
    assistant("6.", reasoning_content="Three and three make six."),
]


@pytest.mark.parametrize(
    "chat",
    [
        THINKING,
        [
            user("2+2?"),
            assistant("<think>Two plus two is four.</think>4."),
            user("3+3?"),
            assistant("<think>Three and three make six.</think>6."),
        ],
    ],
    ids=["reasoning_content", "inline"],
)
def test_reasoning_dropped_by_qwen3_before_the_last_user_message(chat):
    text = bundled("qwen3").apply_chat_template(chat, tokenize=False)
    assert "Two plus two" not in text and "Three and three make six." in text
    rendering, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    (hit,) = by_code(findings, "reasoning-dropped")
    assert hit.severity == "warning"
    assert "assistant message(s) 1 " in hit.message and "keeps that of message(s) 3" in hit.message
    assert "without thinking" in hit.message
    assert {rendering.tokens[i].message for i in hit.tokens} == {1}
    # One turn per row keeps it: the reasoning turn is the last.
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat[:2])
    assert by_code(findings, "reasoning-dropped") == []


def test_reasoning_dropped_by_harmony_before_the_last_user_message():
    # gpt-oss reads the `thinking` spelling; its template keeps the analysis of the last turn only.
    chat = [
        {**m, "thinking": m.pop("reasoning_content")} if "reasoning_content" in m else m
        for m in (dict(m) for m in THINKING)
    ]
    text = bundled("gptoss").apply_chat_template(chat, tokenize=False)
    assert "Two plus two" not in text and "<|channel|>analysis<|message|>Three and" in text
    (hit,) = by_code(lint_conversation("gptoss", "tokenizer", chat)[1], "reasoning-dropped")
    assert hit.severity == "warning" and "message(s) 1 " in hit.message
    assert "keeps that of message(s) 3" in hit.message


@pytest.mark.parametrize("tokenizer", ["smollm2", "llama3"])
def test_reasoning_dropped_by_templates_that_write_no_reasoning(tokenizer):
    chat = THINKING[:2]
    assert "Two plus two" not in bundled(tokenizer).apply_chat_template(chat, tokenize=False)
    _, findings, _ = lint_conversation(tokenizer, "tokenizer", chat)
    (hit,) = by_code(findings, "reasoning-dropped")
    assert hit.severity == "warning" and "message(s) 1 " in hit.message
    assert "without the reasoning that led to them" in hit.message and "keeps" not in hit.message


def test_reasoning_dropped_is_info_when_those_turns_are_untrained():
    _, findings, _ = lint_conversation("qwen3", "tokenizer", THINKING, train_on="last_assistant")
    (hit,) = by_code(findings, "reasoning-dropped")
    assert hit.severity == "info" and "untrained" in hit.message


@pytest.mark.parametrize(
    "content, how",
    [
        ("<think>Two plus two is four. So 4.", "is never closed"),
        ("<think>Two plus two is four. So 4.</think>", "has nothing after it"),
    ],
)
def test_answer_in_think(content, how):
    rendering, findings, _ = lint_conversation(
        "qwen3", "chatml", [user("2+2?"), assistant(content)]
    )
    (hit,) = by_code(findings, "answer-in-think")
    assert hit.severity == "warning" and how in hit.message
    assert rendering.tokens[hit.tokens[0]].text == "<think>"
    assert all(rendering.tokens[i].trained for i in hit.tokens)
    fixed = [user("2+2?"), assistant("<think>Two plus two is four.</think>4.")]
    _, findings, _ = lint_conversation("qwen3", "chatml", fixed)
    assert by_code(findings, "answer-in-think") == []


def test_answer_in_think_under_qwen3s_template_which_splits_it_off():
    chat = [user("2+2?"), assistant("<think>Two plus two is four. So 4.</think>")]
    text = bundled("qwen3").apply_chat_template(chat, tokenize=False)
    assert text.endswith("So 4.\n</think>\n\n<|im_end|>\n")  # no answer after the block
    (hit,) = by_code(lint_conversation("qwen3", "tokenizer", chat)[1], "answer-in-think")
    assert "has nothing after it" in hit.message


def test_empty_think_trained_where_the_generation_prompt_does_not_write_it():
    chat = [user("2+2?"), assistant("4.")]
    rendering, findings, tok = lint_conversation("qwen3", "tokenizer", chat)
    prompt = tok.apply_chat_template(chat[:1], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")  # the block is the model's to write
    assert "<think>\n\n</think>\n\n4." in rendering.text
    (hit,) = by_code(findings, "empty-think-trained")
    assert hit.severity == "info" and "skip thinking" in hit.message
    assert "masking" not in hit.message and "That is right" in hit.message
    assert "".join(rendering.tokens[i].text for i in hit.tokens) == "<think>\n\n</think>"
    # With reasoning the block is not empty.
    _, findings, _ = lint_conversation("qwen3", "tokenizer", THINKING[:2])
    assert by_code(findings, "empty-think-trained") == []


def test_empty_think_of_qwen3s_thinking_off_prompt_is_untrained_and_quiet():
    chat = [user("2+2?"), assistant("4.")]
    off = {"enable_thinking": False}
    prompt = bundled("qwen3").apply_chat_template(
        chat[:1], add_generation_prompt=True, tokenize=False, **off
    )
    assert prompt.endswith("<think>\n\n</think>\n\n")  # the prompt writes the block
    rendering, findings, _ = lint_conversation("qwen3", "tokenizer", chat, chat_template_kwargs=off)
    assert "<think>\n\n</think>" in rendering.text
    assert by_code(findings, "empty-think-trained") == []


def test_empty_think_trained_by_generation_tags_says_the_prompt_writes_it():
    source = template_source("trl/qwen3_5_nothink_training")
    chat = [user("2+2?"), assistant("4.")]
    _, findings, _ = lint_conversation("qwen3", "custom", chat, template=source)
    assert by_code(findings, "tags-differ-from-generated")
    (hit,) = by_code(findings, "empty-think-trained")
    assert "the generation prompt already writes the block" in hit.message
    assert "That is right" not in hit.message


def test_empty_think_written_by_the_generation_prompt_is_untrained_and_quiet():
    source = template_source("trl/qwen3_5_nothink")
    chat = [user("2+2?"), assistant("4.")]
    rendering, findings, _ = lint_conversation("qwen3", "custom", chat, template=source)
    assert "<think>\n\n</think>" in rendering.text
    think = rendering.text.index("<think>")
    assert not any(t.trained for t in rendering.tokens if t.start >= think and t.end <= think + 7)
    assert by_code(findings, "empty-think-trained") == []


@pytest.mark.parametrize(
    "chat, says",
    [
        (
            [user("w?"), call(WEATHER, ids=("call_1",)), tool("18", tool_call_id="call_2")],
            [
                "messages[2] (tool) (tool_call_id 'call_2') answers no tool call",
                "messages[1] calls",
            ],
        ),
        ([user("w?"), tool("18"), assistant("18.")], ["messages[1] (tool) answers no tool call"]),
        (
            [user("w?"), call(WEATHER), user("Well?"), assistant("18.")],
            ["messages[1] calls get_weather, but no tool message answers it"],
        ),
        (
            [user("w?"), call(WEATHER), tool("18", name="get_time"), assistant("18.")],
            ["messages[2] (tool) answers no tool call", "messages[1] calls get_weather"],
        ),
    ],
    ids=["wrong-id", "no-call", "no-result", "wrong-name"],
)
def test_tool_call_unmatched(chat, says):
    rendering, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    hits = by_code(findings, "tool-call-unmatched")
    assert [h.severity for h in hits] == ["warning"] * len(says)
    for hit, said in zip(hits, says, strict=True):
        assert said in hit.message
        k = int(said.split("[")[1].split("]")[0])
        assert hit.tokens and {rendering.tokens[i].message for i in hit.tokens} == {k}


@pytest.mark.parametrize(
    "chat",
    [
        WEATHER_CHAT,
        [  # no ids: by order, two parallel calls and their two results
            user("w?"),
            call(WEATHER, {"name": "get_time", "arguments": {"city": "Paris"}}),
            tool("18"),
            tool("12:00"),
            assistant("18 °C at noon."),
        ],
        [user("w?"), call(WEATHER)],  # the row ends on the call: its result comes at inference
    ],
    ids=["by-id", "by-order", "last-call"],
)
def test_tool_call_matched_is_quiet(chat):
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    assert by_code(findings, "tool-call-unmatched") == []


def test_tool_arguments_mixed_in_one_conversation():
    as_string = {"name": "get_weather", "arguments": '{"city": "Rome"}'}
    chat = [*WEATHER_CHAT, user("And Rome?"), call(as_string), tool("21"), assistant("21 °C.")]
    qwen2_5 = template_source("trl/qwen2_5")  # writes `arguments | tojson`
    rendering, findings, _ = lint_conversation("qwen3", "custom", chat, template=qwen2_5)
    # One conversation, two formats for one call: an object, and a string encoded again.
    assert '"arguments": {"city": "Paris"}' in rendering.text
    assert '"arguments": "{\\"city\\": \\"Rome\\"}"' in rendering.text
    (hit,) = by_code(findings, "tool-arguments-mixed")
    assert hit.severity == "info"
    assert "JSON strings in message(s) 5 and objects in message(s) 1" in hit.message
    same = [*WEATHER_CHAT, user("And Rome?"), call(WEATHER), tool("21"), assistant("21 °C.")]
    _, findings, _ = lint_conversation("qwen3", "custom", same, template=qwen2_5)
    assert by_code(findings, "tool-arguments-mixed") == []


@pytest.mark.parametrize("tokenizer", ["qwen3", "gptoss"])
def test_tool_call_eot_untrained(tokenizer):
    rendering, findings, _ = lint_conversation(
        tokenizer, "tokenizer", WEATHER_CHAT, train_on_eot=False
    )
    (hit,) = by_code(findings, "tool-call-eot-untrained")
    assert hit.severity == "error" and "never learns to stop after a call" in hit.message
    assert "Assistant message(s) 1 call a tool" in hit.message
    marker = "".join(rendering.tokens[i].text for i in hit.tokens)
    assert marker == {"qwen3": "<|im_end|>", "gptoss": "<|call|>"}[tokenizer]
    assert not any(rendering.tokens[i].trained for i in hit.tokens)
    _, findings, _ = lint_conversation(tokenizer, "tokenizer", WEATHER_CHAT)
    assert by_code(findings, "tool-call-eot-untrained") == []


def test_plain_rows_raise_none_of_these_codes():
    chat = [user("Hi"), assistant("Hello."), user("Bye"), assistant("Bye.")]
    for tokenizer in ("smollm2", "llama3", "gemma3"):
        _, findings, _ = lint_conversation(tokenizer, "tokenizer", chat)
        codes = {f.code for f in findings}
        assert not codes & {
            "tool-calls-dropped",
            "tools-not-rendered",
            "reasoning-dropped",
            "answer-in-think",
            "empty-think-trained",
            "tool-call-unmatched",
            "tool-arguments-mixed",
            "tool-call-eot-untrained",
        }


def test_dataset_rows_get_these_codes_and_no_check_breaks(tmp_path, capsys, caplog):
    # Dataset rows take another path (token columns, a shared batch, per-row specs), where a
    # check that raised would only be logged: the summary must name the codes, the log nothing.
    from app.cli import main
    from tests.helpers.datasets import write_jsonl

    rows = [
        {"messages": WEATHER_CHAT},
        {"messages": THINKING},
        {"messages": [user("w?"), tool("18"), assistant("<think>hmm")]},
        {"messages": [user("Hi"), assistant("Hello.")]},
        {"messages": [user("Hi"), assistant("Hello.")], "tools": TOOLS},  # the row's own tools
    ]
    path = tmp_path / "modern.jsonl"
    write_jsonl(path, rows * 2)
    code = main(["lint", str(path), "--tokenizer", "smollm2", "--dialect", "tokenizer", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1  # tool-calls-dropped is an error
    for said in (
        "tool-calls-dropped",
        "reasoning-dropped",
        "answer-in-think",
        "tool-call-unmatched",
    ):
        assert said in out
    assert "tools-not-rendered" in out
    assert not [r for r in caplog.records if r.name.startswith("app.lint")]
