"""The job summary: progress per arm, and the sentence computed from the held-out curves."""

from __future__ import annotations

import pytest

from app.train.job import answer_tokens
from app.train.summary import arm_progress, summarize

BOTH = {"steps": 8, "neftune_alpha": 5.0, "compare_baseline": True}


def evals(arm: str, points: dict[int, float]) -> list[dict]:
    return [{"arm": arm, "step": s, "loss": None, "eval_loss": v} for s, v in points.items()]


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, [0, 0]), (5, [5, 0]), (8, [8, 0]), (11, [8, 3]), (16, [8, 8])],
)
def test_an_arm_counts_its_own_steps(step, expected):
    assert [a["step"] for a in arm_progress(BOTH, step)] == expected
    assert [a["arm"] for a in arm_progress(BOTH, step)] == ["neftune", "baseline"]
    assert {a["steps"] for a in arm_progress(BOTH, step)} == {8}


def test_one_arm_without_noise_is_plain():
    assert arm_progress({"steps": 3, "neftune_alpha": 0, "compare_baseline": True}, 2) == [
        {"arm": "plain", "step": 2, "steps": 3}
    ]


@pytest.mark.parametrize(
    ("neftune", "baseline", "sentence"),
    [
        (2.31, 2.35, "NEFTune's held-out loss ended 0.04 below the baseline's (2.31 vs 2.35)"),
        (2.40, 2.35, "NEFTune's held-out loss ended 0.05 above the baseline's (2.40 vs 2.35)"),
        (2.351, 2.35, "NEFTune's held-out loss ended equal to the baseline's (2.35 vs 2.35)"),
    ],
)
def test_the_sentence_compares_the_arms_last_held_out_loss(neftune, baseline, sentence):
    metrics = evals("neftune", {0: 2.6, 8: neftune}) + evals("baseline", {0: 2.6, 8: baseline})
    assert summarize(BOTH, metrics, [])["sentence"] == sentence + " at step 8."


def test_a_stopped_arm_is_compared_at_the_last_step_both_reached():
    metrics = evals("neftune", {0: 2.6, 4: 2.5, 8: 2.0}) + evals("baseline", {0: 2.6, 4: 2.45})
    sentence = summarize(BOTH, metrics, [])["sentence"]
    assert sentence.startswith("NEFTune's held-out loss ended 0.05 above the baseline's")
    assert "(2.50 vs 2.45) at step 4." in sentence


def test_one_arm_and_no_held_out_data():
    spec = {"steps": 8, "neftune_alpha": 5.0}
    one = summarize(spec, evals("neftune", {0: 2.6, 8: 2.2}), [])
    assert one["sentence"] == (
        "The held-out loss of NEFTune went from 2.60 to 2.20 by step 8 "
        "(no baseline to compare with)."
    )
    none = summarize(spec, [{"arm": "neftune", "step": 1, "loss": 2.0}], [])
    assert none["sentence"].startswith("No held-out loss")
    assert none["arms"][0]["last_train_loss"] == 2.0


def test_answer_lengths_per_arm_before_and_after():
    samples = [
        {"before_tokens": 10, "after_tokens": 20, "after_baseline_tokens": 14},
        {"before_tokens": 12, "after_tokens": 25, "after_baseline_tokens": 15},
    ]
    summary = summarize(BOTH, evals("neftune", {8: 2.0}) + evals("baseline", {8: 2.1}), samples)
    arms = {a["arm"]: a for a in summary["arms"]}
    assert arms["neftune"]["answer_tokens_before"] == 11
    assert arms["neftune"]["answer_tokens_after"] == 22.5
    assert arms["baseline"]["answer_tokens_after"] == 14.5
    assert summary["sentence"].endswith(
        "Answers average 11 tokens before training, 22.5 tokens after NEFTune and 14.5 tokens "
        "after the baseline."
    )


def test_an_answer_ends_at_its_first_stop_token():
    assert answer_tokens([5, 9, 2, 2], [2]) == 2
    assert answer_tokens([5, 9, 7], [2, 3]) == 3
    assert answer_tokens([3], [2, 3]) == 0
