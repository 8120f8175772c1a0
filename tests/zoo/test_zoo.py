"""The template zoo (TRL's and axolotl's real templates) against transformers, DESIGN.md §4:

- the text equals `apply_chat_template` for every template × conversation;
- trained = generated: Maskscope's trained tokens equal the rule's (tests/zoo/reference.py);
- on templates with `{% generation %}` tags, Maskscope's trained tokens equal transformers'
  `return_assistant_tokens_mask`, except the conventions listed in MASK_CONVENTIONS;
- where the tags differ from trained = generated, the template is listed in TAG_CONVENTIONS
  with the reason (what the README tells users TRL's twins train).

A conversation transformers refuses for a template is skipped with transformers' message.
`python -m tests.zoo.table` prints the same checks as one row per template.
"""

from __future__ import annotations

import pytest

from tests.zoo.checks import (
    Outcome,
    check_generated,
    check_tags_against_rule,
    check_text,
    check_twin,
    is_tagged,
)
from tests.zoo.conversations import CONVERSATIONS
from tests.zoo.templates import ALL_TEMPLATES

# Tagged templates that are not TRL *_training twins: they ship their tags themselves.
TAGGED_ORIGINALS = (
    "trl/lfm2_2_5",
    "trl/lfm2_2_5_v2",
    "trl/lfm2_2_5_vl",
    "axolotl/llava",
    "axolotl/phi_4",
)
TAGGED = [t for t in ALL_TEMPLATES if t.endswith("_training")] + list(TAGGED_ORIGINALS)

# (template, conversation) -> why Maskscope's trained tokens differ from transformers' mask there.
_EMPTY_BLOCK = (
    "the template opens an empty {% generation %} block after the tool response; "
    "transformers marks the one token at its position (`><`, the end of <tool_response|> "
    "and the start of <|turn>), Maskscope trains nothing for an empty block"
)
MASK_CONVENTIONS: dict[tuple[str, str], str] = {
    ("trl/diffusion_gemma_training", "tool_call_no_tools"): _EMPTY_BLOCK,
    ("trl/diffusion_gemma_training", "tool_call"): _EMPTY_BLOCK,
}

_GLUE = "the newline after the end-of-turn marker (glue the model never generates)"
_THINK_PREFIX = "the `<think>\\n` the generation prompt already writes"

# Template -> how its {% generation %} tags differ from trained = generated.
TAG_CONVENTIONS: dict[str, str] = {
    "trl/deepseek_r1_distill_training": (
        "the `<｜Assistant｜>` header the prompt ends with, and `<｜tool▁outputs▁end｜>` after a "
        "tool result"
    ),
    "trl/deepseekv3_training": (
        "the `<｜Assistant｜>` header the prompt ends with, and `<｜tool▁outputs▁end｜>` after a "
        "tool result"
    ),
    "trl/diffusion_gemma_training": (
        f"{_GLUE}; not the `<|turn>model\\n` the model writes itself after a tool response"
    ),
    "trl/gemma_training": _GLUE,
    "trl/gemma3_training": _GLUE,
    "trl/gptoss_training": "the `<|start|>assistant` the prompt ends with",
    "trl/muse_glimmer_training": "the `<|start|>assistant` the prompt ends with",
    "trl/lfm2_2_5": _GLUE,
    "trl/lfm2_2_5_v2": _GLUE,
    "trl/lfm2_2_5_vl": _GLUE,
    "trl/lfm2_training": _GLUE,
    "trl/lfm2_v2_training": _GLUE,
    "trl/nemotron_3_5_lightning_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/nemotron_3_nano_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/nemotron_3_super_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/nemotron_3_ultra_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/phi3_training": f"{_GLUE}; the `</s>` appended after the last message",
    "trl/phi3_5_training": f"{_GLUE}; the `</s>` appended after the last message",
    "trl/qwen2_5_training": _GLUE,
    "trl/qwen2_5_vl_training": _GLUE,
    "trl/qwen3_training": _GLUE,
    "trl/qwen3_instruct_2507_training": _GLUE,
    "trl/qwen3_vl_training": _GLUE,
    "trl/qwen3_5_think_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/qwen3_6_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/qwen3_8_training": f"{_GLUE}; {_THINK_PREFIX}",
    "trl/qwen3_5_nothink_training": (
        f"{_GLUE}; the empty `<think>\\n\\n</think>\\n\\n` scaffold the generation prompt writes"
    ),
    "trl/smolvlm_training": _GLUE,
    "axolotl/llava": "not the space the model writes after the prompt's `ASSISTANT:`",
}


def _settle(outcome: Outcome) -> None:
    if outcome.status == "skip":
        pytest.skip(outcome.detail)
    assert outcome.status == "pass", outcome.detail


@pytest.mark.parametrize("conv", list(CONVERSATIONS))
@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_text_equals_apply_chat_template(template, conv):
    _settle(check_text(template, conv))


@pytest.mark.parametrize("conv", list(CONVERSATIONS))
@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_trained_is_generated(template, conv):
    _settle(check_generated(template, conv))


@pytest.mark.parametrize("conv", list(CONVERSATIONS))
@pytest.mark.parametrize("template", TAGGED)
def test_tagged_template_trains_its_assistant_mask(template, conv):
    outcome = check_twin(template, conv)
    reason = MASK_CONVENTIONS.get((template, conv))
    if reason is not None and outcome.status != "skip":
        assert outcome.status == "fail", f"listed in MASK_CONVENTIONS but now equal: {reason}"
        return
    _settle(outcome)


@pytest.mark.parametrize("template", TAGGED)
def test_tags_differ_from_the_rule_only_where_listed(template):
    outcomes = [check_tags_against_rule(template, conv) for conv in CONVERSATIONS]
    failures = [
        f"{conv}: {o.detail}"
        for conv, o in zip(CONVERSATIONS, outcomes, strict=True)
        if o.status == "fail"
    ]
    if all(o.status == "skip" for o in outcomes):
        pytest.skip(outcomes[0].detail)
    if template in TAG_CONVENTIONS:
        assert failures, "listed in TAG_CONVENTIONS but now trains what the rule does"
    else:
        assert not failures, "\n".join(failures)


def test_the_tagged_list_is_complete():
    assert [t for t in ALL_TEMPLATES if is_tagged(t)] == sorted(TAGGED, key=ALL_TEMPLATES.index)


def test_the_conventions_name_tagged_templates():
    assert set(TAG_CONVENTIONS) <= set(TAGGED)
    assert {t for t, _ in MASK_CONVENTIONS} <= set(TAGGED)
    assert {c for _, c in MASK_CONVENTIONS} <= set(CONVERSATIONS)
