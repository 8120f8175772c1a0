"""The model-backed lints on SmolLM2-135M-Instruct: each with a real triggering case and a quiet
twin, and neither runs without a model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.chat.spec import RenderSpec
from app.service.render import render_and_lint
from app.service.score import score_messages
from app.settings import Settings
from app.train.store import JobStore

QUESTION = {"role": "user", "content": "What is the capital of France?"}
COMPLETE = [QUESTION, {"role": "assistant", "content": "The capital of France is Paris."}]
CUT = [QUESTION, {"role": "assistant", "content": "The capital of France is"}]
NOISE = [QUESTION, {"role": "assistant", "content": "The capital of France is Paris. Qx7#vB9!kL"}]
SPEC = RenderSpec(tokenizer="smollm2", dialect="tokenizer")


@pytest.fixture(scope="module")
def score(settings, tmp_path_factory):
    store = JobStore(tmp_path_factory.mktemp("jobs") / "jobs.sqlite3")
    return lambda messages, spec=SPEC: score_messages(messages, spec, "smollm2", settings, store)


def codes(scored) -> dict[str, object]:
    return {f.code: f for f in scored.lints}


def test_a_cut_answer_is_one_the_model_does_not_stop(score):
    scored = score(CUT)
    finding = codes(scored)["model-does-not-stop"]
    im_end = scored.rendered.rendering.input_ids[finding.tokens[0]]
    assert scored.rendered.tokenizer.convert_ids_to_tokens(im_end) == "<|im_end|>"
    assert "message 1" in finding.message and "lint_min_stop_probability" in finding.message
    assert scored.stops[0].probability < 0.01


def test_another_models_end_of_turn_is_one_it_does_not_stop_on(score):
    scored = score(COMPLETE, RenderSpec(tokenizer="smollm2", dialect="llama3"))
    assert "model-does-not-stop" in codes(scored)


def test_a_complete_answer_stops(score):
    scored = score(COMPLETE)
    assert not {"model-does-not-stop", "extreme-token-loss"} & set(codes(scored))
    assert scored.stops[0].probability > 0.5


def test_noise_in_an_answer_has_extreme_loss(score):
    scored = score(NOISE)
    finding = codes(scored)["extreme-token-loss"]
    rendering = scored.rendered.rendering
    texts = [rendering.tokens[i].text for i in finding.tokens]
    assert "x" in texts and "lint_max_token_loss" in finding.message
    assert all(rendering.tokens[i].trained for i in finding.tokens)
    assert all(-scored.scores.logprobs[i] > 12 for i in finding.tokens)


def test_the_threshold_is_the_setting(settings, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    lenient = replace(settings, lint_max_token_loss=40.0, lint_min_stop_probability=0.0)
    scored = score_messages(NOISE, SPEC, "smollm2", lenient, store)
    assert not {"model-does-not-stop", "extreme-token-loss"} & {f.code for f in scored.lints}


def test_without_a_model_neither_runs(settings):
    _, lints = render_and_lint(CUT, SPEC, settings)
    assert not {"model-does-not-stop", "extreme-token-loss"} & {f.code for f in lints}


def test_the_thresholds_are_read_from_the_environment():
    env = {"MASKSCOPE_LINT_MAX_TOKEN_LOSS": "9.5", "MASKSCOPE_LINT_MIN_STOP_PROBABILITY": "0.05"}
    settings = Settings.from_env(env)
    assert settings.lint_max_token_loss == 9.5 and settings.lint_min_stop_probability == 0.05
