"""Each preference lint on a real triggering row and a quiet twin, through the whole inspection
(real tokenizers, real templates from the zoo)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.inspect.pipeline import inspect_stream
from app.service.inspect import prepare
from app.settings import Settings

U = {"role": "user", "content": "What is 2+2?"}
U2 = {"role": "user", "content": "And 3+3?"}
A = {"role": "assistant", "content": "It is 4."}
A2 = {"role": "assistant", "content": "It is 6."}
B = {"role": "assistant", "content": "It is 5."}
ZOO = Path(Settings.from_env().assets_dir) / "templates-trl"


def codes(row, tokenizer="qwen3", dialect="chatml", **kw):
    opts = prepare(Settings.from_env(), tokenizer=tokenizer, dialect=dialect, **kw)
    data = (json.dumps(row) + "\n").encode()
    result = inspect_stream(io.BytesIO(data), opts).result()
    assert result["summary"]["bad_rows"] == 0, result["summary"]["errors"]
    findings = [f for r in result["rows"] for f in r["lints"]]
    return {f["code"]: f for f in findings if f["code"].startswith("preference-")}


def test_prompt_not_prefix_when_tokens_merge_across_the_boundary():
    found = codes({"prompt": "The sky is bl", "chosen": "ue.", "rejected": "ack."})
    assert "preference-prompt-not-prefix" in found
    assert "bl" in found["preference-prompt-not-prefix"]["message"]
    assert not codes({"prompt": "The sky is", "chosen": " blue.", "rejected": " black."})


def test_prompt_not_prefix_under_a_template_whose_generation_prompt_opens_think():
    # DeepSeek-R1-Distill's generation prompt ends with "<think>\n"; the full conversation
    # renders the answer without it.
    template = (ZOO / "deepseek_r1_distill.jinja").read_text()
    row = {"prompt": [U], "chosen": [A], "rejected": [B]}
    found = codes(row, tokenizer="deepseek_v3", dialect="custom", template=template)
    assert "preference-prompt-not-prefix" in found
    assert "<think>" in found["preference-prompt-not-prefix"]["message"]
    assert not codes(row, tokenizer="deepseek_v3", dialect="tokenizer")


def test_double_eos_when_the_data_already_ends_with_eos():
    # TRL appends EOS unless the answer ends with it: a trailing newline hides the data's own.
    found = codes({"prompt": "Q:", "chosen": " yes<|im_end|>\n", "rejected": " no"})
    assert (
        "preference-double-eos" in found and "chosen" in found["preference-double-eos"]["message"]
    )
    assert not codes({"prompt": "Q:", "chosen": " yes<|im_end|>", "rejected": " no"})


def test_bos_inside_a_multi_turn_answer_under_llama2():
    row = {"prompt": [U], "chosen": [A, U2, A2], "rejected": [B]}
    found = codes(row, tokenizer="llama2", dialect="llama2")
    assert "preference-bos-in-answer" in found
    assert "chosen" in found["preference-bos-in-answer"]["message"]
    assert not codes({"prompt": [U], "chosen": [A], "rejected": [B]}, "llama2", "llama2")


def test_bos_that_opens_every_turn_is_the_templates_marker():
    # SmolLM2's BOS is <|im_start|>: inside a multi-turn answer it is a turn header.
    row = {"prompt": [U], "chosen": [A, U2, A2], "rejected": [B]}
    assert "preference-bos-in-answer" not in codes(row, tokenizer="smollm2")


def test_system_prompts_that_differ_between_the_answers():
    nice, mean = (
        {"role": "system", "content": "Be nice."},
        {"role": "system", "content": "Be mean."},
    )
    found = codes({"chosen": [nice, U, A], "rejected": [mean, U, B]})
    assert "preference-system-differs" in found
    assert "Be nice." in found["preference-system-differs"]["message"]
    assert not codes({"chosen": [nice, U, A], "rejected": [nice, U, B]})


@pytest.mark.parametrize("max_length, fires", [(40, True), (400, False)])
def test_truncation_that_cuts_one_answer_only(max_length, fires):
    long = {"role": "assistant", "content": "It is four, " * 20}
    found = codes({"prompt": [U], "chosen": [long], "rejected": [B]}, max_length=max_length)
    assert ("preference-truncation-differs" in found) is fires
    if fires:
        assert "chosen loses" in found["preference-truncation-differs"]["message"]
