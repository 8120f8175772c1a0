"""Token-level and label checks on pre-tokenized rows built the way training scripts build them:
transformers' apply_chat_template + tokenizer offsets, labels by character ranges."""

from __future__ import annotations

import pytest

from app.lint import TokenView, lint_tokens
from tests.helpers.lint import IGNORE, answer_ranges, chat_text, label_by_chars
from tests.helpers.tokenizers import fresh

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris is the capital of France."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]
ANSWERS = ["Paris is the capital of France.", "Rome."]


def lint_row(tokenizer, ids, labels, eot: str):
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    view = TokenView(
        ids=ids,
        trained=[label != IGNORE for label in labels],
        roles=[None] * len(ids),
        eots=[i for i, t in enumerate(ids) if t == eot_id],
    )
    return lint_tokens(view, tokenizer=tokenizer, labels=labels, eot_ids=frozenset({eot_id}))


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def qwen_row(tok, closer="<|im_end|>"):
    tokenizer = tok("qwen3")
    text = chat_text(tokenizer, CHAT)
    ids, labels = label_by_chars(tokenizer, text, answer_ranges(text, ANSWERS, closer))
    return tokenizer, ids, labels


def test_clean_qwen_row_has_no_error_or_warning(tok):
    tokenizer, ids, labels = qwen_row(tok)
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert [f for f in found if f.severity != "info"] == []


@pytest.mark.parametrize("add_special_tokens, expected", [(True, True), (False, False)])
def test_double_bos_gemma_template_then_tokenizer(tok, add_special_tokens, expected):
    # Gemma's template writes <bos>; tokenizing its text with add_special_tokens=True adds another.
    tokenizer = tok("gemma3")
    text = chat_text(tokenizer, CHAT)
    ranges = answer_ranges(text, ANSWERS, "<end_of_turn>")
    ids, labels = label_by_chars(tokenizer, text, ranges, add_special_tokens=add_special_tokens)
    found = lint_row(tokenizer, ids, labels, "<end_of_turn>")
    assert ("double-bos" in codes(found)) is expected
    if expected:
        assert ids[:2] == [tokenizer.bos_token_id] * 2
        assert next(f for f in found if f.code == "double-bos").tokens == [0, 1]


@pytest.mark.parametrize("closer, expected", [("", True), ("<|im_end|>", False)])
def test_eot_untrained(tok, closer, expected):
    tokenizer, ids, labels = qwen_row(tok, closer)
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("eot-untrained" in codes(found)) is expected
    if expected:
        finding = next(f for f in found if f.code == "eot-untrained")
        assert finding.severity == "error"
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        assert [ids[i] for i in finding.tokens] == [im_end, im_end]


@pytest.mark.parametrize("closer, expected", [("<|im_end|>\n", True), ("<|im_end|>", False)])
def test_trailing_glue_trained(tok, closer, expected):
    tokenizer, ids, labels = qwen_row(tok, closer)
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("trailing-glue-trained" in codes(found)) is expected


@pytest.mark.parametrize("shift, expected", [(1, True), (-1, True), (0, False)])
def test_labels_shifted(tok, shift, expected):
    tokenizer, ids, labels = qwen_row(tok)
    if shift == 1:  # the classic pre-shift: labels = input_ids[1:] aligned with input_ids[:-1]
        labels = labels[1:] + [IGNORE]
    elif shift == -1:
        labels = [IGNORE] + labels[:-1]
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("labels-shifted" in codes(found)) is expected


@pytest.mark.parametrize("mask_first, expected", [(False, True), (True, False)])
def test_labels_equal_inputs(tok, mask_first, expected):
    tokenizer, ids, _ = qwen_row(tok)
    labels = list(ids)
    if mask_first:
        labels[0] = IGNORE
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("labels-equal-inputs" in codes(found)) is expected


@pytest.mark.parametrize("masked, expected", [(True, True), (False, False)])
def test_no_trained_tokens(tok, masked, expected):
    tokenizer, ids, labels = qwen_row(tok)
    if masked:
        labels = [IGNORE] * len(ids)
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("no-trained-tokens" in codes(found)) is expected


@pytest.mark.parametrize("pad_as_eos, expected", [(True, True), (False, False)])
def test_pad_is_eos_common_fix(pad_as_eos, expected):
    # "tokenizer.pad_token = tokenizer.eos_token" is the usual fix for a missing pad token.
    tokenizer = fresh("qwen3")
    if pad_as_eos:
        tokenizer.pad_token = tokenizer.eos_token
    text = chat_text(tokenizer, CHAT)
    ids, labels = label_by_chars(tokenizer, text, answer_ranges(text, ANSWERS, "<|im_end|>"))
    found = lint_row(tokenizer, ids, labels, "<|im_end|>")
    assert ("pad-is-eos" in codes(found)) is expected
