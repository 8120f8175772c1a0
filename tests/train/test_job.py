"""A whole job process on a tiny model: events, samples, artifacts; 2-process DDP (gloo); and a
job that stops by itself once the server that launched it is gone."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.train.job import process_alive
from app.train.runner import ROOT, job_command, job_env
from tests.train.job_processes import end_job_processes, wait_for_no_job_processes

INTERRUPTED = {"type": "status", "status": "failed", "error": "interrupted: the server stopped"}


def job_launch(
    settings, spec: dict, *, procs: int = 1, name: str = "job", server_pid: int | None = None
) -> tuple[list[str], dict[str, str], Path]:
    """(command, environment, job folder) exactly as the runner builds them; server: this pytest."""
    job_dir = settings.jobs_dir / name
    job_dir.mkdir(parents=True)
    spec_path = job_dir / "spec.json"
    spec_path.write_text(json.dumps({"id": name, "spec": spec}))
    env = {**job_env(settings, server_pid or os.getpid()), "OMP_NUM_THREADS": "1"}
    return job_command(spec_path, procs), env, job_dir


def read_events(job_dir: Path) -> list[dict]:
    path = job_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_job(settings, spec: dict, *, procs: int = 1, name: str = "job") -> list[dict]:
    command, env, job_dir = job_launch(settings, spec, procs=procs, name=name)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    events = read_events(job_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return events


def _spec(model_dir: Path, **overrides) -> dict:
    return {
        "model": str(model_dir),
        "data": {"dataset": "demo"},
        "steps": 3,
        "batch_size": 4,
        "max_length": 64,
        "learning_rate": 1e-3,
        "seed": 0,
        "max_new_tokens": 4,
        **overrides,
    }


def test_job_trains_samples_and_saves(job_settings, tiny_model_dir):
    spec = _spec(
        tiny_model_dir, compare_baseline=True, pack=True, sample_prompts=["Hi?"], eval_every=2
    )
    events = run_job(job_settings, spec)
    metrics = [e for e in events if e["type"] == "metric" and e["loss"] is not None]
    assert [(m["arm"], m["step"]) for m in metrics] == [
        ("neftune", 1),
        ("neftune", 2),
        ("neftune", 3),
        ("baseline", 1),
        ("baseline", 2),
        ("baseline", 3),
    ]
    assert all(m["loss"] > 0 and m["tokens_per_s"] > 0 for m in metrics)
    # same seed and data: the first step sees the same batch, the noise makes the difference
    assert metrics[0]["loss"] != metrics[3]["loss"]
    # held-out loss: before the first step, every 2nd step and after the last, per arm
    evals = [(e["arm"], e["step"]) for e in events if e["type"] == "metric" and e["loss"] is None]
    assert evals == [(arm, step) for arm in ("neftune", "baseline") for step in (0, 2, 3)]
    held = [e["eval_loss"] for e in events if e.get("eval_loss") is not None]
    assert all(loss > 0 for loss in held)
    assert held[0] == pytest.approx(held[3], rel=1e-5), "both arms start from the same model"
    phases = [e["phase"] for e in events if e["type"] == "phase"]
    assert phases == [
        "loading model",
        "sampling before",
        "training arm 1 of 2",
        "sampling after",
        "saving",
        "loading model",
        "training arm 2 of 2",
        "sampling after",
    ]
    first_samples = next(i for i, e in enumerate(events) if e["type"] == "samples")
    first_metric = next(i for i, e in enumerate(events) if e["type"] == "metric")
    assert first_samples < first_metric, "the answers before training are written at once"
    samples = [e for e in events if e["type"] == "samples"][-1]["samples"]
    assert set(samples[0]) >= {"prompt", "before", "after", "after_baseline", "before_passes"}
    for key in ("before", "after", "after_baseline"):
        assert 0 <= samples[0][f"{key}_tokens"] <= spec["max_new_tokens"]
    assert events[-1] == {**events[-1], "type": "status", "status": "succeeded"}
    files = [e for e in events if e["type"] == "artifacts"][0]["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    saved = job_settings.jobs_dir / "job" / "model"
    tok = AutoTokenizer.from_pretrained(saved)
    assert "<|im_start|>" in tok.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False
    )
    assert AutoModelForCausalLM.from_pretrained(saved).config.num_hidden_layers == 2


def test_job_failure_is_reported_as_an_event(job_settings, tiny_model_dir):
    spec = _spec(
        tiny_model_dir, data={"conversations": [[{"role": "user", "content": "only a question"}]]}
    )
    with pytest.raises(AssertionError):
        run_job(job_settings, spec)
    events = (job_settings.jobs_dir / "job" / "events.jsonl").read_text().splitlines()
    last = json.loads(events[-1])
    assert last["status"] == "failed" and "trained token" in last["error"]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(job_settings, tiny_model_dir):
    spec = _spec(
        tiny_model_dir,
        neftune_alpha=0.0,
        steps=3,
        grad_accum=2,
        max_new_tokens=1,
        sample_prompts=["x"],
    )

    def losses(events: list[dict], key: str) -> list[float]:
        return [e[key] for e in events if e["type"] == "metric" and e.get(key) is not None]

    one = run_job(job_settings, spec, name="one")
    two = run_job(job_settings, spec, procs=2, name="two")
    assert len(losses(one, "loss")) == len(losses(two, "loss")) == 3
    assert losses(two, "loss") == pytest.approx(losses(one, "loss"), rel=1e-4)
    # the held-out loss too: each rank measures half the held-out rows, summed over ranks
    assert len(losses(one, "eval_loss")) == 4
    assert losses(two, "eval_loss") == pytest.approx(losses(one, "eval_loss"), rel=1e-4)


@contextlib.contextmanager
def started_job(
    command: list[str], env: dict[str, str], job_dir: Path
) -> Iterator[subprocess.Popen]:
    """A job in its own session, as the runner starts it; none of it outlives the test."""
    with (job_dir / "log.txt").open("ab") as log:
        job = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield job
    finally:
        end_job_processes(job_dir)
        job.wait()


def wait_until(check, timeout: float) -> float:
    """Seconds until check() held; fails after timeout."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def assert_stops_when_the_server_dies(settings, model_dir: Path, procs: int) -> None:
    server = subprocess.Popen(["sleep", "600"])
    spec = _spec(model_dir, steps=100_000, batch_size=2, max_new_tokens=1)
    command, env, job_dir = job_launch(settings, spec, procs=procs, server_pid=server.pid)
    with started_job(command, env, job_dir) as job:
        try:
            wait_until(
                lambda: (
                    job.poll() is not None
                    or any(e["type"] == "metric" for e in read_events(job_dir))
                ),
                240,
            )
            assert job.poll() is None, (job_dir / "log.txt").read_text()[-3000:]
        finally:
            server.kill()
            server.wait()
        # every process of the job (torchrun and each rank too) is gone within a few seconds
        wait_for_no_job_processes(job_dir, timeout=15)
        assert job.wait() != 0
    events = read_events(job_dir)
    assert events[-1] == {**INTERRUPTED, "time": events[-1]["time"], "phase": events[-1]["phase"]}
    assert not [e for e in events if e["type"] == "artifacts"]
    assert not (job_dir / "model").exists()
    assert max(e["step"] for e in events if e["type"] == "metric") < 100_000


def test_job_stops_soon_after_the_server_is_gone(job_settings, tiny_model_dir):
    assert_stops_when_the_server_dies(job_settings, tiny_model_dir, procs=1)


@pytest.mark.slow
def test_every_torchrun_rank_stops_after_the_server_is_gone(job_settings, tiny_model_dir):
    assert_stops_when_the_server_dies(job_settings, tiny_model_dir, procs=2)


def test_job_of_a_server_already_gone_loads_nothing(job_settings, tiny_model_dir):
    gone = subprocess.Popen(["true"])
    gone.wait()
    command, env, job_dir = job_launch(job_settings, _spec(tiny_model_dir), server_pid=gone.pid)
    with started_job(command, env, job_dir) as job:
        assert job.wait(timeout=60) != 0
    events = read_events(job_dir)
    assert [{k: v for k, v in e.items() if k != "time"} for e in events] == [
        {**INTERRUPTED, "phase": "starting"}
    ]
    assert not (job_dir / "model").exists()


def test_a_dead_server_is_gone_even_before_it_is_reaped():
    server = subprocess.Popen(["sleep", "600"])
    assert process_alive(server.pid)
    server.kill()
    os.waitid(os.P_PID, server.pid, os.WEXITED | os.WNOWAIT)  # a zombie: exited, not reaped
    assert not process_alive(server.pid)
    server.wait()
    assert not process_alive(server.pid)
