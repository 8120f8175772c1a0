"""The trained = generated reference, checked by hand: on plain Python renderers, where every
span can be read off the format, and on real zoo templates through transformers."""

from __future__ import annotations

import pytest

from tests.zoo.checks import bundled, reference_for, tokenizer_for
from tests.zoo.conversations import CONVERSATIONS
from tests.zoo.reference import (
    common_prefix,
    generated_turns,
    parting,
    stop_strings,
    trained_positions,
)


def _chatml(messages, generation_prompt):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def _no_marker(messages, generation_prompt):
    """LLaVA 1.5's shape: "USER: Hi ASSISTANT: Hello " with no end-of-turn at all."""
    text = "".join(f"{m['role'].upper()}: {m['content']} " for m in messages)
    return text + ("ASSISTANT:" if generation_prompt else "")


def _spans(reference):
    return [reference.text[t.start : t.end] for t in reference.turns]


def test_common_prefix_and_parting():
    assert common_prefix("abc", "abd") == 2
    assert common_prefix("ab", "abc") == 2
    assert parting("Blue.<|user|>", "Blue.</s>") == 5
    assert parting("x [INST] a", "x [IN b") == 2
    # A closed tag, or whitespace after the '<', is not a tag still opening.
    assert parting("<a>b", "<a>c") == 3
    assert parting("1 < 2 is x", "1 < 2 is y") == 9


def test_chatml_trains_the_answer_and_its_marker_not_the_glue():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Bye!"},
    ]
    reference = generated_turns(_chatml, messages, stop_strings("<|im_end|>"))
    assert _spans(reference) == ["Hello<|im_end|>", "Bye!<|im_end|>"]
    assert [t.marker for t in reference.turns] == ["<|im_end|>", "<|im_end|>"]
    assert not any(t.prompt_mismatch for t in reference.turns)


def test_a_format_without_markers_ends_the_turn_with_its_text():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    reference = generated_turns(_no_marker, messages, stop_strings("</s>"))
    # The prompt ends at "ASSISTANT:", so the space is generated; the turn ends where the next
    # message's header begins, and says it found no marker.
    assert _spans(reference) == [" Hello "]
    assert reference.turns[0].marker is None


def test_trained_tokens_are_those_overlapping_a_span():
    assert trained_positions([(0, 2), (2, 5), (5, 6)], [(3, 5)]) == {1}
    # A token holding prompt and generated characters is trained; an empty span trains nothing.
    assert trained_positions([(0, 3), (3, 4)], [(2, 4), (0, 0)]) == {0, 1}


def _zoo(template, conv):
    reference = reference_for(template, CONVERSATIONS[conv])
    tok = bundled(tokenizer_for(template))
    enc = tok(reference.text, add_special_tokens=False, return_offsets_mapping=True)
    trained = trained_positions(enc["offset_mapping"], reference.spans)
    pieces = [reference.text[a:b] for a, b in enc["offset_mapping"]]
    return reference, [pieces[i] for i in sorted(trained)]


def test_zoo_chatml():
    reference, trained = _zoo("axolotl/chatml", "multi_turn")
    assert _spans(reference) == ["Blue.<|im_end|>", "Green.<|im_end|>", "White.<|im_end|>"]
    assert "".join(trained) == "Blue.<|im_end|>Green.<|im_end|>White.<|im_end|>"


def test_zoo_llama3_trims_the_answer():
    reference, _ = _zoo("trl/llama3", "whitespace")
    assert _spans(reference) == ["Hello there.<|eot_id|>"]


def test_zoo_phi3_keeps_the_whitespace_edges_and_not_the_final_eos():
    reference, trained = _zoo("trl/phi3", "whitespace")
    assert reference.text.endswith("<|assistant|>\n\n  Hello there.  \n<|end|>\n</s>")
    assert _spans(reference) == ["\n  Hello there.  \n<|end|>"]
    # Llama 2's vocabulary splits <|end|> into five pieces: all of them are trained.
    assert trained == ["\n", " ", " Hello", " there", ".", "  ", "\n", "<", "|", "end", "|", ">"]


def test_zoo_llama2_style_trains_the_space_before_the_answer():
    reference, trained = _zoo("axolotl/mistral_v1", "cjk")
    assert reference.text == "<s> [INST] 你好 [/INST] 我是AI</s>"
    assert _spans(reference) == [" 我是AI</s>"]
    assert trained == [" ", "我", "是", "AI", "</s>"]  # the lone "▁" is generated


def test_zoo_harmony_tool_call_and_answer_but_not_the_tool_result():
    reference, trained = _zoo("trl/gptoss", "tool_call")
    assert _spans(reference) == [
        ' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>',
        "<|channel|>final<|message|>It is sunny in Paris, 22 degrees.<|return|>",
    ]
    assert "Sunny" not in "".join(trained)


def test_zoo_harmony_reasoning_and_answer_are_one_generation():
    reference, _ = _zoo("trl/gptoss", "think_two_turns")
    assert _spans(reference) == [
        "<|channel|>final<|message|>4.<|end|>",
        (
            "<|channel|>analysis<|message|>Three plus three is six.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>6.<|return|>"
        ),
    ]


def test_zoo_training_text_that_drops_the_system_prompt_is_recorded():
    # Mistral v2/v3 writes the system prompt into the last user turn: the inference prompt has
    # it, the training text (whose last turn is the assistant's) does not.
    reference, _ = _zoo("axolotl/mistral_v2v3", "system")
    assert _spans(reference) == [" Paris.</s>"]
    assert reference.turns[0].prompt_mismatch


@pytest.mark.parametrize(
    ("template", "spans"),
    [
        # Qwen3's prompt leaves the think block to the model, so it is generated.
        ("trl/qwen3", ["<think>\nTwo plus two is four.\n</think>\n\nThe answer is 4.<|im_end|>"]),
        # DeepSeek-R1-Distill's prompt ends with "<think>\n"; its training text drops reasoning.
        ("trl/deepseek_r1_distill", ["The answer is 4.<｜end▁of▁sentence｜>"]),
    ],
)
def test_zoo_reasoning_follows_the_generation_prompt(template, spans):
    reference, _ = _zoo(template, "think_field")
    assert _spans(reference) == spans
