"""What is installed: each asset folder carries a marker file recording version and sha256s.

`check_asset` answers "is this asset usable right now?" for the fetcher (skip or rebuild) and for
the tokenizer registry (available or not). Design concession: a file whose sha256 matched is not
read again while its stat is unchanged. The match is recorded with the file's size, mtime, ctime,
inode and device in a stamp file beside the marker (and memoised in-process), so a fresh
`maskscope assets list` or `fetch` reads no weights. Any rewrite, copy or replacement changes the
stat, and so does restoring the mtime with os.utime (it moves the ctime); what the stat cannot see
(bytes changed beneath the file system, a clock set back, a same-size rewrite within one clock
tick of the write before it) only `memo=False` (`--verify`) catches, by hashing every file.

Example: stamp '{"files": {"vocab.json": {"size": 3, "mtime_ns": ..., "ctime_ns": ...,
"ino": ..., "dev": ..., "sha256": "ab12..."}}}'
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.assets.manifest import BUILD_FORMAT, Asset

logger = logging.getLogger(__name__)

MARKER = "maskscope-asset.json"
STAMP = "maskscope-verified.json"
FIX_COMMAND = "maskscope assets fetch"

_hash_memo: dict[tuple[str, tuple[int, ...]], str] = {}
_memo_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_identity(st: os.stat_result) -> dict[str, int]:
    """The stat fields that a write, a copy, a replacement or an os.utime of a file changes."""
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def _memo_key(path: Path, st: os.stat_result) -> tuple[str, tuple[int, ...]]:
    return str(path), tuple(file_identity(st).values())


def read_stamp(folder: Path) -> dict[str, dict[str, Any]]:
    """The stamp's record per file name; {} when it is missing, unreadable or of the wrong shape.

    Example: '{"files": {"a.json": {"size": 3, ...}, "b": 4}}' -> {"a.json": {"size": 3, ...}}
    """
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = stamp.get("files") if isinstance(stamp, dict) else None
    if not isinstance(files, dict):
        return {}
    return {name: entry for name, entry in files.items() if isinstance(entry, dict)}


def write_stamp(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """Replace the stamp atomically. Never raises: a folder that cannot be written (read-only, a
    shared cache of another user) only means the files are hashed again next time."""
    part = folder / f"{STAMP}.{os.getpid()}-{threading.get_ident()}.part"
    try:
        part.write_text(json.dumps({"files": files}, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(part, folder / STAMP)
    except OSError as exc:
        logger.debug("not recording verified hashes in %s: %s", folder, exc)
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)


@dataclass
class AssetState:
    """Outcome of checking one installed asset. `problem` is a sentence naming the fix."""

    name: str
    status: str  # "ok" | "missing" | "outdated" | "corrupt"
    problem: str | None = None
    marker: dict[str, Any] = field(default_factory=dict)
    # Files taken as verified without reading them: their stat matches a past sha256 match.
    unchanged: tuple[str, ...] = ()

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
    not its 538 MB of weights). `memo=False` hashes every file, trusting neither the stamp nor the
    in-process memo (`--verify`); either way a match is recorded in the stamp.
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
    return _check_files(asset, folder, marker, only or asset.files, memo=memo)


def _check_files(
    asset: Asset, folder: Path, marker: dict[str, Any], names: tuple[str, ...], *, memo: bool
) -> AssetState:
    """Hash each named file unless the memo or the stamp vouches for its current stat."""
    recorded = marker.get("files", {})
    stamp = functools.cache(functools.partial(read_stamp, folder))  # read at most once, lazily
    unchanged: list[str] = []
    matched: dict[str, dict[str, Any]] = {}
    for name in names:
        path, expected = folder / name, recorded.get(name)
        if not path.is_file():
            return AssetState(
                asset.name, "missing", f"asset '{asset.name}' lacks {path}; {_fix(asset)}", marker
            )
        st = path.stat()  # taken before reading: a change while hashing shows at the next check
        entry = {**file_identity(st), "sha256": expected}
        if memo and expected is not None and _vouched_for(name, path, st, entry, stamp):
            unchanged.append(name)
            continue
        digest = sha256_file(path)
        with _memo_lock:
            _hash_memo[_memo_key(path, st)] = digest
        if digest != expected:
            return AssetState(
                asset.name,
                "corrupt",
                f"asset '{asset.name}': {path} does not match its recorded sha256; {_fix(asset)}",
                marker,
            )
        matched[name] = entry
    if matched:
        write_stamp(folder, {n: e for n, e in {**stamp(), **matched}.items() if n in asset.files})
    return AssetState(asset.name, "ok", None, marker, tuple(unchanged))


def _vouched_for(
    name: str,
    path: Path,
    st: os.stat_result,
    entry: dict[str, Any],
    stamp: Callable[[], dict[str, dict[str, Any]]],
) -> bool:
    """True when this process or the stamp already matched this very stat to the sha256."""
    key = _memo_key(path, st)
    with _memo_lock:
        if _hash_memo.get(key) == entry["sha256"]:
            return True
    if stamp().get(name) != entry:
        return False
    with _memo_lock:
        _hash_memo[key] = entry["sha256"]
    return True
