"""Fixtures for training tests: tiny random models, a saved model folder, private settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from tests.train.tiny import SMOLLM2, random_examples, save_tiny_model, tiny_model


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture
def make_examples():
    return random_examples


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    if not (SMOLLM2 / "tokenizer.json").is_file():
        pytest.skip("smollm2 tokenizer asset not fetched")
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def job_settings(tmp_path, tiny_model_dir) -> Settings:
    return Settings(home=tmp_path / "home", tokenizer_roots=[tiny_model_dir.parent],
                    allow_hub=False)
