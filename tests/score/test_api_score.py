"""POST /api/score: the render response plus per-token scores, every bad input a clear 4xx."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.score import models
from tests.conftest import SAME_ORIGIN
from tests.helpers.errors import assert_error
from tests.score.conftest import CHAT, finished_job

BODY = {"messages": CHAT, "tokenizer": "smollm2", "dialect": "tokenizer", "model": "smollm2"}


@pytest.fixture
def client_for(score_settings):
    clients = []

    def make(**overrides) -> TestClient:
        settings = score_settings(**overrides)
        client = TestClient(create_app(settings), headers=SAME_ORIGIN)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_scores_come_on_the_rendered_tokens(client):
    scored = client.post("/api/score", json=BODY)
    assert scored.status_code == 200, scored.text
    rendered = client.post("/api/render", json={k: v for k, v in BODY.items() if k != "model"})
    body, plain = scored.json(), rendered.json()
    assert body["input_ids"] == plain["input_ids"] and body["labels"] == plain["labels"]
    for token, same in zip(body["tokens"], plain["tokens"], strict=True):
        assert {k: v for k, v in token.items() if k not in ("logprob", "entropy")} == same
    assert body["tokens"][0]["logprob"] is None and body["tokens"][0]["entropy"] is None
    assert all(t["logprob"] <= 0 and t["entropy"] >= 0 for t in body["tokens"][1:])
    stats = body["stats"]
    trained = [-t["logprob"] for t in body["tokens"] if t["trained"]]
    assert stats["mean_trained_loss"] == pytest.approx(sum(trained) / len(trained))
    assert [e["message"] for e in stats["end_of_turn"]] == [2, 4]
    assert stats["model"] == "smollm2"


def test_a_local_model_and_a_jobs_model_before_and_after(client_for, score_settings, model_roots):
    settings = score_settings()
    job_id = finished_job(settings, model_roots, "succeeded")
    client = client_for()
    local = client.post("/api/score", json={**BODY, "model": "base"})
    assert local.status_code == 200, local.text
    tuned = client.post("/api/score", json={**BODY, "model": f"job:{job_id}", "compare_base": True})
    assert tuned.status_code == 200, tuned.text
    body = tuned.json()
    base = [t["base_logprob"] for t in body["tokens"]]
    assert base == [t["logprob"] for t in local.json()["tokens"]]  # the job's base model
    assert base[1:] != [t["logprob"] for t in body["tokens"]][1:]  # the job's own model differs
    assert body["stats"]["base_model"] == str(model_roots / "base")
    assert body["stats"]["base_mean_trained_loss"] == local.json()["stats"]["mean_trained_loss"]
    columns = client.post(
        "/api/score",
        json={**BODY, "model": f"job:{job_id}", "compare_base": True, "format": "columns"},
    ).json()
    assert columns["base_logprobs"] == base
    assert columns["logprobs"] == [t["logprob"] for t in body["tokens"]]


@pytest.mark.parametrize(
    ("change", "status", "needle", "setting"),
    [
        ({"model": "llama3"}, 424, "llama3", None),
        ({"model": "pickled"}, 422, "pickle", None),
        ({"model": "../etc"}, 422, "..", None),
        ({"model": "/etc"}, 422, "tokenizer_roots", "tokenizer_roots"),
        ({"model": "nobody/nothing"}, 424, "allow_hub", "allow_hub"),
        ({"model": "small-vocab"}, 422, "vocabulary", None),
        ({"model": "job:0000aaaa0000"}, 404, "0000aaaa0000", None),
        ({"model": "job:../x"}, 422, "job id", None),
        ({"model": ""}, 422, "model", None),
        ({"trust_remote_code": True}, 422, "trust_remote_code", None),
    ],
)
def test_bad_models_are_clear_4xx(client_for, change, status, needle, setting):
    err = assert_error(client_for().post("/api/score", json={**BODY, **change}), status, needle)
    assert err["setting"] == setting or setting is None


def test_a_job_that_did_not_succeed_has_no_model(client_for, score_settings, model_roots):
    job_id = finished_job(score_settings(), model_roots, "failed")
    response = client_for().post("/api/score", json={**BODY, "model": f"job:{job_id}"})
    assert_error(response, 422, job_id, "failed")


def test_tokens_are_bounded_by_a_setting(client_for):
    response = client_for(max_score_tokens=20).post("/api/score", json=BODY)
    err = assert_error(response, 422, "max_score_tokens")
    assert err["setting"] == "max_score_tokens"


def test_a_hub_model_offline_is_a_424(client_for):
    response = client_for(allow_hub=True).post(
        "/api/score", json={**BODY, "model": "HuggingFaceTB/no-such-model-here"}
    )
    assert_error(response, 424, "not reachable", "tokenizer_roots")


def test_one_scoring_at_a_time_then_429(client_for, score_settings):
    client = client_for(score_wait_s=0)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with models.device_turn(score_settings()):
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert held.wait(10)
        response = client.post("/api/score", json=BODY)
        assert_error(response, 429, "score_wait_s")
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        release.set()
        worker.join()
    assert client.post("/api/score", json=BODY).status_code == 200


def test_the_columnar_answer_holds_the_same_scores(client):
    tokens = client.post("/api/score", json=BODY).json()
    columns = client.post("/api/score", json={**BODY, "format": "columns"})
    assert columns.status_code == 200, columns.text
    body = columns.json()
    assert body["format"] == "columns" and "tokens" not in body
    assert body["ids"] == tokens["input_ids"]
    assert body["logprobs"] == [t["logprob"] for t in tokens["tokens"]]
    assert body["entropies"] == [t["entropy"] for t in tokens["tokens"]]
    assert body["stats"] == tokens["stats"] and body["lints"] == tokens["lints"]
