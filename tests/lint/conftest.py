"""Real bundled tokenizers for the lint and inspect tests (offline assets, loaded once)."""

from __future__ import annotations

import pytest

from tests.helpers.tokenizers import bundled


@pytest.fixture(scope="session")
def tok():
    return bundled
