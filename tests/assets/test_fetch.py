import logging
import os
import re
import time
from dataclasses import replace

import pytest

from app.assets import store
from app.assets.fetch import FetchError, download, fetch_assets
from app.assets.manifest import get_asset
from app.assets.store import MARKER, STAMP, check_asset, read_stamp, sha256_file
from app.cli import assets as assets_cli
from app.cli import main


def test_corrupted_asset_is_refetched(isolated_home, settings):
    home = isolated_home("llama2")
    target = home.assets_dir / "llama2" / "tokenizer.json"
    target.write_text("{}")
    states = fetch_assets(home.assets_dir, ["llama2"])
    assert [s.status for s in states] == ["ok"]
    assert sha256_file(target) == sha256_file(settings.assets_dir / "llama2" / "tokenizer.json")


def test_fetch_of_verified_assets_is_a_quick_no_op(isolated_home):
    home = isolated_home("htmx", "mistral")
    markers = [home.assets_dir / n / MARKER for n in ("htmx", "mistral")]
    before = [m.stat().st_mtime_ns for m in markers]
    started = time.monotonic()
    states = fetch_assets(home.assets_dir, ["htmx", "mistral"])
    assert time.monotonic() - started < 2.0
    assert all(s.ok for s in states)
    assert [m.stat().st_mtime_ns for m in markers] == before


def test_fetch_removes_a_stamp_a_crash_left_half_written(isolated_home):
    home = isolated_home("htmx")
    part = home.assets_dir / "htmx" / f"{STAMP}.123-456.part"
    part.write_text('{"files": {"htm')
    fetch_assets(home.assets_dir, ["htmx"])
    assert not part.exists() and read_stamp(home.assets_dir / "htmx")


def test_a_second_fetch_reads_no_file_and_says_what_it_checked(isolated_home, monkeypatch, caplog):
    home = isolated_home("htmx", "mistral")
    mistral = get_asset("mistral").source.spec
    with caplog.at_level(logging.INFO):
        fetch_assets(home.assets_dir, ["htmx", "mistral"])  # copies are new inodes: hashed
        assert "[1/2] htmx: ok (htmx.org@2.0.11, verified)" in caplog.text
        caplog.clear()
        monkeypatch.setattr(store, "_hash_memo", {})  # a new process: only the stamp vouches
        with monkeypatch.context() as patch:
            patch.setattr(store, "sha256_file", lambda path: pytest.fail(f"{path} was read"))
            fetch_assets(home.assets_dir, ["htmx", "mistral"])
        assert "[1/2] htmx: ok (htmx.org@2.0.11, unchanged since verified)" in caplog.text
        assert f"[2/2] mistral: ok ({mistral}, unchanged since verified)" in caplog.text
        caplog.clear()
        fetch_assets(home.assets_dir, ["mistral"], verify=True)
        assert f"[1/1] mistral: ok ({mistral}, verified)" in caplog.text


def test_archive_with_unexpected_sha256_is_refused(tmp_path):
    source = replace(get_asset("htmx").source, sha256="0" * 64)
    with pytest.raises(FetchError, match="refusing"):
        download(source, tmp_path)


def test_fetch_installs_a_missing_asset_with_progress(tmp_path, caplog):
    assets_dir = tmp_path / "assets"
    with caplog.at_level(logging.INFO):
        fetch_assets(assets_dir, ["htmx"])
    state = check_asset(get_asset("htmx"), assets_dir, memo=False)
    assert state.ok
    assert (
        read_stamp(assets_dir / "htmx")["htmx.min.js"]["sha256"]
        == state.marker["files"]["htmx.min.js"]
    )
    assert "[1/1] htmx: missing, fetching htmx.org@2.0.11 from npm" in caplog.text
    assert "installed in" in caplog.text
    assert [p.name for p in assets_dir.iterdir() if p.name != ".lock"] == ["htmx"]


def test_list_command_reports_what_is_missing_and_how_to_fix(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MASKSCOPE_HOME", os.fspath(tmp_path))
    with caplog.at_level(logging.INFO):
        assert main(["assets", "list"]) == 1
    assert re.search(r"\bqwen3 +missing ", caplog.text)
    assert "run `maskscope assets fetch qwen3` to fix it" in caplog.text


def test_list_command_succeeds_on_the_shared_cache(settings, monkeypatch):
    monkeypatch.setenv("MASKSCOPE_HOME", os.fspath(settings.home))
    assert main(["assets", "list"]) == 0


def test_list_verify_finds_what_the_stat_cannot_show(rotted_llama2, monkeypatch, caplog):
    home, target = rotted_llama2
    monkeypatch.setenv("MASKSCOPE_HOME", os.fspath(home.home))
    monkeypatch.setattr(assets_cli, "ASSETS", [get_asset("llama2")])
    with caplog.at_level(logging.INFO):
        assert main(["assets", "list"]) == 0  # the trade: an unchanged stat is trusted
        assert main(["assets", "list", "--verify"]) == 1
    assert re.search(r"\bllama2 +corrupt ", caplog.text)
    assert f"{target} does not match its recorded sha256" in caplog.text


def test_fetch_command_names_an_unknown_asset(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MASKSCOPE_HOME", os.fspath(tmp_path))
    assert main(["assets", "fetch", "llama9"]) == 1
    assert "unknown asset 'llama9'" in caplog.text


def test_without_npm_the_failure_names_the_fix_and_others_still_install(
    isolated_home, tmp_path, monkeypatch, caplog
):
    home = isolated_home("htmx")
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "empty-bin"))
    with caplog.at_level(logging.INFO), pytest.raises(FetchError) as info:
        fetch_assets(home.assets_dir, ["llama2", "htmx"])
    assert "1 asset(s) not installed: llama2" in str(info.value)
    assert "`npm` is not installed: install Node.js" in caplog.text
    assert "[2/2] htmx: ok" in caplog.text
