"""`maskscope` command line: serve, assets, render, lint, inspect, train.

Each capability registers its own sub-commands: a module listed in COMMAND_MODULES exposes
`register(subparsers)` which adds parsers whose `func(args) -> int` runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging

from app.settings import Settings

COMMAND_MODULES = [
    "app.cli.assets",
    "app.cli.render",
    "app.cli.train",
    "app.cli.lint",
]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # only `serve` needs the server

    settings = Settings.from_env()
    uvicorn.run(
        "app.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level="info",
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Run the web app.")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=_serve)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
