"""`maskscope lint` and `maskscope inspect`: dataset checks from the command line.

`lint` prints a summary table and exits 1 when any row has an error-severity finding (or a
warning, with `--fail-on warning`) or cannot be read (usable as a CI gate); `inspect` also
lists per-row findings, prints JSON on request and writes the exports. The dataset is a file
(JSONL, JSON array, Parquet, Arrow, CSV), a `datasets.save_to_disk` folder or a Hub dataset id;
a bad option or an unreadable dataset exits 2 with one sentence saying why.

Design concession: progress goes to stderr as a single redrawn line on a terminal and, for long
files only, as one line per tenth of the file otherwise, so CI logs stay short.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from app.cli.render import add_render_arguments, template_inputs
from app.errors import MaskscopeError
from app.inspect.columns import ColumnMap, column_map
from app.inspect.options import InspectOptions
from app.inspect.report import Report, triage
from app.inspect.summary import Summary
from app.service.inspect import (
    annotated_template,
    inspect_source,
    open_dataset,
    prepare,
    worker_count,
)
from app.settings import Settings

BAR = 30
LONG_FILE_BYTES = 4_000_000  # below this, a file is read in about a second: no progress lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lint = sub.add_parser("lint", help="Lint a dataset; exit 1 on any error finding.")
    _dataset_args(lint)
    lint.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="Exit 1 when a row has a finding this severe or worse (default: error).",
    )
    lint.set_defaults(func=run_lint)
    inspect = sub.add_parser("inspect", help="Inspect a dataset: summary, rows, exports.")
    _dataset_args(inspect)
    inspect.add_argument("--json", action="store_true", help="Print the full result as JSON.")
    inspect.add_argument("--rows", type=int, default=20, help="Rows with findings to list.")
    inspect.add_argument(
        "--plot-max-length",
        type=int,
        default=None,
        help="Cut rows at this many tokens in the truncation figures (default: --max-length, "
        "else 1024, TRL's default).",
    )
    inspect.add_argument(
        "--pack-length",
        type=int,
        default=None,
        help="Pack rows into rows of this many tokens in the packing figures (default: the "
        "plot max length).",
    )
    inspect.add_argument(
        "--export-processed",
        type=Path,
        metavar="OUT.jsonl",
        help="Write input_ids/labels/attention_mask for every good row.",
    )
    inspect.add_argument(
        "--export-template",
        type=Path,
        metavar="OUT.jinja",
        help="Write a {% generation %}-annotated copy of the template.",
    )
    inspect.set_defaults(func=run_inspect)


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="JSONL, JSON array, Parquet, Arrow or CSV file, a datasets.save_to_disk folder, "
        "or a Hugging Face dataset id (org/name; needs the Hub or its cache).",
    )
    parser.add_argument("--config", default=None, help="Hub dataset: the config (subset).")
    parser.add_argument("--split", default="train", help="Hub dataset: the split.")
    parser.add_argument("--revision", default=None, help="Hub dataset: branch, tag or commit.")
    for name in ("messages", "prompt", "completion", "chosen", "rejected", "label"):
        parser.add_argument(
            f"--{name}-column", dest=f"column_{name}", metavar="COLUMN", help=f"Column of {name}."
        )
    parser.add_argument("--role-key", dest="column_role", help="Message key holding the role.")
    parser.add_argument(
        "--content-key", dest="column_content", help="Message key holding the content."
    )
    add_render_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="No progress output.")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes (default: the inspect_workers setting).",
    )


def _columns(args: argparse.Namespace) -> ColumnMap:
    prefix = "column_"
    return column_map({k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)})


def _inspect(
    args: argparse.Namespace, export: IO[str] | None = None
) -> tuple[Report, InspectOptions]:
    settings = Settings.from_env()
    template = _read_text(args.template, "--template") if args.template else None
    options = prepare(
        settings,
        tokenizer=args.tokenizer,
        dialect=args.dialect,
        train_on=args.train_on,
        train_on_eot=args.train_on_eot,
        max_length=args.max_length,
        template=template,
        add_special_tokens=args.add_special_tokens,
        columns=_columns(args),
        **template_inputs(args),
    )
    with ExitStack() as stack:
        source, total = open_dataset(
            args.path,
            options,
            stack,
            config=args.config,
            split=args.split,
            revision=args.revision,
        )
        show = not args.quiet and (sys.stderr.isatty() or total >= LONG_FILE_BYTES)
        progress = Progress(total, sys.stderr) if show else None
        workers = worker_count(total, settings, args.workers)
        report = inspect_source(source, options, progress=progress, export=export, workers=workers)
    if progress is not None:
        progress.finish()
    return report, options


def _read_text(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{flag} {path}: {exc}") from None


class CommandError(Exception):
    """A command-line input that cannot be used (a file that cannot be read or written)."""


def _failed(command: str, exc: Exception) -> int:
    message = exc.message if isinstance(exc, MaskscopeError) else str(exc)
    print(f"maskscope {command}: {message}", file=sys.stderr)
    return 2


def run_lint(args: argparse.Namespace) -> int:
    try:
        report, _ = _inspect(args)
    except (MaskscopeError, CommandError) as exc:
        return _failed("lint", exc)
    print(summary_table(report.summary))
    return 1 if report.summary.fails(args.fail_on) else 0


def run_inspect(args: argparse.Namespace) -> int:
    try:
        if args.export_processed:
            try:
                out = open(args.export_processed, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"--export-processed {args.export_processed}: {exc}") from None
            with out:
                report, options = _inspect(args, export=out)
        else:
            report, options = _inspect(args)
        exported = _export_template(args, options)
    except (MaskscopeError, CommandError) as exc:
        return _failed("inspect", exc)
    for flag, value in (
        ("--plot-max-length", args.plot_max_length),
        ("--pack-length", args.pack_length),
    ):
        if value is not None and value < 1:
            return _failed("inspect", CommandError(f"{flag} must be a positive number of tokens."))
    result = report.result(
        max_length=args.plot_max_length or args.max_length, pack_length=args.pack_length
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(summary_table(report.summary))
        print(plots_table(result["plots"]))
        listed, _ = triage(result["rows"], severity="info")  # the worst rows first
        print(rows_table(listed[: args.rows]))
    return 1 if report.summary.has_errors or exported is False else 0


def _export_template(args: argparse.Namespace, options: InspectOptions) -> bool | None:
    if not args.export_template:
        return None
    found = annotated_template(options)
    if found["template"] is None:
        print(
            "maskscope inspect: the template could not be annotated: " + "; ".join(found["notes"]),
            file=sys.stderr,
        )
        return False
    args.export_template.write_text(found["template"], encoding="utf-8")
    checked = found["verification"]
    print(
        f"wrote {args.export_template} ({found['wrapped']} outputs wrapped, byte-identical on "
        f"{checked['probes']} probe conversations)",
        file=sys.stderr,
    )
    return True


class Progress:
    """Progress on stderr: a redrawn bar on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, out: IO[str]) -> None:
        self.total, self.out = max(total, 1), out
        self.tty = out.isatty()
        self.start = self.last = time.monotonic()
        self.next_tenth = 1

    def __call__(self, done: int, rows: int) -> None:
        now = time.monotonic()
        share = done / self.total
        if self.tty and now - self.last >= 0.2:
            self.last = now
            filled = int(share * BAR)
            self.out.write(
                f"\r[{'#' * filled}{'-' * (BAR - filled)}] {share:4.0%} "
                f"{rows:,} rows {rows / max(now - self.start, 1e-9):,.0f} rows/s"
            )
            self.out.flush()
        elif not self.tty and share * 10 >= self.next_tenth:
            self.next_tenth = int(share * 10) + 1
            self.out.write(f"{share:4.0%} {rows:,} rows\n")

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
        seconds = time.monotonic() - self.start
        self.out.write(f"done in {seconds:.1f} s\n")
        self.out.flush()


def summary_table(summary: Summary) -> str:
    """The dataset summary as aligned text, with the codes found and their worst severity."""
    data = summary.to_json()
    share = f"{data['trained_fraction']:.1%}"
    rate = data["eot_trained_rate"]
    lines = [
        (
            f"rows                 {data['rows']:,} ({data['conversation_rows']:,} conversations, "
            f"{data['tokenized_rows']:,} pre-tokenized, {data['bad_rows']:,} unreadable)"
        ),
        f"tokens               {data['tokens']:,}",
        f"trained tokens       {data['trained_tokens']:,} ({share})",
        f"zero-trained rows    {data['zero_trained_rows']:,}",
        (
            f"trained end-of-turn  {'n/a' if rate is None else f'{rate:.1%}'} of "
            f"{data['eot_closing_trained_turns']:,} trained turns"
        ),
        "trained fraction per row:",
    ]
    most = max((b["rows"] for b in data["trained_fraction_histogram"]), default=0) or 1
    for b in data["trained_fraction_histogram"]:
        lines.append(
            f"  {b['from']:.1f}-{b['to']:.1f} {'█' * round(20 * b['rows'] / most):<20} "
            f"{b['rows']:,}"
        )
    if data["codes"]:
        lines.append(f"{'code':32} {'worst':8} {'rows':>7}  first lines")
        for code, rows in data["codes"].items():
            first = ", ".join(map(str, data["code_lines"].get(code, ())))
            more = " …" if rows > len(data["code_lines"].get(code, ())) else ""
            lines.append(f"{code:32} {summary.worst.get(code, ''):8} {rows:>7,}  {first}{more}")
    for err in data["errors"][:10]:
        lines.append(f"unreadable: {err['message']}")
    return "\n".join(lines)


def plots_table(plots: dict[str, Any]) -> str:
    """Truncation, packing and the rows a trainer drops, as text."""
    cut, pack, drop = plots["truncation"], plots["packing"], plots["trainer"]
    truncation = (
        f"at max_length {cut['max_length']:,}: {cut['rows_cut']:,} rows cut, "
        f"{cut['rows_losing_answer_end']:,} lose their last answer's end, "
        f"{cut['tokens_lost']:,} tokens lost"
    )
    packed = (
        f"packed into {pack['row_length']:,}-token rows: {pack['rows_per_pack']:.1f} rows "
        f"per pack, {pack['padding_share']:.1%} padding "
        f"({pack['padding_share_unpacked']:.1%} unpacked; {pack['rows']:,} rows simulated)"
    )
    dropped = (
        f"a trainer drops {drop['nothing_trained']:,} rows with nothing trained "
        f"({drop['nothing_trained_after_cut']:,} more once cut)"
    )
    return "\n".join([truncation, packed, dropped])


def rows_table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if "error" in row:
            lines.append(f"line {row['line']}: {row['error']}")
        for lint in row["lints"]:
            lines.append(
                f"line {row['line']}: {lint['severity']:7} {lint['code']}: {lint['message']}"
            )
    return "\n".join(lines)
