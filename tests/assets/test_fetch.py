import logging
import os
import re
import time
from dataclasses import replace

import pytest

from app.assets.fetch import FetchError, download, fetch_assets
from app.assets.manifest import get_asset
from app.assets.store import MARKER, check_asset, sha256_file
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


def test_archive_with_unexpected_sha256_is_refused(tmp_path):
    source = replace(get_asset("htmx").source, sha256="0" * 64)
    with pytest.raises(FetchError, match="refusing"):
        download(source, tmp_path)


def test_fetch_installs_a_missing_asset_with_progress(tmp_path, caplog):
    assets_dir = tmp_path / "assets"
    with caplog.at_level(logging.INFO):
        fetch_assets(assets_dir, ["htmx"])
    assert check_asset(get_asset("htmx"), assets_dir, memo=False).ok
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
