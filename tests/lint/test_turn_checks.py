"""The assistant-turn codes (no-end-of-turn, empty-answer, role-order): a real case that triggers
each, on the bundled tokenizers and real or pasted templates, and a near-identical one that does
not. Where the cause is a template, transformers' own apply_chat_template shows it first."""

from __future__ import annotations

import pytest

from tests.helpers.lint import by_code, lint_conversation
from tests.helpers.tokenizers import bundled

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]
NO_END = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
WITH_END = "{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize("tokenizer", ["qwen3", "llama3", "gemma3"])
def test_no_end_of_turn_when_the_template_writes_none(tokenizer):
    tok = bundled(tokenizer)
    text = tok.apply_chat_template(CHAT, chat_template=NO_END, tokenize=False)
    assert text == (
        "user: What is the capital of France?\nassistant: Paris.\nuser: And of Italy?\n"
        "assistant: Rome.\n"
    )  # nothing after an answer but the next turn
    rendering, findings, _ = lint_conversation(tokenizer, "custom", CHAT, template=NO_END)
    (hit,) = by_code(findings, "no-end-of-turn")
    assert hit.severity == "error"
    assert "Assistant message(s) 1, 3 end without an end-of-turn token" in hit.message
    assert repr(tok.eos_token) not in hit.message and tok.eos_token in hit.message
    assert all(rendering.tokens[i].role == "assistant" for i in hit.tokens)
    _, findings, _ = lint_conversation(tokenizer, "custom", CHAT, template=WITH_END)
    assert by_code(findings, "no-end-of-turn") == []


def test_no_end_of_turn_leaves_untrained_and_cut_turns_to_other_codes():
    # Under last_assistant, message 1 is context; a cut answer is truncation-cuts-answer's.
    _, findings, _ = lint_conversation(
        "qwen3", "custom", CHAT, template=NO_END, train_on="last_assistant"
    )
    (hit,) = by_code(findings, "no-end-of-turn")
    assert "message(s) 3 end" in hit.message
    full, _, _ = lint_conversation("qwen3", "custom", CHAT, template=NO_END)
    inside = next(t.index for t in full.tokens if t.end > full.text.index("Rome")) + 1
    _, findings, _ = lint_conversation("qwen3", "custom", CHAT, template=NO_END, max_length=inside)
    assert by_code(findings, "truncation-cuts-answer")
    (hit,) = by_code(findings, "no-end-of-turn")
    assert "message(s) 1 end" in hit.message


@pytest.mark.parametrize(
    "tokenizer, dialect",
    [("qwen3", "tokenizer"), ("gemma3", "tokenizer"), ("llama2", "llama2"), ("qwen3", "chatml")],
)
@pytest.mark.parametrize("empty", ["", "  \n"])
def test_empty_answer_teaches_the_model_to_answer_nothing(tokenizer, dialect, empty):
    chat = [user("Hi"), assistant(empty)]
    rendering, findings, _ = lint_conversation(tokenizer, dialect, chat)
    (hit,) = by_code(findings, "empty-answer")
    assert hit.severity == "warning" and "answer nothing" in hit.message
    assert "message(s) 1 are empty" in hit.message
    assert any(rendering.tokens[i].trained for i in hit.tokens)
    _, findings, _ = lint_conversation(tokenizer, dialect, [user("Hi"), assistant("Hello.")])
    assert by_code(findings, "empty-answer") == []


def test_empty_answer_only_where_it_is_trained_and_not_for_tool_calls():
    chat = [user("a"), assistant(""), user("b"), assistant("c")]
    _, findings, _ = lint_conversation("qwen3", "chatml", chat, train_on="last_assistant")
    assert by_code(findings, "empty-answer") == []
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}
        ],
    }
    chat = [user("Weather in Paris?"), call, {"role": "tool", "content": "18"}, assistant("18.")]
    rendering, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    assert "<tool_call>" in rendering.text
    assert by_code(findings, "empty-answer") == []


@pytest.mark.parametrize(
    "chat, severity, says",
    [
        ([assistant("Hello!"), user("Hi"), assistant("x")], "warning", "messages[0] (assistant)"),
        (
            [
                {"role": "system", "content": "Be brief."},
                assistant("Hi"),
                user("a"),
                assistant("b"),
            ],
            "warning",
            "messages[1] (assistant) opens",
        ),
        ([user("a"), user("b"), assistant("x")], "info", "messages[1] (user) directly follows"),
        ([user("a"), assistant("b"), assistant("x")], "warning", "messages[2] (assistant)"),
    ],
)
def test_role_order_names_the_message(chat, severity, says):
    rendering, findings, _ = lint_conversation("qwen3", "chatml", chat)
    (hit,) = by_code(findings, "role-order")
    assert hit.severity == severity and says in hit.message
    assert hit.tokens and {rendering.tokens[i].role for i in hit.tokens} == {
        chat[int(says.split("[")[1].split("]")[0])]["role"]
    }


def test_role_order_is_info_for_untrained_turns_and_quiet_for_tool_loops():
    chat = [user("a"), assistant("b"), assistant("c"), user("d"), assistant("e")]
    _, findings, _ = lint_conversation("qwen3", "chatml", chat, train_on="last_assistant")
    assert [h.severity for h in by_code(findings, "role-order")] == ["info"]
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {}}}],
    }
    chat = [user("a"), call, {"role": "tool", "content": "1"}, assistant("b")]
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    assert by_code(findings, "role-order") == []


def test_templates_that_refuse_an_order_say_so_before_any_lint():
    from app.errors import InputError

    with pytest.raises(InputError) as err:
        lint_conversation("gemma3", "tokenizer", [user("a"), user("b"), assistant("c")])
    assert "alternate" in err.value.message


def test_history_answers_trained_with_harmony_end_are_said():
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ]
    _, findings, _ = lint_conversation("gptoss", "tokenizer", chat)
    hits = by_code(findings, "history-end-trained")
    assert len(hits) == 1
    assert hits[0].message.startswith("Assistant message(s) 1 are earlier final answers")
    _, quiet, _ = lint_conversation("gptoss", "tokenizer", chat, train_on="last_assistant")
    assert by_code(quiet, "history-end-trained") == []
    _, single, _ = lint_conversation("gptoss", "tokenizer", chat[:2])
    assert by_code(single, "history-end-trained") == []


def test_a_trained_developer_message_is_a_trained_prompt():
    chat = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    _, findings, _ = lint_conversation("gptoss", "tokenizer", chat, train_on="all")
    hits = by_code(findings, "prompt-trained")
    assert hits and "developer" in hits[0].message
