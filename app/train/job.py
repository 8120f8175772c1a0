"""One fine-tune job, start to finish, inside its own process (``python -m app.train SPEC.json``).

The job folder holds ``spec.json`` (written by the runner), ``events.jsonl`` (appended here, read
by the server: progress, metrics, samples, artifacts, final status), ``CANCEL`` (created by the
server to stop at the next step) and ``model/`` (safetensors + tokenizer with its chat template).

A job launched by the server (``MASKSCOPE_SERVER_PID`` set) also stops once that server is gone,
at its next step, generated token or phase, recording "interrupted: the server stopped" and saving
no model: an orphan must not keep training, sampling, writing into the job folder or holding the
device. A cancel is honoured at the same points.

Phases are events too ("loading model", "sampling before", "training arm 1 of 2", "sampling
after", "saving"), and so are the held-out losses (metrics with ``eval_loss``) and the answers
before training, the moment they exist.

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
from transformers import StoppingCriteria, StoppingCriteriaList

from app.chat.batching import pad_batch
from app.chat.tokenizer import Tokenizer
from app.errors import LimitError
from app.settings import Settings
from app.train import distributed
from app.train.data import TrainingData, load_data, render_examples
from app.train.loop import LoopConfig, split_held_out, train
from app.train.modeling import load_model, load_training_tokenizer, save_model, stop_token_ids
from app.train.retention import failure_message
from app.train.runner import SERVER_GONE, SERVER_PID_ENV
from app.train.spec import JobSpec, resolve_model, sample_prompt_ids

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


class ServerGoneError(Exception):
    """The server that launched this job is gone: stop without writing anything more."""


class CancelledJobError(Exception):
    """A cancel arrived while the job was sampling: it ends as cancelled, like during training."""


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

    def check(self) -> None:
        """After an interruptible phase that saw a stop: raise why (the server's end first)."""
        self.check_server()
        if self():
            raise CancelledJobError("cancelled")


class StopGenerating(StoppingCriteria):  # type: ignore[misc]
    """Ends `generate` at the next token once the job must stop (cancel, SIGTERM, server gone)."""

    def __init__(self, stop: StopCheck) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        return torch.full((input_ids.shape[0],), self.stop(), device=input_ids.device)


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
        self.phase = "starting"

    def enter(self, phase: str, **payload: Any) -> None:
        """A new phase of the job. Example: enter("training arm 1 of 2", arm="neftune")"""
        self.phase = phase
        self("phase", phase=phase, **payload)

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
            events("status", status="failed", error=str(exc), phase=events.phase)
            return 1
        except CancelledJobError:
            status = "cancelled"
        except Exception as exc:  # the job's error becomes its status; the server stays up
            log.exception("job failed")
            events("status", status="failed", error=failure_message(exc, job_dir))
            return 1
        events("status", status=status)
    return 0


# Long: the job's phases in the order they run, each followed by its stop check, read top to
# bottom as the events it writes; split, the order of loading, sampling and saving would hide.
def _run(
    spec: JobSpec, job_dir: Path, dist: distributed.Dist, events: Events, stop: StopCheck
) -> str:
    settings = Settings.from_env()
    events.enter("loading model")
    model_path = resolve_model(spec.model, settings)
    tokenizer = load_training_tokenizer(spec, settings)
    data = load_data(spec.data.model_dump(exclude_none=True), spec.sample_prompts)
    prompts = _prompts(spec, data, tokenizer, settings)
    examples = render_examples(
        data.conversations, spec.render_spec(), tokenizer, settings, rows=data.rows
    )
    data.examples, held_out = split_held_out(examples, spec.eval_examples, spec.seed)
    stop.check_server()
    total = spec.total_steps
    events(
        "progress",
        step=0,
        total_steps=total,
        examples=len(data.examples),
        held_out=len(held_out),
        device=str(dist.device),
        world_size=dist.world,
    )
    torch.manual_seed(spec.seed)
    model = load_model(model_path, dist)
    stop.check_server()
    events.enter("sampling before")
    samples = _sample(model, tokenizer, spec, data, prompts, dist, "before", [], stop)
    events("samples", samples=samples)
    offset = 0
    for index, (arm, alpha) in enumerate(spec.arms):
        if offset:
            events.enter("loading model", arm=arm)
            torch.manual_seed(spec.seed)
            model = load_model(model_path, dist)
        events.enter(f"training arm {index + 1} of {len(spec.arms)}", arm=arm)
        done = _train_arm(
            model, spec, data, tokenizer, dist, events, arm, alpha, offset, stop, held_out
        )
        stop.check_server()
        if done < spec.steps:
            return "cancelled"
        key = "after" if offset == 0 else f"after_{arm}"
        events.enter("sampling after", arm=arm)
        samples = _sample(model, tokenizer, spec, data, prompts, dist, key, samples, stop)
        events("samples", samples=samples)
        if offset == 0 and dist.is_main:
            events.enter("saving", arm=arm)
            files = save_model(model, tokenizer, spec, job_dir / "model")
            stop.check_server()
            events("artifacts", files=files)
        offset += spec.steps
        dist.barrier()
    return "succeeded"


def _prompts(
    spec: JobSpec, data: TrainingData, tokenizer: Tokenizer, settings: Settings
) -> list[tuple[str, list[int]]]:
    """(prompt, ids) to sample on: the spec's own (bounded, refused when over), or the first user
    turns of the data that fit the bound."""
    if spec.sample_prompts:
        ids = sample_prompt_ids(spec.sample_prompts, spec, tokenizer, settings)
        return list(zip(spec.sample_prompts, ids, strict=True))
    fitting = []
    for prompt in data.prompts:
        with contextlib.suppress(LimitError):
            fitting.append((prompt, sample_prompt_ids([prompt], spec, tokenizer, settings)[0]))
    return fitting


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
    held_out: list[dict[str, list[int]]],
) -> int:
    def emit(metric: dict[str, Any]) -> None:
        if "eval_loss" in metric:
            log.info("%s step %d held-out loss %.4f", arm, metric["step"], metric["eval_loss"])
            events("metric", arm=arm, loss=None, **metric)
            return
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

    return train(
        model,
        data.examples,
        _loop_config(spec, tokenizer, alpha),
        dist,
        emit=emit,
        should_stop=should_stop,
        held_out=held_out,
    )


def _loop_config(spec: JobSpec, tokenizer: Tokenizer, alpha: float) -> LoopConfig:
    """What one arm trains with: the spec's fields, the arm's noise, the tokenizer's pad id."""
    warmup = spec.warmup_steps if spec.warmup_steps is not None else max(0, spec.steps // 10)
    return LoopConfig(
        steps=spec.steps,
        batch_size=spec.batch_size,
        grad_accum=spec.grad_accum,
        learning_rate=spec.learning_rate,
        warmup_steps=warmup,
        neftune_alpha=alpha,
        neftune_mode=spec.neftune_mode,
        pack=spec.pack,
        seed=spec.seed,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        eval_every=spec.eval_interval,
    )


def answer_tokens(row: list[int], stops: list[int]) -> int:
    """Tokens of a generated answer, up to its first stop token. Example: [5, 9, 2, 2], [2] -> 2"""
    return next((i for i, token in enumerate(row) if token in stops), len(row))


@torch.no_grad()
def _sample(
    model: Any,
    tokenizer: Tokenizer,
    spec: JobSpec,
    data: TrainingData,
    prompts: list[tuple[str, list[int]]],
    dist: distributed.Dist,
    key: str,
    samples: list[dict[str, Any]],
    stop: StopCheck,
) -> list[dict[str, Any]]:
    """Greedy answers to the sample prompts and their lengths in tokens, added under `key` (rank
    0 only, one batch); a cancel or the server's end stops it at the next token (and raises)."""
    if not dist.is_main or not prompts:
        return samples
    model.eval()
    out = [dict(s) for s in samples] or [{"prompt": p} for p, _ in prompts]
    stops = stop_token_ids(tokenizer)
    rows = pad_batch(
        [{"input_ids": ids, "labels": ids} for _, ids in prompts], stops[0], padding_side="left"
    )
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
            stopping_criteria=StoppingCriteriaList([StopGenerating(stop)]),
        )
    stop.check()
    for sample, row in zip(out, generated[:, ids.shape[1] :].tolist(), strict=True):
        sample[key] = tokenizer.decode(row, skip_special_tokens=True).strip()
        sample[f"{key}_tokens"] = answer_tokens(row, stops)
        if data.check:
            sample[f"{key}_passes"] = bool(re.search(data.check["regex"], sample[key]))
    return out
