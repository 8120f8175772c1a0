"""Fixtures for training tests: tiny random models and examples, private settings."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.train.tiny import random_examples, tiny_model


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture
def make_examples():
    return random_examples


@pytest.fixture
def job_settings(job_settings_for) -> Settings:
    return job_settings_for()
