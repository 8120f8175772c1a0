"""DESIGN.md §7 item 38 (jobs): kill -9 of the server leaves no job process behind for more than a
few seconds, in any phase (sampling included), and a restart keeps what the job wrote before.

A real uvicorn on a private home, a real job process (tiny random model, real SmolLM2 tokenizer).
The server is frozen (SIGSTOP) while the job trains, so the job writes metrics the server never
reads, then killed with SIGKILL: the restart must read them back from the job's events file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from tests.train.job_processes import end_job_processes, job_processes, wait_for_no_job_processes
from tests.train.test_job import read_events, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from serve import uvicorn_server

PROMPTS = [f"Tell me a long story about the number {n}, please." for n in range(16)]


def test_38_kill_9_while_sampling_leaves_no_job_and_the_restart_keeps_its_events(
    job_settings_for, tiny_model_dir
):
    settings = job_settings_for()
    env = {
        "MASKSCOPE_HOME": str(settings.home),
        "MASKSCOPE_TOKENIZER_ROOTS": str(tiny_model_dir.parent),
        "MASKSCOPE_ALLOW_HUB": "false",
        "OMP_NUM_THREADS": "1",  # the job inherits it: two cores, shared with the server
    }
    spec = {
        "model": str(tiny_model_dir),
        "data": {"dataset": "demo"},
        "steps": 3,
        "batch_size": 2,
        "max_length": 64,
        "learning_rate": 1e-3,
        "eval_every": 1,
        "max_new_tokens": 512,
        "sample_prompts": PROMPTS,
    }
    try:
        with uvicorn_server(env) as (base, server), httpx.Client(base_url=base, timeout=30) as http:
            job_id = http.post("/api/jobs", json=spec).json()["id"]
            job_dir = settings.jobs_dir / job_id

            def phases() -> list[str]:
                return [e["phase"] for e in read_events(job_dir) if e["type"] == "phase"]

            wait_until(lambda: "training arm 1 of 1" in phases(), 120)
            os.kill(server.pid, signal.SIGSTOP)  # the server reads nothing from here on
            wait_until(lambda: phases()[-1] == "sampling after", 60)
            time.sleep(0.3)  # inside the generation of 16 x 512 tokens
            killed = time.monotonic()
            server.kill()  # a crash: no shutdown hook runs
            server.wait()
        # gone within a few seconds, though its sampling had several seconds to go
        wait_for_no_job_processes(job_dir, timeout=5)
        assert time.monotonic() - killed < 5
        events = read_events(job_dir)
        assert events[-1]["error"] == "interrupted: the server stopped"
        assert events[-1]["phase"] == "sampling after"
        assert not (job_dir / "model").exists()
        written = [e for e in events if e["type"] == "metric"]
        assert len(written) == 3 + 4  # three steps and four held-out points

        with uvicorn_server(env) as (base, _), httpx.Client(base_url=base, timeout=30) as http:
            job = http.get(f"/api/jobs/{job_id}").json()
            assert job["status"] == "failed" and job["error"] == "interrupted"
            # every metric the job wrote is kept, those the frozen server never read too
            assert [(m["step"], m["loss"], m.get("eval_loss")) for m in job["metrics"]] == [
                (e["step"], e["loss"], e.get("eval_loss")) for e in written
            ]
            assert job["progress"]["step"] == 3 and job["progress"]["phase"] == "sampling after"
            assert [s["prompt"] for s in job["samples"]] == PROMPTS
            assert all("before" in s and "after" not in s for s in job["samples"])
            assert job["summary"]["sentence"].startswith("The held-out loss of NEFTune went from")
            csv_lines = http.get(f"/api/jobs/{job_id}/metrics.csv").text.strip().splitlines()
            assert len(csv_lines) == 1 + len(written)
        assert not job_processes(settings.jobs_dir)
        assert json.loads((job_dir / "spec.json").read_text())["id"] == job_id
    finally:
        end_job_processes(settings.jobs_dir)
