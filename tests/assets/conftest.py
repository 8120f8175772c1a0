"""Fixtures for asset tests: the real llama-tokenizer-js package (downloaded with npm), damaged
copies of real assets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.assets.archives import copy_from_tgz
from app.assets.fetch import download
from app.assets.manifest import get_asset
from app.assets.store import file_identity, read_marker, write_stamp


@pytest.fixture(scope="session")
def llama_js_archive(tmp_path_factory) -> Path:
    """The pinned llama-tokenizer-js tarball (npm's cache makes this about a second)."""
    return download(get_asset("llama2").source, tmp_path_factory.mktemp("llama-js-download"))


@pytest.fixture(scope="session")
def llama_js_package(tmp_path_factory, llama_js_archive: Path) -> Path:
    """A folder holding the package's JavaScript and package.json, runnable with node."""
    folder = tmp_path_factory.mktemp("llama-js")
    copy_from_tgz(
        llama_js_archive,
        {
            "package/llama-tokenizer.js": "llama-tokenizer.js",
            "package/package.json": "package.json",
        },
        folder,
    )
    return folder


@pytest.fixture
def rotted_llama2(isolated_home):
    """A private llama2 whose tokenizer.json changed in a way its stat cannot show (as bit rot
    beneath the file system would): the stamp vouches for the current stat, the bytes are wrong.

    Example: rotted_llama2 -> (Settings, path of the damaged tokenizer.json)
    """
    home = isolated_home("llama2")
    asset, folder = get_asset("llama2"), home.assets_dir / "llama2"
    target = folder / "tokenizer.json"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    marker = read_marker(folder) or {}
    write_stamp(
        folder,
        {
            name: {**file_identity((folder / name).stat()), "sha256": marker["files"][name]}
            for name in asset.files
        },
    )
    return home, target
