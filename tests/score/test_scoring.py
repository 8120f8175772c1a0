"""Per-token scores equal a plain transformers forward pass (fp32 CPU, within 1e-4)."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from app.chat.spec import RenderSpec
from app.chat.tokens import IGNORE_INDEX
from app.errors import BusyError
from app.score import models
from app.score.scoring import mean_trained_loss, score_ids, stops
from app.service.render import render_messages
from app.service.score import histogram
from tests.score.conftest import CHAT

TOL = 1e-4


@pytest.fixture(scope="module")
def rendering(settings):
    return render_messages(CHAT, RenderSpec(tokenizer="smollm2", dialect="tokenizer"), settings)


@pytest.fixture(scope="module")
def scores(settings, rendering):
    model = models.load(models.resolve("smollm2", settings), settings)
    return score_ids(model, rendering.rendering.input_ids)


@pytest.fixture(scope="module")
def reference(reference_model, rendering):
    ids = torch.tensor([rendering.rendering.input_ids])
    with torch.no_grad():
        logits = reference_model(ids).logits[0]
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    picked = logp[:-1].gather(1, ids[0, 1:, None])[:, 0]
    return picked.tolist(), entropy[:-1].tolist()


def test_logprobs_and_entropies_equal_a_plain_forward_pass(scores, reference, rendering):
    logprobs, entropies = reference
    n = len(rendering.rendering.input_ids)
    assert n > 40 and len(scores.logprobs) == len(scores.entropies) == n
    assert scores.logprobs[0] is None and scores.entropies[0] is None
    assert max(abs(a - b) for a, b in zip(scores.logprobs[1:], logprobs, strict=True)) < TOL
    assert max(abs(a - b) for a, b in zip(scores.entropies[1:], entropies, strict=True)) < TOL
    # not all alike: the figures are per token
    assert len({round(x, 2) for x in scores.logprobs[1:]}) > n // 3


def test_mean_trained_loss_is_transformers_own_loss(scores, reference_model, rendering):
    r = rendering.rendering
    with torch.no_grad():
        loss = reference_model(torch.tensor([r.input_ids]), labels=torch.tensor([r.labels])).loss
    assert r.trained_count > 5
    assert mean_trained_loss(scores, r.labels) == pytest.approx(float(loss), abs=TOL)


def test_nothing_trained_has_no_loss(scores, rendering):
    assert mean_trained_loss(scores, [IGNORE_INDEX] * len(rendering.rendering.labels)) is None


def test_each_trained_end_of_turn_has_its_probability(scores, rendering):
    r = rendering.rendering
    found = stops(r, scores)
    im_end = rendering.tokenizer.convert_tokens_to_ids("<|im_end|>")
    trained_ends = [i for i, t in enumerate(r.input_ids) if t == im_end and r.labels[i] == t]
    assert [s.token for s in found] == trained_ends and len(found) == 2
    assert [s.message for s in found] == [2, 4]
    for stop in found:
        assert stop.probability == pytest.approx(math.exp(scores.logprobs[stop.token]))
        assert stop.probability > 0.5  # the model ends these plain answers


def test_a_single_token_has_nothing_to_score(settings):
    model = models.load(models.resolve("smollm2", settings), settings)
    assert score_ids(model, [1]).logprobs == [None]


def test_the_model_cache_keeps_at_most_its_size(score_settings, model_roots):
    settings = score_settings(score_model_cache_size=1)
    base = models.load(str(model_roots / "base"), settings)
    assert models.load(str(model_roots / "base"), settings) is base
    models.load(str(model_roots / "tuned"), settings)
    assert models.load(str(model_roots / "base"), settings) is not base


def test_a_second_scoring_waits_then_gets_429(score_settings):
    settings = score_settings(score_wait_s=0)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with models.device_turn(settings):
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert held.wait(10)
        with pytest.raises(BusyError) as caught, models.device_turn(settings):
            pass
        assert caught.value.status == 429 and caught.value.setting == "score_wait_s"
        assert caught.value.headers["Retry-After"]
    finally:
        release.set()
        worker.join()
    with models.device_turn(settings):  # free again once the first is done
        pass


def test_the_loss_histogram_has_equal_bins_holding_every_row():
    bins = histogram([0.5, 1.0, 2.0], bins=2)
    assert [(b["lo"], b["hi"], b["count"]) for b in bins] == [(0.5, 1.25, 2), (1.25, 2.0, 1)]
    assert sum(b["count"] for b in histogram([3.0, 3.0])) == 2 and histogram([]) == []
