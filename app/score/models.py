"""The causal LMs that scoring runs: found by the job rules, loaded once, used one at a time.

A model reference resolves as a fine-tune job's does (`app.train.spec.resolve_model`: a bundled
name, a folder under the tokenizer_roots setting with the same symlink checks, or a Hub id) and
loads as a job's model does (fp32, safetensors only, no remote code). Loaded models are kept in a
small least-recently-used cache (setting score_model_cache_size); one scoring at a time runs on
the device, and a request that cannot get it within score_wait_s gets a 429 with Retry-After.

Design concession: scoring runs in the server process, behind the device lock, rather than in a
worker: a forward pass cannot be interrupted, but it is bounded by max_score_tokens and needs no
process of its own to clean up after a crash (nothing outlives the server).

Example: with models.device_turn(settings): model = models.load("/m/smollm2", settings)
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import BusyError, InputError, UnavailableError
from app.settings import Settings
from app.tokenizers import hub
from app.train.spec import resolve_model

JOB_PREFIX = "job:"
MODEL_FILES = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja"]

_device_lock = threading.Lock()
_cache_lock = threading.Lock()
_cache: OrderedDict[str, Any] = OrderedDict()


def resolve(ref: str, settings: Settings) -> str:
    """A model reference that is not a job -> the folder to load (a Hub model's snapshot)."""
    target = resolve_model(ref, settings)
    return _hub_snapshot(target) if target == ref and hub.is_hub_id(ref) else target


def _hub_snapshot(ref: str) -> str:
    """A local snapshot of a Hub model's config, tokenizer and safetensors (cache first);
    pickled weights and code are never downloaded."""
    # Imported here: only a Hub id needs the Hub client.
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(ref, allow_patterns=MODEL_FILES, local_files_only=True))
    except (OSError, ValueError):
        pass
    try:
        return str(snapshot_download(ref, allow_patterns=MODEL_FILES, etag_timeout=hub.TIMEOUT_S))
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UnavailableError(
            f"The Hub model {ref} is not reachable from here and not in the local HF cache "
            f"({reason}); use smollm2, a job's model or a folder under the tokenizer_roots "
            "setting. Change the 'model' field.",
            field="model",
        ) from None


def job_model_folder(job_id: str, settings: Settings) -> Path:
    """Where a finished job saved its model. Example: "3f2a" -> <home>/jobs/3f2a/model"""
    if not job_id.isalnum():
        raise InputError(
            f"{JOB_PREFIX}{job_id} is not a job id (letters and digits only). Change the "
            "'model' field.",
            field="model",
        )
    return settings.jobs_dir / job_id / "model"


@contextlib.contextmanager
def device_turn(settings: Settings) -> Iterator[None]:
    """Hold the scoring device; wait at most score_wait_s for it, then BusyError (429)."""
    if not _device_lock.acquire(timeout=max(0, settings.score_wait_s)):
        raise BusyError(
            f"Another scoring request has held the model for over {settings.score_wait_s} s; "
            "try again shortly (the wait is the score_wait_s setting).",
            setting="score_wait_s",
            headers={"Retry-After": str(max(1, settings.score_wait_s))},
        )
    try:
        yield
    finally:
        _device_lock.release()


def load(target: str, settings: Settings) -> Any:
    """The model at `target` (a folder or a Hub id), from the cache or loaded now (call it inside
    `device_turn`, so two requests never load at once)."""
    with _cache_lock:
        if target in _cache:
            _cache.move_to_end(target)
            return _cache[target]
    model = _load(target)
    with _cache_lock:
        _cache[target] = model
        while len(_cache) > max(1, settings.score_model_cache_size):
            _cache.popitem(last=False)
    return model


def _load(target: str) -> Any:
    # torch and transformers load on the first scoring, not when the server starts; the model
    # loads exactly as a fine-tune job's does (fp32, safetensors only, no remote code).
    import torch

    from app.train.distributed import Dist
    from app.train.modeling import load_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = load_model(target, Dist(device=device))
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise UnavailableError(
            f"The model {Path(target).name or target} could not be loaded ({reason}). "
            "Change the 'model' field (a Hub id needs the Hub or its local cache).",
            field="model",
        ) from None
    return model.eval()


def vocab_size(model: Any) -> int:
    """Rows of the model's output layer: ids at or above it cannot be scored."""
    return int(model.get_output_embeddings().weight.shape[0])
