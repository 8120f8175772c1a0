"""Trained = generated (DESIGN §4) on the real templates where it used to go wrong: each case
reproduces a report against a bundled tokenizer and a template as its project ships it.

The tests/zoo suite checks the same rule on every zoo template against a reference written from
the rule; these pin the individual mistakes, with the exact trained text.
"""

from __future__ import annotations

import pytest

from app.chat.messages import parse_row
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokens import Rendering
from app.dialects.registry import get_dialect
from tests.helpers.lint import lint_conversation
from tests.helpers.tokenizers import bundled
from tests.zoo.templates import template_source

CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


def _render(tokenizer: str, messages: list[dict], template: str | None = None) -> Rendering:
    conversation = parse_row({"messages": messages})
    dialect = "custom" if template else "tokenizer"
    spec = RenderSpec(dialect=dialect, template=template_source(template) if template else None)
    return render(conversation, get_dialect(dialect), bundled(tokenizer), spec)


def _trained(r: Rendering) -> str:
    return "".join(t.text for t in r.tokens if t.trained)


def test_edge_whitespace_of_an_answer_is_trained_phi3_on_llama2():
    r = _render(
        "llama2",
        [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "\n  Hi.  \n"},
        ],
        "trl/phi3",
    )
    # Everything after `<|assistant|>\n` up to `<|end|>` (a token straddling its edge is
    # trained, as in transformers: here the `>\n` glue token).
    assert _trained(r).startswith("\n  Hi.  \n<|end|>")
    assert not any(t.trained for t in r.tokens if t.text == "</s>")  # Phi-3's final EOS


def test_content_a_template_rewrites_is_still_trained_deepseek_r1():
    answer = "<think>\nIt has no divisors.\n</think>\n\nYes, 17 is prime."
    r = _render(
        "smollm2",
        [{"role": "user", "content": "Is 17 prime?"}, {"role": "assistant", "content": answer}],
        "trl/deepseek_r1_distill",
    )
    # The template keeps what follows </think>: that, and its end of sentence, is generated.
    assert _trained(r) == "\n\nYes, 17 is prime.<｜end▁of▁sentence｜>"
    assert not [f for f in r.findings if f.code == "content-not-found" and f.severity != "info"]


@pytest.mark.parametrize(
    ("tokenizer", "template", "tool_header"),
    [
        ("gptoss", "trl/gptoss", "<|start|>functions.get_weather to=assistant"),
        ("llama3", "axolotl/llama4", "ipython"),
        ("qwen3", "trl/glm4moe", "<tool_response>"),
    ],
)
def test_tool_results_are_the_tools_and_never_trained(tokenizer, template, tool_header):
    r = _render(
        tokenizer,
        [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "name": "get_weather", "tool_call_id": "c", "content": "18 C"},
            {"role": "assistant", "content": "It is 18 C."},
        ],
        template,
    )
    tool = "".join(t.text for t in r.tokens if t.role == "tool")
    assert tool_header in tool and "18 C" in tool
    assert not any(t.trained for t in r.tokens if t.role == "tool")
    assert "get_weather" in "".join(t.text for t in r.tokens if t.part == "tool_call")
    assert "It is 18 C." in _trained(r)


def test_reasoning_trains_the_same_however_it_was_supplied_qwen3():
    inline = _render(
        "qwen3",
        [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
        ],
    )
    field = _render(
        "qwen3",
        [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "add them"},
        ],
    )
    assert inline.input_ids == field.input_ids
    assert inline.labels == field.labels
    assert _trained(field) == "<think>\nadd them\n</think>\n\n4<|im_end|>"
    assert "add them" in "".join(t.text for t in field.tokens if t.part == "reasoning")


@pytest.mark.parametrize(
    ("template", "marker"),
    [
        ("trl/cohere", "<|END_OF_TURN_TOKEN|>"),
        ("trl/phi3", "<|end|>"),
        ("trl/deepseekv3", "<｜end▁of▁sentence｜>"),
    ],
)
def test_an_end_of_turn_split_into_ordinary_tokens_is_trained(template, marker):
    r = _render(
        "smollm2",
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        template,
    )
    assert marker not in {t.text for t in r.tokens}  # smollm2 has no such token: it is split
    assert marker in _trained(r)


def test_an_injected_default_system_prompt_is_system_and_no_message_smollm2():
    r = _render(
        "smollm2", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    )
    injected = [t for t in r.tokens if t.end <= r.text.index("<|im_start|>user")]
    assert {(t.role, t.message) for t in injected} == {("system", None)}
    assert "SmolLM" in "".join(t.text for t in injected)
    assert r.stats()["by_role"]["system"] == len(injected)


def test_a_tool_result_written_inside_the_assistant_turn_is_cut_out_gemma4():
    r = _render(
        "gemma3",
        [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "name": "get_weather", "tool_call_id": "c", "content": "18 C"},
            {"role": "assistant", "content": "It is 18 C."},
        ],
        "trl/gemma4",
    )
    tool = [t for t in r.tokens if t.role == "tool"]
    assert tool and not any(t.trained for t in tool)
    assert "18" in "".join(t.text for t in tool)
    assert "It is 18 C." in _trained(r)


def _lint(tokenizer: str, messages: list[dict], template: str) -> list:
    _, findings, _ = lint_conversation(
        tokenizer, "custom", messages, template=template_source(template)
    )
    return findings


def test_tags_that_train_the_glue_are_said_as_info_trl_qwen3_twin():
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    hits = [f for f in _lint("qwen3", chat, "trl/qwen3_training") if f.code.startswith("tags-")]
    assert [f.severity for f in hits] == ["info"]
    assert "'\\n'" in hits[0].message
    plain = _lint("qwen3", chat, "trl/qwen3")
    assert not [f for f in plain if f.code.startswith("tags-")]


def test_tags_that_leave_out_a_generated_space_warn_axolotl_llava():
    # Llama 2's tokenizer gives the space before CJK text a token of its own: `▁`.
    chat = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "我是AI"}]
    hits = [f for f in _lint("llama2", chat, "axolotl/llava") if f.code.startswith("tags-")]
    assert "warning" in {f.severity for f in hits}
