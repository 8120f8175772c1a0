"""Item 30: a local or Hub tokenizer's own regexes are untrusted code; bundled ones are trusted.

The hostile tokenizer is the committed tiny ChatML one with a Split pre-tokenizer `(a+)+b`
(built with the tokenizers library, as a user would): on 1,150 characters Oniguruma backtracks
until its retry limit panics, which no handler in the server can catch. Such a tokenizer is
refused when it is loaded; one that runs a bundled tokenizer's regex loads as before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tokenizers import Regex, Tokenizer
from tokenizers.pre_tokenizers import Sequence, Split

from app.main import create_app
from app.settings import Settings
from app.tokenizers.loading import tokenizer_patterns
from tests.conftest import SAME_ORIGIN, TEST_HOSTS
from tests.helpers.errors import assert_error

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_chatml"
HOSTILE = "(a+)+b"


def _with_split(root: Path, name: str, pattern: str) -> Path:
    folder = root / name
    shutil.copytree(FIXTURE, folder)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    splits = [Split(Regex(pattern), "isolated")]
    if tokenizer.pre_tokenizer is not None:
        splits.append(tokenizer.pre_tokenizer)
    tokenizer.pre_tokenizer = Sequence(splits)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(scope="module")
def roots(tmp_path_factory, settings):
    root = tmp_path_factory.mktemp("regex-roots")
    _with_split(root, "hostile", HOSTILE)
    llama3 = tokenizer_patterns(settings.assets_dir / "llama3" / "tokenizer.json")
    assert llama3, "the bundled llama3 tokenizer runs a Split regex"
    _with_split(root, "llama3-regex", next(iter(llama3)))
    return root


def _client(root: Path, settings: Settings, **overrides) -> TestClient:
    app_settings = Settings(
        home=settings.home,
        tokenizer_roots=[root],
        allow_hub=False,
        allowed_hosts=TEST_HOSTS,
        **overrides,
    )
    return TestClient(create_app(app_settings), headers=SAME_ORIGIN)


def _render(client: TestClient, tokenizer: str, content: str):
    messages = [{"role": "user", "content": content}, {"role": "assistant", "content": "ok"}]
    return client.post(
        "/api/render", json={"messages": messages, "tokenizer": tokenizer, "dialect": "chatml"}
    )


def test_30_the_hostile_regex_really_stalls_or_crashes_the_tokenizer(roots):
    script = (
        "import sys; from tokenizers import Tokenizer; "
        "Tokenizer.from_file(sys.argv[1]).encode('a' * 1150); print('fine')"
    )
    started = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, "-c", script, str(roots / "hostile" / "tokenizer.json")],
            capture_output=True,
            text=True,
            timeout=20,
            env={"RUST_BACKTRACE": "0"},
        )
        assert run.returncode != 0 and "retry-limit" in run.stderr, run.stdout
    except subprocess.TimeoutExpired:
        assert time.monotonic() - started >= 20


def test_30_a_local_tokenizer_with_an_unknown_regex_is_refused(roots, settings):
    with _client(roots, settings) as client:
        started = time.monotonic()
        err = assert_error(_render(client, "hostile", "a" * 1150), 422, "allow_tokenizer_regex")
        assert err["field"] == "tokenizer" and err["setting"] == "allow_tokenizer_regex"
        assert HOSTILE in err["message"]
        assert time.monotonic() - started < 5
        assert_error(_render(client, "hostile", "hello"), 422, "allow_tokenizer_regex")
        assert _render(client, "qwen3", "a" * 1150).status_code == 200  # bundled: trusted


def test_30_a_bundled_tokenizers_regex_is_accepted_in_a_local_one(roots, settings):
    with _client(roots, settings) as client:
        response = _render(client, "llama3-regex", "a" * 1150)
        assert response.status_code == 200, response.text
        assert "a" * 1150 in response.json()["text"]


def test_30_the_setting_trusts_a_local_tokenizers_regex(roots, settings):
    with _client(roots, settings, allow_tokenizer_regex=True) as client:
        response = _render(client, "hostile", "hello")
        assert response.status_code == 200, response.text


def test_30_patterns_are_read_from_the_normalizer_and_pre_tokenizer(tmp_path):
    config = {
        "normalizer": {"type": "Replace", "pattern": {"Regex": "x+"}, "content": ""},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "y*z"}},
                {"type": "Split", "pattern": {"String": "literal"}},
            ],
        },
        "model": {"vocab": {"(x)": 0}},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(config))
    assert tokenizer_patterns(tmp_path / "tokenizer.json") == {"x+", "y*z"}
