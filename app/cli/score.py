"""`maskscope score`: what a causal LM makes of each token, from the command line.

`maskscope score FILE --tokenizer T --dialect D --model M` prints one conversation's tokens with
their logprob, probability and entropy (trained ones starred), the mean trained loss, the
end-of-turn stop probabilities and the lints; `--json` prints exactly what POST /api/score
returns. `maskscope score --dataset FILE.jsonl --top N` ranks a dataset's rows by their mean
trained loss (at most max_score_rows rows), with a histogram of the losses.

Design concession: the per-token table is plain text, one token a line, so it can be grepped and
sorted; progress for datasets goes to stderr, one line per tenth of the rows.

Example: maskscope score chat.json --tokenizer smollm2 --dialect tokenizer --model smollm2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from app.chat.messages import parse_row
from app.chat.spec import row_spec
from app.cli.render import add_render_arguments, read_row, render_spec, show_text
from app.errors import InputError, MaskscopeError
from app.service.score import Ranking, Scored, rank_rows, score_conversation, scored_json
from app.service.score import dataset_rows as read_dataset
from app.settings import Settings
from app.train.store import JobStore

BAR = 40


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    score = sub.add_parser("score", help="Per-token loss of a conversation, or rank a dataset.")
    score.add_argument("path", type=Path, nargs="?", help="A JSON conversation/row, or JSONL.")
    add_render_arguments(score)
    score.add_argument("--model", default="smollm2", help="smollm2, job:<id>, a folder, Hub id.")
    score.add_argument("--row", type=int, default=0, help="Row of a JSONL file (0-based).")
    score.add_argument("--json", action="store_true", help="Print the JSON result.")
    score.add_argument("--dataset", type=Path, metavar="FILE.jsonl", help="Rank rows by loss.")
    score.add_argument("--top", type=int, default=20, help="Rows listed when ranking.")
    score.add_argument("--quiet", action="store_true", help="No progress output.")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store = JobStore(settings.db_path)
    try:
        if args.dataset is not None:
            return _rank(args, settings, store)
        if args.path is None:
            raise InputError("Give a conversation file, or --dataset FILE.jsonl.", field="path")
        row = read_row(args.path, args.row)
        spec = row_spec(render_spec(args), row)
        scored = score_conversation(parse_row(row), spec, args.model, settings, store)
    except MaskscopeError as exc:
        sys.stderr.write(f"maskscope score: {exc.message}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(scored_json(scored), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_scored(scored))
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_scored(scored: Scored) -> str:
    """One line per token (index, trained mark, role, logprob, probability, entropy, text),
    then the mean trained loss, the stop probabilities and the lints."""
    lines = [f"{'#':>5} {'':1} {'role':<9} {'logprob':>8} {'prob':>6} {'entropy':>7}  token"]
    for i, tok in enumerate(scored.rendered.rendering.tokens):
        lp, ent = scored.scores.logprobs[i], scored.scores.entropies[i]
        prob = None if lp is None else math.exp(lp)
        lines.append(
            f"{i:>5} {'*' if tok.trained else ' '} {tok.role or '-':<9} {_fmt(lp):>8} "
            f"{_fmt(prob):>6} {_fmt(ent):>7}  {show_text(tok.text)}"
        )
    loss = scored.mean_trained_loss
    lines += ["", f"model {scored.model}: mean trained loss {_fmt(loss, 4)} (* = trained)"]
    lines += [
        f"end of turn after message {s.message} (token {s.token}): probability {s.probability:.3f}"
        for s in scored.stops
    ]
    lines += [f"{f.severity}: {f.code}: {f.message}" for f in scored.lints]
    return "\n".join(lines) + "\n"


def _rank(args: argparse.Namespace, settings: Settings, store: JobStore) -> int:
    spec = render_spec(args)
    try:
        stream = args.dataset.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read {args.dataset}: {exc.strerror}.", field="dataset") from None
    bound = settings.max_score_rows

    def progress(done: int) -> None:
        if not args.quiet and (done == 1 or done % max(1, bound // 10) == 0):
            sys.stderr.write(f"scoring row {done} (at most {bound}, max_score_rows)\n")

    with stream:
        ranking = rank_rows(
            read_dataset(stream, settings), spec, args.model, settings, store, progress
        )
    if args.json:
        sys.stdout.write(json.dumps(ranking.to_json(args.top), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_ranking(ranking, args.top, bound))
    return 0


def format_ranking(ranking: Ranking, top: int, bound: int) -> str:
    """The `top` rows by mean trained loss, the rows that failed, and a histogram."""
    lines = [f"{'line':>6} {'loss':>8} {'tokens':>7} {'trained':>7}"]
    lines += [
        f"{r.line:>6} {_fmt(r.loss, 4):>8} {r.tokens:>7} {r.trained:>7}" for r in ranking.rows[:top]
    ]
    lines.append(f"\n{len(ranking.rows)} rows scored, highest mean trained loss first")
    if ranking.truncated:
        lines.append(f"stopped after {bound} rows (the max_score_rows setting)")
    lines += [f"line {r.line}: {r.error}" for r in ranking.errors]
    if ranking.histogram:
        lines.append("\nmean trained loss histogram:")
        widest = max(b["count"] for b in ranking.histogram) or 1
        for b in ranking.histogram:
            bar = "#" * round(BAR * b["count"] / widest)
            lines.append(f"{b['lo']:7.3f}-{b['hi']:7.3f} {int(b['count']):>6} {bar}")
    return "\n".join(lines) + "\n"
