"""Jobs pages: presets (incl. the playground's conversation), list, job page, results fragment."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.train.spec import JobSpec


@pytest.fixture
def app_and_store(tmp_path):
    app = create_app(Settings(home=tmp_path / "home", allowed_hosts=["testserver"]))
    with TestClient(app) as client:
        yield client, app.state.job_store


def _script_json(html: str, element_id: str):
    match = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S
    )
    assert match, element_id
    return json.loads(match.group(1))


def test_jobs_page_offers_valid_presets(app_and_store):
    client, _ = app_and_store
    html = client.get("/jobs").text
    presets = _script_json(html, "job-presets")
    assert [p["name"] for p in presets][:1] == ["demo"]
    for preset in presets:
        JobSpec.model_validate(preset["spec"])
    assert 'href="/static/css/jobs.css"' in html and "/static/js/jobs.js" in html
    assert 'id="eval_every"' in html and 'id="eval_examples"' in html


def test_playground_conversation_becomes_the_first_preset(app_and_store):
    client, _ = app_and_store
    query = (
        "v=1&tokenizer=qwen3&dialect=chatml&train_on=assistant&train_on_eot=on"
        "&role=user&content=Hi&role=assistant&content=Yo"
    )
    presets = _script_json(client.get(f"/jobs?{query}").text, "job-presets")
    first = presets[0]
    assert first["name"] == "playground"
    assert first["spec"]["data"] == {
        "conversations": [
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
        ]
    }
    assert first["spec"]["tokenizer"] == "qwen3" and first["spec"]["dialect"] == "chatml"
    JobSpec.model_validate(first["spec"])


def test_job_list_page_and_results_escape_user_text(app_and_store):
    client, store = app_and_store
    evil = "<script>alert(1)</script>"
    job, _ = store.create(JobSpec(sample_prompts=[evil]), key=None, max_active=8)
    store.update(job.id, samples=[{"prompt": evil, "before": evil, "before_passes": False}])
    listing = client.get("/jobs/list", headers={"HX-Request": "true"}).text
    assert f'href="/jobs/{job.id}"' in listing
    page = client.get(f"/jobs/{job.id}").text
    assert evil not in page
    assert _script_json(page, "job-data")["samples"][0]["prompt"] == evil
    results = client.get(f"/jobs/{job.id}/results", headers={"HX-Request": "true"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in results and evil not in results
    assert "✗ fails: answer starts with &#39;Ahoy!&#39;" in results
    assert "The check looks at the format only" in results


def test_job_page_shows_progress_per_arm_the_phase_and_the_verdict(app_and_store):
    client, store = app_and_store
    spec = JobSpec(steps=8, compare_baseline=True, max_new_tokens=4)
    job, _ = store.create(spec, key=None, max_active=8)
    store.update(job.id, step=11, info={"phase": "training arm 2 of 2", "device": "cpu"})
    for arm, losses in (("neftune", [2.50, 2.31]), ("baseline", [2.50, 2.35])):
        for step, loss in zip((0, 8), losses, strict=True):
            store.add_metric(job.id, {"arm": arm, "step": step, "loss": None, "eval_loss": loss})
    store.update(
        job.id,
        samples=[
            {
                "prompt": "Hi?",
                "before": "Hello",
                "before_tokens": 2,
                "after": "Ahoy!",
                "after_tokens": 3,
            }
        ],
    )
    page = client.get(f"/jobs/{job.id}").text
    assert "arm 1 (NEFTune): 8/8 · arm 2 (baseline): 3/8" in page
    assert '<b id="job-phase">training arm 2 of 2</b>' in page
    assert "NEFTune&#39;s held-out loss ended 0.04 below the baseline&#39;s (2.31 vs 2.35)" in page
    assert "2 tokens" in page and "3 tokens" in page
    assert f'href="/api/jobs/{job.id}/metrics.csv"' in page
    assert "artifacts.zip" not in page, "no zip link before the model is saved"
    store.update(job.id, artifacts=["config.json"])
    results = client.get(f"/jobs/{job.id}/results", headers={"HX-Request": "true"}).text
    assert f'href="/api/jobs/{job.id}/artifacts.zip"' in results


def test_unknown_job_page_is_404(app_and_store):
    client, _ = app_and_store
    assert client.get("/jobs/doesnotexist").status_code == 404
