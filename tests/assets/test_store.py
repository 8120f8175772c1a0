import json

import pytest

from app.assets.manifest import ASSETS, get_asset
from app.assets.store import MARKER, check_asset, sha256_file


@pytest.mark.parametrize("asset", ASSETS, ids=lambda a: a.name)
def test_shared_cache_is_complete_and_verified(asset, settings):
    state = check_asset(asset, settings.assets_dir, memo=False)
    assert state.ok, state.problem
    assert set(state.marker["files"]) == set(asset.files)


def test_corrupted_file_is_detected_by_sha256(isolated_home):
    home = isolated_home("llama2")
    asset = get_asset("llama2")
    assert check_asset(asset, home.assets_dir).ok
    target = home.assets_dir / "llama2" / "tokenizer.json"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the hash can tell
    target.write_bytes(bytes(data))
    state = check_asset(asset, home.assets_dir)
    assert state.status == "corrupt"
    assert str(target) in state.problem
    assert "maskscope assets fetch llama2" in state.problem


def test_missing_file_and_missing_asset(isolated_home):
    home = isolated_home("mistral")
    asset = get_asset("mistral")
    (home.assets_dir / "mistral" / "tokenizer_config.json").unlink()
    state = check_asset(asset, home.assets_dir)
    assert state.status == "missing" and "tokenizer_config.json" in state.problem
    state = check_asset(get_asset("qwen3"), home.assets_dir)
    assert state.status == "missing" and "not fetched" in state.problem


def test_marker_from_another_version_is_outdated(isolated_home):
    home = isolated_home("htmx")
    marker_path = home.assets_dir / "htmx" / MARKER
    marker = json.loads(marker_path.read_text())
    marker["source"]["version"] = "2.0.0"
    marker_path.write_text(json.dumps(marker))
    state = check_asset(get_asset("htmx"), home.assets_dir)
    assert state.status == "outdated"
    assert "htmx.org@2.0.11" in state.problem


def test_marker_hashes_are_real_sha256(settings):
    folder = settings.assets_dir / "htmx"
    marker = json.loads((folder / MARKER).read_text())
    import hashlib

    expected = hashlib.sha256((folder / "htmx.min.js").read_bytes()).hexdigest()
    assert marker["files"]["htmx.min.js"] == expected == sha256_file(folder / "htmx.min.js")
