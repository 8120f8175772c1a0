"""Fixtures for asset tests: the real llama-tokenizer-js package, downloaded with npm."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.assets.archives import copy_from_tgz
from app.assets.fetch import download
from app.assets.manifest import get_asset


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
