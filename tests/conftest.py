"""Shared fixtures: real settings, a real app, real bundled tokenizers.

Add fixtures that more than one test package needs here; keep package-specific ones in the
package's own conftest.py, and plain helpers in tests/helpers/.
"""

from __future__ import annotations

import os
import shutil

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from app.main import create_app
from app.settings import Settings
from tests.helpers.assets import require_asset
from tests.helpers.tokenizers import TINY_CHATML, TINY_LLAMA2, load_tiny

# CI replays the same examples every run, so a landing is judged on the code, not on a draw;
# local runs keep exploring new examples (run with CI=true to replay what CI saw).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# TestClient sends Host "testserver"; every app the tests build from the environment answers it.
TEST_HOSTS = ["localhost", "127.0.0.1", "::1", "testserver"]
# Form posts need a same-origin Origin, as a browser sends on the app's own pages.
SAME_ORIGIN = {"Origin": "http://testserver"}
os.environ["MASKSCOPE_ALLOWED_HOSTS"] = ",".join(TEST_HOSTS)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app) -> TestClient:
    with TestClient(app, headers=SAME_ORIGIN) as test_client:
        yield test_client


@pytest.fixture
def isolated_home(tmp_path, settings: Settings):
    """Settings over a private MASKSCOPE_HOME holding real copies of the named shared assets.

    Destructive tests (corrupt, delete) work on these copies, never on the shared cache.
    Example: isolated_home("llama2", "htmx") -> Settings(home=tmp_path / "home")
    """

    def make(*names: str) -> Settings:
        home = tmp_path / "home"
        (home / "assets").mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copytree(settings.assets_dir / name, home / "assets" / name)
        return Settings(home=home, allowed_hosts=TEST_HOSTS)

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

    require_asset(SMOLLM2 / "tokenizer.json", "smollm2")
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def job_settings_for(tmp_path, tiny_model_dir):
    """Settings over a private home whose allowed roots hold the tiny model; overrides as kwargs."""

    def make(**overrides) -> Settings:
        return Settings(
            home=tmp_path / "home",
            allowed_hosts=TEST_HOSTS,
            tokenizer_roots=[tiny_model_dir.parent],
            allow_hub=False,
            **overrides,
        )

    return make


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The committed byte-level ChatML tokenizer (tests/fixtures/tiny_chatml), no assets needed."""
    return load_tiny(TINY_CHATML)


@pytest.fixture(scope="session")
def tiny_llama2_tokenizer():
    """The committed SentencePiece-style tokenizer (tests/fixtures/tiny_llama2): <s> added."""
    return load_tiny(TINY_LLAMA2)


@pytest.fixture(scope="session")
def tiny_roots(tmp_path_factory):
    """An allowed tokenizer root holding copies of the tiny fixtures, one folder each."""
    root = tmp_path_factory.mktemp("tiny-roots")
    for folder in (TINY_CHATML, TINY_LLAMA2):
        shutil.copytree(folder, root / folder.name)
    return root


@pytest.fixture(scope="session")
def tiny_client(tmp_path_factory, tiny_roots):
    """A real app whose only tokenizers are the tiny fixtures: no downloads, no Hub."""
    env = {
        "MASKSCOPE_HOME": str(tmp_path_factory.mktemp("tiny-home")),
        "MASKSCOPE_TOKENIZER_ROOTS": str(tiny_roots),
        "MASKSCOPE_ALLOW_HUB": "false",
        "MASKSCOPE_ALLOWED_HOSTS": ",".join(TEST_HOSTS),
    }
    with TestClient(create_app(Settings.from_env(env)), headers=SAME_ORIGIN) as test_client:
        yield test_client
