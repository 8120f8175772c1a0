"""Shared fixtures: real settings, a real app, real bundled tokenizers.

Add fixtures that more than one test package needs here; keep package-specific ones in the
package's own conftest.py.
"""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.chat.messages import Message
from app.main import create_app
from app.settings import Settings

# CI replays the same examples every run, so a landing is judged on the code, not on a draw;
# local runs keep exploring new examples (run with CI=true to replay what CI saw).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app) -> TestClient:
    with TestClient(app) as test_client:
        yield test_client


def assert_error(response, status: int, *needles: str) -> dict:
    """Check the one JSON error shape and that the message names what to change."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) >= {"status", "code", "message", "field", "setting"}, err
    assert err["status"] == status
    for needle in needles:
        assert needle in err["message"], (needle, err["message"])
    return err


@pytest.fixture
def isolated_home(tmp_path, settings: Settings):
    """Settings over a private MASKSCOPE_HOME holding real copies of the named shared assets.

    Destructive tests (corrupt, delete) work on these copies, never on the shared cache.
    Example: isolated_home("llama2", "htmx") -> Settings(home=tmp_path / "home")
    """
    import shutil

    def make(*names: str) -> Settings:
        home = tmp_path / "home"
        (home / "assets").mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copytree(settings.assets_dir / name, home / "assets" / name)
        return Settings(home=home)

    return make


@pytest.fixture(scope="session")
def tokenizers(settings: Settings):
    """Bundled tokenizers by name, loaded once per process: tokenizers("qwen3")."""
    from app.tokenizers.registry import load_tokenizer

    return lambda name: load_tokenizer(name, settings)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama with SmolLM2's real tokenizer, as safetensors (fine-tunes)."""
    from tests.train.tiny import SMOLLM2, save_tiny_model

    if not (SMOLLM2 / "tokenizer.json").is_file():
        pytest.skip("smollm2 tokenizer asset not fetched")
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def job_settings_for(tmp_path, tiny_model_dir):
    """Settings over a private home whose allowed roots hold the tiny model; overrides as kwargs."""

    def make(**overrides) -> Settings:
        return Settings(
            home=tmp_path / "home",
            tokenizer_roots=[tiny_model_dir.parent],
            allow_hub=False,
            **overrides,
        )

    return make


def conversations_of(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[Message]]:
    """Conversations for property tests: an optional system message, then one to three
    user/assistant exchanges, every content drawn from `text`."""

    @st.composite
    def conversations(draw: st.DrawFn) -> list[Message]:
        conv = [Message("system", draw(text))] if draw(st.booleans()) else []
        for _ in range(draw(st.integers(1, 3))):
            conv += [Message("user", draw(text)), Message("assistant", draw(text))]
        return conv

    return conversations()
