"""`maskscope train`: run one fine-tune in the foreground, without the web server.

Design concession: the command runs the job in this process (one device); for several GPUs run
the written spec with `torchrun --nproc_per_node=N -m app.train OUT/spec.json`, which is what the
server does too. CLI runs are not recorded in the jobs database.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from app.errors import MaskscopeError
from app.settings import Settings
from app.train.job import run_job
from app.train.spec import JobSpec, check_spec

log = logging.getLogger(__name__)
FLAGS: list[tuple[str, type]] = [
    ("model", str),
    ("tokenizer", str),
    ("dialect", str),
    ("train_on", str),
    ("steps", int),
    ("batch_size", int),
    ("grad_accum", int),
    ("max_length", int),
    ("learning_rate", float),
    ("neftune_alpha", float),
    ("neftune_mode", str),
    ("seed", int),
]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="Fine-tune a model with NEFTune (foreground).")
    parser.add_argument(
        "--spec",
        type=Path,
        help="A job spec JSON file (same body as POST /api/jobs); flags below override its fields.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="JSONL of conversations (messages, ShareGPT "
        "or Alpaca rows); default: the bundled demo dataset.",
    )
    for name, kind in FLAGS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    parser.add_argument("--compare-baseline", action="store_true", default=None)
    parser.add_argument("--pack", action="store_true", default=None)
    parser.add_argument(
        "--out", type=Path, help="Job folder (default: a new one under $MASKSCOPE_HOME/jobs)."
    )
    parser.set_defaults(func=run)


def build_spec(args: argparse.Namespace) -> JobSpec:
    """Spec file, then flags. Example: --steps 5 --pack -> JobSpec(steps=5, pack=True, ...)"""
    body: dict[str, Any] = json.loads(args.spec.read_text()) if args.spec else {}
    for name in [n for n, _ in FLAGS] + ["compare_baseline", "pack"]:
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    if args.data:
        lines = args.data.read_text(encoding="utf-8").splitlines()
        body["data"] = {"conversations": [json.loads(line) for line in lines if line.strip()]}
    return JobSpec.model_validate(body)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        spec = build_spec(args)
        check_spec(spec, settings)
    except (MaskscopeError, ValueError) as exc:
        log.error("invalid job spec: %s", exc)
        return 2
    out = args.out or settings.jobs_dir / f"cli-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps({"id": out.name, "spec": spec.model_dump(mode="json")}))
    log.info("job folder: %s", out)
    code = run_job(spec_path)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    for sample in next((e["samples"] for e in reversed(events) if e["type"] == "samples"), []):
        log.info(
            "%s\n  before: %s\n  after:  %s",
            sample["prompt"],
            sample.get("before"),
            sample.get("after"),
        )
    log.info("status: %s; model in %s", events[-1].get("status"), out / "model")
    return code
