"""GET /api/tokenizers reports availability truthfully, against real files."""

import dataclasses
import shutil

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.tokenizers.registry import load_tokenizer

BUNDLED = ["smollm2", "qwen3", "llama3", "llama2", "mistral", "gemma3", "deepseek_v3", "gptoss"]
WITH_TEMPLATE = {"smollm2", "qwen3", "llama3", "gemma3", "deepseek_v3", "gptoss"}
KEYS = {"name", "available", "source", "vocab_size", "has_chat_template"}


def _by_name(client: TestClient) -> dict[str, dict]:
    response = client.get("/api/tokenizers")
    assert response.status_code == 200, response.text
    entries = response.json()
    assert all(set(entry) >= KEYS for entry in entries)
    return {entry["name"]: entry for entry in entries}


def test_all_bundled_tokenizers_are_available(client, settings):
    entries = _by_name(client)
    assert list(entries)[: len(BUNDLED)] == BUNDLED
    for name in BUNDLED:
        entry = entries[name]
        assert entry["available"] is True and entry["source"] == "bundled", entry
        tok = load_tokenizer(name, settings)
        assert entry["vocab_size"] == len(tok)
        assert entry["has_chat_template"] is (name in WITH_TEMPLATE) is bool(tok.chat_template)


@pytest.fixture
def private_client(isolated_home):
    """A real app over a private MASKSCOPE_HOME holding only llama2 and mistral."""
    settings = isolated_home("llama2", "mistral")
    with TestClient(create_app(settings)) as client:
        yield client, settings


def test_missing_assets_are_reported_unavailable_with_the_fix(private_client):
    client, _ = private_client
    entries = _by_name(client)
    assert {n for n in BUNDLED if entries[n]["available"]} == {"llama2", "mistral"}
    assert entries["qwen3"]["vocab_size"] is None
    assert "maskscope assets fetch qwen3" in entries["qwen3"]["problem"]


def test_removing_or_corrupting_an_asset_flips_availability(private_client):
    client, settings = private_client
    shutil.rmtree(settings.assets_dir / "llama2")
    target = settings.assets_dir / "mistral" / "tokenizer.json"
    target.write_bytes(target.read_bytes() + b" ")
    entries = _by_name(client)
    assert entries["llama2"]["available"] is False
    assert entries["mistral"]["available"] is False
    assert "sha256" in entries["mistral"]["problem"]


def test_local_folders_are_listed(tmp_path, settings):
    root = tmp_path / "root"
    shutil.copytree(settings.assets_dir / "qwen3", root / "my-qwen")
    local = dataclasses.replace(settings, tokenizer_roots=[root])
    with TestClient(create_app(local)) as client:
        entry = _by_name(client)[str(root / "my-qwen")]
    assert entry["source"] == "local" and entry["available"] is True
    assert entry["vocab_size"] == len(load_tokenizer("qwen3", settings))
