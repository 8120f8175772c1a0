"""Real downloaded assets for integration tests: skipped locally when missing, failed in CI.

Design concession: a developer without `maskscope assets fetch` still gets a green run of
everything else, while CI (which sets CI=true) can never pass by skipping what it should test.

Example: require_asset(QWEN / "tokenizer.json", "qwen3") -> QWEN / "tokenizer.json"
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def in_ci() -> bool:
    """True where the CI variable is set to anything but empty, 0 or false (CI sets CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_asset(path: Path, name: str) -> Path:
    """`path` if it exists; otherwise skip the test (locally) or fail it (in CI)."""
    if path.exists():
        return path
    message = f"asset {name} is not fetched ({path} is missing): "
    message += f"run `maskscope assets fetch {name}`"
    if in_ci():
        pytest.fail(f"{message}; CI runs every real-asset test", pytrace=False)
    pytest.skip(message)
