"""`maskscope assets fetch [NAME...] [--force] [--verify]` and `maskscope assets list [--verify]`.

Example: `maskscope assets list --verify` -> one status line per asset, exit 1 if one is not ok
"""

from __future__ import annotations

import argparse
import logging

from app.assets.fetch import FetchError, fetch_assets
from app.assets.manifest import ASSETS
from app.assets.store import check_asset
from app.settings import Settings

logger = logging.getLogger(__name__)

VERIFY_HELP = (
    "Hash every installed file, also those whose size, times and inode are unchanged since "
    "their sha256 last matched (slow: reads the 538 MB model weights)."
)


def _fetch(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    logger.info("offline assets in %s", settings.assets_dir)
    try:
        fetch_assets(settings.assets_dir, args.names or None, force=args.force, verify=args.verify)
    except (FetchError, KeyError) as exc:
        logger.error("error: %s", exc.args[0] if exc.args else exc)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    missing = 0
    width = max(len(asset.name) for asset in ASSETS)
    for asset in ASSETS:
        state = check_asset(asset, settings.assets_dir, memo=not args.verify)
        missing += not state.ok
        logger.info(
            "%-*s %-9s %-40s %s",
            width,
            asset.name,
            state.status,
            f"{asset.source.registry}:{asset.source.spec}",
            state.problem or asset.description,
        )
    return 1 if missing else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    assets = subparsers.add_parser("assets", help="Fetch or list the offline assets.")
    sub = assets.add_subparsers(dest="assets_command", required=True)
    fetch = sub.add_parser("fetch", help="Download, verify and convert missing or broken assets.")
    fetch.add_argument("names", nargs="*", help="Assets to fetch (default: all).")
    fetch.add_argument("--force", action="store_true", help="Rebuild even if verified.")
    fetch.set_defaults(func=_fetch)
    listing = sub.add_parser("list", help="Show each asset's status; exit 1 if any is not ok.")
    listing.set_defaults(func=_list)
    for parser in (fetch, listing):
        parser.add_argument("--verify", action="store_true", help=VERIFY_HELP)
