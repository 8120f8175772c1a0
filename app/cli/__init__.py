"""`maskscope` command line: serve, assets, render, lint, inspect, score, train.

Each capability registers its own sub-commands: a module listed in COMMAND_MODULES exposes
`register(subparsers)` which adds parsers whose `func(args) -> int` runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging

COMMAND_MODULES = [
    "app.cli.serve",
    "app.cli.assets",
    "app.cli.render",
    "app.cli.train",
    "app.cli.lint",
    "app.cli.score",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
