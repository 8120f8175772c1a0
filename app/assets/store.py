"""What is installed: each asset folder carries a marker file recording version and sha256s.

`check_asset` answers "is this asset usable right now?" for the fetcher (skip or rebuild) and for
the tokenizer registry (available or not). Design concession: hashes are memoised per
(path, size, mtime, inode) so the registry can re-check on every listing without re-reading
hundreds of megabytes; a fresh process (e.g. `maskscope assets fetch`) always hashes in full.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.assets.manifest import BUILD_FORMAT, Asset

MARKER = "maskscope-asset.json"
FIX_COMMAND = "maskscope assets fetch"

_hash_memo: dict[tuple[str, int, int, int], str] = {}
_memo_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """sha256_file, memoised on the file's identity and modification time."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    with _memo_lock:
        known = _hash_memo.get(key)
    if known is None:
        known = sha256_file(path)
        with _memo_lock:
            _hash_memo[key] = known
    return known


@dataclass
class AssetState:
    """Outcome of checking one installed asset. `problem` is a sentence naming the fix."""

    name: str
    status: str  # "ok" | "missing" | "outdated" | "corrupt"
    problem: str | None = None
    marker: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def asset_path(assets_dir: Path, name: str) -> Path:
    return assets_dir / name


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker file's record, or None when it is missing, unreadable or of the wrong shape
    (valid JSON that is not an object, or whose source/files/info are not objects).

    Example: '{"source": {...}, "files": {...}}' -> that dict; '[]' or '{"files": 3}' -> None
    """
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict):
        return None
    if not all(isinstance(marker.get(key, {}), dict) for key in ("source", "files", "info")):
        return None
    return marker


def write_marker(folder: Path, asset: Asset, info: dict[str, Any]) -> dict[str, Any]:
    """Record what was built: the pinned source and the sha256 of every file the asset holds."""
    marker = {
        "name": asset.name,
        "format": BUILD_FORMAT,
        "source": {
            "registry": asset.source.registry,
            "package": asset.source.package,
            "version": asset.source.version,
            "sha256": asset.source.sha256,
        },
        "files": {name: sha256_file(folder / name) for name in asset.files},
        "info": info,
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True), encoding="utf-8")
    return marker


def _fix(asset: Asset) -> str:
    return f"run `{FIX_COMMAND} {asset.name}` to fix it"


def check_asset(
    asset: Asset, assets_dir: Path, *, memo: bool = True, only: tuple[str, ...] | None = None
) -> AssetState:
    """Compare an installed asset with the manifest and with its own recorded hashes.

    `only` restricts the hash check to some files (the registry needs smollm2's tokenizer files,
    not its 538 MB of weights).
    """
    folder = asset_path(assets_dir, asset.name)
    marker = read_marker(folder)
    if marker is None:
        if (folder / MARKER).exists():
            problem = f"asset '{asset.name}' has a malformed marker file in {folder}"
            return AssetState(asset.name, "corrupt", f"{problem}; {_fix(asset)}")
        what = "not fetched" if not folder.exists() else "incomplete (no marker file)"
        return AssetState(
            asset.name, "missing", f"asset '{asset.name}' is {what} in {folder}; {_fix(asset)}"
        )
    src = marker.get("source", {})
    if (
        marker.get("format") != BUILD_FORMAT
        or src.get("version") != asset.source.version
        or src.get("sha256") != asset.source.sha256
    ):
        return AssetState(
            asset.name,
            "outdated",
            f"asset '{asset.name}' in {folder} was built from "
            f"{src.get('package')} {src.get('version')}, not the pinned "
            f"{asset.source.spec}; {_fix(asset)}",
            marker,
        )
    digest = cached_sha256 if memo else sha256_file
    for name in only or asset.files:
        path = folder / name
        expected = marker.get("files", {}).get(name)
        if not path.is_file():
            return AssetState(
                asset.name, "missing", f"asset '{asset.name}' lacks {path}; {_fix(asset)}", marker
            )
        if expected is None or digest(path) != expected:
            return AssetState(
                asset.name,
                "corrupt",
                f"asset '{asset.name}': {path} does not match its recorded sha256; {_fix(asset)}",
                marker,
            )
    return AssetState(asset.name, "ok", None, marker)
