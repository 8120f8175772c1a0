"""A whole job process on a tiny model: events, samples, artifacts; and 2-process DDP (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.train.runner import job_command, settings_env

ROOT = Path(__file__).resolve().parents[2]


def run_job(settings, spec: dict, *, procs: int = 1, name: str = "job") -> list[dict]:
    job_dir = settings.jobs_dir / name
    job_dir.mkdir(parents=True)
    spec_path = job_dir / "spec.json"
    spec_path.write_text(json.dumps({"id": name, "spec": spec}))
    command = job_command(spec_path, procs)
    env = {**os.environ, **settings_env(settings), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    events = [json.loads(line) for line in (job_dir / "events.jsonl").read_text().splitlines()]
    assert result.returncode == 0, result.stderr[-3000:]
    return events


def _spec(model_dir: Path, **overrides) -> dict:
    return {"model": str(model_dir), "data": {"dataset": "demo"}, "steps": 3, "batch_size": 4,
            "max_length": 64, "learning_rate": 1e-3, "seed": 0, "max_new_tokens": 4,
            **overrides}


def test_job_trains_samples_and_saves(job_settings, tiny_model_dir):
    spec = _spec(tiny_model_dir, compare_baseline=True, pack=True, sample_prompts=["Hi?"])
    events = run_job(job_settings, spec)
    metrics = [e for e in events if e["type"] == "metric"]
    assert [(m["arm"], m["step"]) for m in metrics] == [
        ("neftune", 1), ("neftune", 2), ("neftune", 3),
        ("baseline", 1), ("baseline", 2), ("baseline", 3)]
    assert all(m["loss"] > 0 and m["tokens_per_s"] > 0 for m in metrics)
    # same seed and data: the first step sees the same batch, the noise makes the difference
    assert metrics[0]["loss"] != metrics[3]["loss"]
    samples = [e for e in events if e["type"] == "samples"][-1]["samples"]
    assert set(samples[0]) >= {"prompt", "before", "after", "after_baseline", "before_passes"}
    assert events[-1] == {**events[-1], "type": "status", "status": "succeeded"}
    files = [e for e in events if e["type"] == "artifacts"][0]["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    saved = job_settings.jobs_dir / "job" / "model"
    tok = AutoTokenizer.from_pretrained(saved)
    assert "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "x"}],
                                                     tokenize=False)
    assert AutoModelForCausalLM.from_pretrained(saved).config.num_hidden_layers == 2


def test_job_failure_is_reported_as_an_event(job_settings, tiny_model_dir):
    spec = _spec(tiny_model_dir, data={"conversations": [
        [{"role": "user", "content": "only a question"}]]})
    with pytest.raises(AssertionError):
        run_job(job_settings, spec)
    events = (job_settings.jobs_dir / "job" / "events.jsonl").read_text().splitlines()
    last = json.loads(events[-1])
    assert last["status"] == "failed" and "trained token" in last["error"]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(job_settings, tiny_model_dir):
    spec = _spec(tiny_model_dir, neftune_alpha=0.0, steps=3, grad_accum=2, max_new_tokens=1,
                 sample_prompts=["x"])
    one = [e["loss"] for e in run_job(job_settings, spec, name="one") if e["type"] == "metric"]
    two = [e["loss"] for e in run_job(job_settings, spec, procs=2, name="two")
           if e["type"] == "metric"]
    assert len(one) == len(two) == 3
    assert two == pytest.approx(one, rel=1e-4)
