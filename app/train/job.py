"""One fine-tune job, start to finish, inside its own process (``python -m app.train SPEC.json``).

The job folder holds ``spec.json`` (written by the runner), ``events.jsonl`` (appended here, read
by the server: progress, metrics, samples, artifacts, final status), ``CANCEL`` (created by the
server to stop at the next step) and ``model/`` (safetensors + tokenizer with its chat template).

A job launched by the server (``MASKSCOPE_SERVER_PID`` set) also stops once that server is gone,
at its next step or phase, recording "interrupted: the server stopped" and saving no model: an
orphan must not keep training, writing into the job folder or holding the device.

Design concession: events go through a file rather than a pipe, so the same entry point works
alone and under torchrun (whose launcher owns the children's stdout), and a server restart can
still read what a job wrote.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from app.chat.batching import pad_batch
from app.chat.tokenizer import Tokenizer
from app.settings import Settings
from app.train import distributed
from app.train.data import TrainingData, load_data, prompt_ids, render_examples
from app.train.loop import LoopConfig, train
from app.train.modeling import load_model, load_training_tokenizer, save_model, stop_token_ids
from app.train.retention import failure_message
from app.train.runner import SERVER_PID_ENV
from app.train.spec import JobSpec, resolve_model

log = logging.getLogger(__name__)
SERVER_GONE = "interrupted: the server stopped"
PR_SET_PDEATHSIG = 1


class ServerGoneError(Exception):
    """The server that launched this job is gone: stop without writing anything more."""


def process_alive(pid: int) -> bool:
    """Whether pid still runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs: os.kill's answer stands
    return state not in ("Z", "X")


class StopCheck:
    """Why a job stops early: a cancel (``CANCEL`` file, SIGTERM) or its server being gone."""

    def __init__(self, job_dir: Path, server_pid: int | None) -> None:
        self.cancel_file, self.server_pid = job_dir / "CANCEL", server_pid
        self.signalled = False

    def __call__(self) -> bool:
        return self.signalled or self.cancel_file.exists() or self.server_gone()

    def server_gone(self) -> bool:
        return self.server_pid is not None and not process_alive(self.server_pid)

    def check_server(self) -> None:
        """Between phases (loading, sampling, saving): raise once the server is gone."""
        if self.server_gone():
            raise ServerGoneError(SERVER_GONE)


def signal_when_parent_dies() -> None:
    """Linux: SIGTERM (stop at the next step) once the parent dies, a second line behind polling.

    The parent is the server for a single process and torchrun for each rank under DDP. Linux
    sends it when the parent's starting thread ends: the runner starts jobs from the event loop's
    thread, which lives as long as the server.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Events:
    """Append-only JSON lines; only rank 0 writes."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def __call__(self, kind: str, **payload: Any) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"type": kind, "time": time.time(), **payload}) + "\n")


def run_job(spec_path: Path) -> int:
    """Run the job described by spec.json; return the process exit code."""
    job_dir = spec_path.parent
    payload = json.loads(spec_path.read_text(encoding="utf-8"))
    spec = JobSpec.model_validate(payload["spec"])
    server_pid = os.environ.get(SERVER_PID_ENV)
    stop = StopCheck(job_dir, int(server_pid) if server_pid else None)
    signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "signalled", True))
    if server_pid:
        signal_when_parent_dies()
    with distributed.session() as dist:
        events = Events(job_dir / "events.jsonl", dist.is_main)
        try:
            # also covers a server that died before the parent-death signal was armed
            stop.check_server()
            status = _run(spec, job_dir, dist, events, stop)
        except ServerGoneError as exc:
            log.warning("the server that launched this job is gone: stopping")
            events("status", status="failed", error=str(exc))
            return 1
        except Exception as exc:  # the job's error becomes its status; the server stays up
            log.exception("job failed")
            events("status", status="failed", error=failure_message(exc, job_dir))
            return 1
        events("status", status=status)
    return 0


def _run(
    spec: JobSpec, job_dir: Path, dist: distributed.Dist, events: Events, stop: StopCheck
) -> str:
    settings = Settings.from_env()
    model_path = resolve_model(spec.model, settings)
    tokenizer = load_training_tokenizer(spec, settings)
    data = load_data(spec.data.model_dump(exclude_none=True), spec.sample_prompts)
    data.examples = render_examples(data.conversations, spec.render_spec(), tokenizer, settings)
    stop.check_server()
    total = spec.total_steps
    events(
        "progress",
        step=0,
        total_steps=total,
        examples=len(data.examples),
        device=str(dist.device),
        world_size=dist.world,
    )
    torch.manual_seed(spec.seed)
    model = load_model(model_path, dist)
    stop.check_server()
    samples = _sample(model, tokenizer, spec, data, dist, "before", [])
    stop.check_server()
    events("samples", samples=samples)
    offset = 0
    for arm, alpha in spec.arms:
        if offset:
            torch.manual_seed(spec.seed)
            model = load_model(model_path, dist)
        done = _train_arm(model, spec, data, tokenizer, dist, events, arm, alpha, offset, stop)
        stop.check_server()
        if done < spec.steps:
            return "cancelled"
        key = "after" if offset == 0 else f"after_{arm}"
        samples = _sample(model, tokenizer, spec, data, dist, key, samples)
        stop.check_server()
        events("samples", samples=samples)
        if offset == 0 and dist.is_main:
            files = save_model(model, tokenizer, spec, job_dir / "model")
            events("artifacts", files=files)
        offset += spec.steps
        dist.barrier()
    return "succeeded"


def _train_arm(
    model: Any,
    spec: JobSpec,
    data: TrainingData,
    tokenizer: Tokenizer,
    dist: distributed.Dist,
    events: Events,
    arm: str,
    alpha: float,
    offset: int,
    should_stop: StopCheck,
) -> int:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    warmup = spec.warmup_steps if spec.warmup_steps is not None else max(0, spec.steps // 10)
    config = LoopConfig(
        steps=spec.steps,
        batch_size=spec.batch_size,
        grad_accum=spec.grad_accum,
        learning_rate=spec.learning_rate,
        warmup_steps=warmup,
        neftune_alpha=alpha,
        neftune_mode=spec.neftune_mode,
        pack=spec.pack,
        seed=spec.seed,
        pad_id=pad_id,
    )

    def emit(metric: dict[str, Any]) -> None:
        log.info(
            "%s step %d/%d loss %.4f lr %.2e %.0f tokens/s",
            arm,
            metric["step"],
            spec.steps,
            metric["loss"],
            metric["lr"],
            metric["tokens_per_s"],
        )
        events("metric", arm=arm, **metric)
        events("progress", step=offset + metric["step"], total_steps=spec.total_steps)

    return train(model, data.examples, config, dist, emit=emit, should_stop=should_stop)


@torch.no_grad()
def _sample(
    model: Any,
    tokenizer: Tokenizer,
    spec: JobSpec,
    data: TrainingData,
    dist: distributed.Dist,
    key: str,
    samples: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Greedy answers to the sample prompts, added under `key` (rank 0 only, one batch)."""
    if not dist.is_main:
        return samples
    model.eval()
    out = [dict(s) for s in samples] or [{"prompt": p} for p in data.prompts]
    stops = stop_token_ids(tokenizer)
    render_spec = spec.render_spec()
    prompts = [
        {"input_ids": ids, "labels": ids}
        for ids in (prompt_ids(s["prompt"], render_spec, tokenizer) for s in out)
    ]
    rows = pad_batch(prompts, stops[0], padding_side="left")
    ids = torch.tensor([r["input_ids"] for r in rows], device=dist.device)
    mask = torch.tensor([r["attention_mask"] for r in rows], device=dist.device)
    with dist.autocast():
        generated = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=spec.max_new_tokens,
            eos_token_id=stops,
            pad_token_id=stops[0],
        )
    for sample, row in zip(out, generated[:, ids.shape[1] :], strict=True):
        sample[key] = tokenizer.decode(row, skip_special_tokens=True).strip()
        if data.check:
            sample[f"{key}_passes"] = bool(re.search(data.check["regex"], sample[key]))
    return out
