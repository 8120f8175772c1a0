"""Fixtures for scoring: the real SmolLM2-135M-Instruct, and small real models in allowed roots.

The reference figures come from a plain `AutoModelForCausalLM.from_pretrained(...)` forward pass
loaded here, independently of the scorer's own cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.settings import Settings
from app.train.spec import JobSpec
from app.train.store import JobStore
from tests.conftest import TEST_HOSTS
from tests.helpers.assets import require_asset
from tests.train.tiny import SMOLLM2, save_tiny_model, tiny_model

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "The capital of Italy is Rome."},
]


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return require_asset(SMOLLM2 / "model.safetensors", "smollm2").parent


@pytest.fixture(scope="session")
def reference_model(smollm2_dir):
    """SmolLM2 loaded the plain transformers way, for the figures the scorer must equal."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def model_roots(tmp_path_factory) -> Path:
    """An allowed root with two tiny random Llamas on SmolLM2's vocabulary ('base', 'tuned'),
    one with a 96-token vocabulary ('small-vocab'), and a folder holding only pickle weights
    ('pickled')."""
    root = tmp_path_factory.mktemp("model-roots")
    require_asset(SMOLLM2 / "tokenizer.json", "smollm2")
    save_tiny_model(root / "base")
    tuned = tiny_model(vocab=49152, seed=1)
    tuned.config.bos_token_id, tuned.config.eos_token_id = 1, 2
    tuned.save_pretrained(root / "tuned")
    small = tiny_model(vocab=96)
    small.save_pretrained(root / "small-vocab")
    shutil.copytree(root / "base", root / "pickled")
    (root / "pickled" / "model.safetensors").unlink()
    (root / "pickled" / "pytorch_model.bin").write_bytes(b"not unpickled")
    return root


@pytest.fixture
def score_settings(tmp_path, model_roots):
    """Settings over a private home (jobs, database) that sees the bundled assets, with the
    model roots allowed; overrides as keywords."""

    home = tmp_path / "home"
    home.mkdir()
    (home / "assets").symlink_to(SMOLLM2.parent)  # the shared bundled assets, read only

    def make(**overrides) -> Settings:
        base = {"tokenizer_roots": [model_roots], "allow_hub": False}
        return Settings(home=home, allowed_hosts=TEST_HOSTS, **{**base, **overrides})

    return make


def finished_job(settings, model_roots, status: str) -> str:
    """A job in the store as the runner leaves it: `status`, its model saved when succeeded."""
    store = JobStore(settings.db_path)
    job, _ = store.create(JobSpec(model=str(model_roots / "base"), steps=1), key=None, max_active=8)
    assert store.claim_next().id == job.id
    store.finish(job.id, status)
    if status == "succeeded":
        shutil.copytree(model_roots / "tuned", settings.jobs_dir / job.id / "model")
    return job.id
