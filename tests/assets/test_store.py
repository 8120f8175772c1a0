import hashlib
import json
import os
import time

import pytest

from app.assets import store
from app.assets.manifest import ASSETS, get_asset
from app.assets.store import MARKER, STAMP, check_asset, read_stamp, sha256_file


def _unreadable(path):
    raise AssertionError(f"{path} was read")


@pytest.mark.parametrize("asset", ASSETS, ids=lambda a: a.name)
def test_shared_cache_is_complete_and_verified(asset, settings):
    # The default check: files unchanged since `maskscope assets fetch` hashed them are not re-read.
    state = check_asset(asset, settings.assets_dir)
    assert state.ok, state.problem
    assert set(state.marker["files"]) == set(asset.files)
    stamp = read_stamp(settings.assets_dir / asset.name)
    assert {n: stamp[n]["sha256"] for n in asset.files} == state.marker["files"]


def test_an_unchanged_asset_is_checked_without_reading_its_files(isolated_home, monkeypatch):
    home = isolated_home("llama2")
    asset = get_asset("llama2")
    first = check_asset(asset, home.assets_dir)  # copies are new inodes: hashed, then stamped
    assert first.ok and first.unchanged == ()
    monkeypatch.setattr(store, "_hash_memo", {})  # only the stamp can vouch now
    monkeypatch.setattr(store, "sha256_file", _unreadable)
    state = check_asset(asset, home.assets_dir)
    assert state.ok and state.unchanged == asset.files
    with pytest.raises(AssertionError, match=r"tokenizer\.json was read"):
        check_asset(asset, home.assets_dir, memo=False)


def test_corrupted_file_is_detected_by_sha256(isolated_home, monkeypatch):
    home = isolated_home("llama2")
    asset = get_asset("llama2")
    assert check_asset(asset, home.assets_dir).ok
    monkeypatch.setattr(store, "_hash_memo", {})
    assert check_asset(asset, home.assets_dir).unchanged == asset.files  # the stamp vouches
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
    expected = hashlib.sha256((folder / "htmx.min.js").read_bytes()).hexdigest()
    assert marker["files"]["htmx.min.js"] == expected == sha256_file(folder / "htmx.min.js")


def test_restoring_the_mtime_does_not_hide_a_change(isolated_home):
    home = isolated_home("llama2")
    asset = get_asset("llama2")
    assert check_asset(asset, home.assets_dir).ok
    target = home.assets_dir / "llama2" / "tokenizer.json"
    before = target.stat()
    time.sleep(0.02)  # past one tick of a coarse file-system clock, so the ctime can move
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert check_asset(asset, home.assets_dir).status == "corrupt"  # os.utime moved the ctime


def test_a_change_the_stat_cannot_show_is_left_to_a_full_hash(rotted_llama2):
    # The trade: the default check trusts an unchanged stat; memo=False (--verify) reads the bytes.
    home, target = rotted_llama2
    asset = get_asset("llama2")
    assert check_asset(asset, home.assets_dir).ok
    state = check_asset(asset, home.assets_dir, memo=False)
    assert state.status == "corrupt" and str(target) in state.problem


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "[]",
        '{"files": 3}',
        '{"files": {"tokenizer.json": 5}}',
        '{"files": {"tokenizer.json": {}}}',
        '{"files": {"tok',
        "wrong sha",
    ],
)
def test_a_malformed_stamp_is_ignored_and_replaced(isolated_home, monkeypatch, stamp):
    home = isolated_home("llama2")
    asset, folder = get_asset("llama2"), home.assets_dir / "llama2"
    assert check_asset(asset, home.assets_dir).ok
    if stamp == "wrong sha":  # the right stat, another sha256 than the marker's
        entries = read_stamp(folder)
        entries["tokenizer.json"]["sha256"] = "0" * 64
        stamp = json.dumps({"files": entries})
    (folder / STAMP).write_text(stamp)
    monkeypatch.setattr(store, "_hash_memo", {})
    state = check_asset(asset, home.assets_dir)
    assert state.ok and "tokenizer.json" not in state.unchanged
    marker = json.loads((folder / MARKER).read_text())
    assert {n: e["sha256"] for n, e in read_stamp(folder).items()} == marker["files"]


@pytest.mark.parametrize("blocked", ["read-only folder", "a folder named like the stamp"])
def test_a_stamp_that_cannot_be_written_does_not_break_the_check(
    isolated_home, monkeypatch, blocked
):
    home = isolated_home("llama2")
    asset, folder = get_asset("llama2"), home.assets_dir / "llama2"
    (folder / STAMP).unlink(missing_ok=True)
    if blocked == "read-only folder":
        folder.chmod(0o555)
        if os.access(folder, os.W_OK):
            folder.chmod(0o755)
            pytest.skip("this user writes into read-only folders (root)")
    else:
        (folder / STAMP).mkdir()
    try:
        for _ in range(2):  # as two processes would: no in-process memo, no stamp to vouch
            monkeypatch.setattr(store, "_hash_memo", {})
            state = check_asset(asset, home.assets_dir)
            assert (state.status, state.unchanged) == ("ok", ())
        assert read_stamp(folder) == {} and not list(folder.glob("*.part"))
    finally:
        folder.chmod(0o755)
