"""DESIGN.md §7 item 37: every input of a fine-tune job is bounded, and sampling can be stopped.

A prompt of 30k tokens once made a 1-step job run 4.5 minutes and its cancel take 170 s; a Hub
model id was accepted offline and failed later. Real app and SQLite; the sampling tests run a real
job process (tiny random model, real SmolLM2 tokenizer) and stop it while it generates.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.errors import assert_error
from tests.train.job_processes import wait_for_no_job_processes
from tests.train.test_job import job_launch, read_events, started_job, wait_until

PROMPTS = [f"Tell me a long story about the number {n}, please." for n in range(16)]


def body(model, **overrides) -> dict:
    return {
        "model": str(model),
        "data": {"dataset": "demo"},
        "steps": 1,
        "max_length": 64,
        "max_new_tokens": 1,
        **overrides,
    }


def stored_jobs(client) -> list:
    return client.get("/api/jobs").json()["jobs"]


def test_37_a_sample_prompt_over_the_token_bound_is_refused_at_submit(
    job_settings_for, tiny_model_dir
):
    settings = job_settings_for()
    huge = "word " * 30_000  # the reproduction: one 30k-token prompt
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        response = client.post("/api/jobs", json=body(tiny_model_dir, sample_prompts=["Hi?", huge]))
        err = assert_error(response, 422, "sample_prompts[1]", "max_sample_prompt_tokens")
        assert time.monotonic() - started < 10
        assert err["setting"] == "max_sample_prompt_tokens"
        assert stored_jobs(client) == []
    assert not settings.jobs_dir.exists() or not any(settings.jobs_dir.iterdir())


def test_37_the_bound_is_the_setting_counted_in_the_prompt_tokens_the_model_sees(
    job_settings_for, tiny_model_dir
):
    # SmolLM2's template adds its default system prompt and the assistant header: "Hi?" is 32
    with TestClient(create_app(job_settings_for(max_sample_prompt_tokens=32))) as client:
        short = client.post("/api/jobs", json=body(tiny_model_dir, sample_prompts=["Hi?"]))
        assert short.status_code == 202, short.text
        client.post(f"/api/jobs/{short.json()['id']}/cancel")
        over = client.post("/api/jobs", json=body(tiny_model_dir, sample_prompts=["Hi? Hi?"]))
        assert_error(over, 422, "sample_prompts[0]", "limit of 32")


def test_37_a_hub_model_is_refused_at_submit_when_offline(job_settings_for, tiny_model_dir):
    settings = dataclasses.replace(job_settings_for(), allow_hub=True)
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        hub_id = "maskscope-tests/no-such-model-anywhere"
        response = client.post("/api/jobs", json={**body(tiny_model_dir), "model": hub_id})
        err = assert_error(response, 424, hub_id, "'model'")
        assert err["field"] == "model"
        assert time.monotonic() - started < 30
        assert stored_jobs(client) == []


def sampling_job(settings, model_dir, server_pid: int):
    spec = {
        **body(model_dir, sample_prompts=PROMPTS, max_new_tokens=512),
        "batch_size": 2,
        "eval_examples": 0,
    }
    return job_launch(settings, spec, server_pid=server_pid)


def wait_for_phase(job, job_dir, phase: str) -> None:
    wait_until(
        lambda: (
            job.poll() is not None
            or any(e.get("phase") == phase for e in read_events(job_dir) if e["type"] == "phase")
        ),
        120,
    )
    assert job.poll() is None, (job_dir / "log.txt").read_text()[-3000:]


@pytest.mark.parametrize("how", ["cancel", "server-gone"])
def test_37_a_job_stops_within_a_second_or_two_while_it_samples(
    job_settings_for, tiny_model_dir, how
):
    """16 prompts x 512 new tokens take several seconds; the stop comes at the next token."""
    server = subprocess.Popen(["sleep", "600"])
    command, env, job_dir = sampling_job(job_settings_for(), tiny_model_dir, server.pid)
    try:
        with started_job(command, env, job_dir) as job:
            wait_for_phase(job, job_dir, "sampling before")
            time.sleep(0.3)  # well inside the generation
            if how == "cancel":
                (job_dir / "CANCEL").touch()
            else:
                server.kill()
            stopped = wait_until(lambda: job.poll() is not None, 30)
            wait_for_no_job_processes(job_dir, timeout=5)
    finally:
        server.kill()
        server.wait()
    assert stopped < 2.5, f"the job went on sampling for {stopped:.1f} s"
    events = read_events(job_dir)
    assert not [e for e in events if e["type"] in ("samples", "metric", "artifacts")]
    final = events[-1]
    if how == "cancel":
        assert {k: final[k] for k in ("type", "status")} == {
            "type": "status",
            "status": "cancelled",
        }
    else:
        assert final["error"] == "interrupted: the server stopped"
        assert final["phase"] == "sampling before"
    assert json.loads((job_dir / "spec.json").read_text())["spec"]["max_new_tokens"] == 512
