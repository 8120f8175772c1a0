"""A raw dataset row in, an Outcome out: render (or read) the row, lint it, count its tokens.

Example: RowEvaluator(options).evaluate_many([RawRow(1, 0, {"messages": [...]})], False)
         -> [Outcome(1, 0, "conversation", RowStats(tokens=37, trained=9, ...), [...])]

Design concession: the checks that re-render a conversation (prefix stability, training vs
inference) depend on the template, not the row, so they run on the first `probe_rows`
conversation rows only; every other check runs on every row. Conversation rows are rendered a
batch at a time (one tokenizer call per batch) and the garbage collector is paused once per
batch, not once per row; a broken batch falls back to rendering row by row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from app.chat.collector import collector_paused
from app.chat.messages import Conversation, parse_row
from app.chat.render import Renderings
from app.chat.spec import has_row_inputs
from app.chat.tokens import Finding, Rendering
from app.errors import MaskscopeError
from app.inspect.options import InspectOptions
from app.inspect.outcome import Outcome, Processed
from app.inspect.reader import RawRow
from app.inspect.renderer import RowRenderer
from app.inspect.rows import is_token_row, parse_token_row
from app.inspect.summary import RowStats
from app.inspect.tokenized import TokenRowLinter, token_rendering
from app.lint import run_checks
from app.lint.context import LintContext, TokenView
from app.lint.registry import Scope

log = logging.getLogger(__name__)

# A row's (conversation, rendering or the error its render raised), from the batch render.
Rendered = tuple[Conversation, Rendering | MaskscopeError]
Evaluated = tuple[RowStats, list[Finding], Processed]


class RowEvaluator:
    """Evaluate rows under one inspection's options; counts its probe (deep-checked) rows."""

    def __init__(self, options: InspectOptions) -> None:
        self.renderer = RowRenderer.of(options)
        self.tokens = TokenRowLinter(self.renderer)
        self.probe_rows = options.probe_rows
        self._conversations = 0

    def reset_probes(self, probe_rows: int) -> None:
        """Deep-check the next `probe_rows` conversation rows (a worker does this per chunk)."""
        self.probe_rows, self._conversations = probe_rows, 0

    def evaluate_many(self, raws: list[RawRow], want_export: bool) -> list[Outcome]:
        """`evaluate` of every row, the conversation rows rendered as one batch."""
        return self.start(raws, want_export)()

    def start(
        self, raws: list[RawRow], want_export: bool, pool: Executor | None = None
    ) -> Callable[[], list[Outcome]]:
        """Parse the batch's conversation rows and render their templates now, with their
        tokens made on `pool`; the returned function evaluates every row of the batch."""
        parsed = _conversations(raws)
        finish: Renderings | None = None
        try:
            finish = self.renderer.start([c for _, c in parsed], pool)
        except Exception:
            log.debug("batch render failed; rendering row by row", exc_info=True)

        def outcomes() -> list[Outcome]:
            with collector_paused():
                ready = _rendered(parsed, finish)
                # Each row's rendering is dropped once evaluated, while the collector is still
                # off: it resumes with almost nothing new to walk.
                return [
                    self.evaluate(raw, want_export, ready.pop(k, None))
                    for k, raw in enumerate(raws)
                ]

        return outcomes

    def evaluate(self, raw: RawRow, want_export: bool, rendered: Rendered | None = None) -> Outcome:
        """Render or read one row and lint it; a bad row becomes an Outcome with its error.
        `rendered` is the row's batch rendering when `start` already made it."""
        if raw.error is not None or raw.row is None:
            return Outcome(raw.line, raw.offset, "unreadable", error=raw.error or "empty row")
        kind = "tokenized" if is_token_row(raw.row) else "conversation"
        try:
            stats, findings, processed = (
                self._token_row(raw.row)
                if kind == "tokenized"
                else self._conversation_row(raw.row, rendered)
            )
        except MaskscopeError as exc:
            return Outcome(raw.line, raw.offset, kind, error=f"line {raw.line}: {exc.message}")
        except Exception as exc:  # one broken row must not stop the other 99,999
            log.debug("row %d failed", raw.line, exc_info=True)
            return Outcome(
                raw.line, raw.offset, kind, error=f"line {raw.line}: {type(exc).__name__}: {exc}"
            )
        line = processed.jsonl() if want_export else None
        return Outcome(raw.line, raw.offset, kind, stats, findings, line)

    def _conversation_row(self, row: dict[str, Any], rendered: Rendered | None) -> Evaluated:
        renderer = self.renderer
        if rendered is not None:
            conversation, made = rendered
            if isinstance(made, MaskscopeError):
                raise made
            rendering = made
        else:  # a row the batch left out renders under its own spec (its tools, if any)
            renderer = renderer.for_row(row)
            conversation = parse_row(row)
            rendering = renderer.render(conversation)
        ctx = renderer.context(rendering, conversation)
        deep = self._conversations < self.probe_rows
        self._conversations += 1
        scopes: tuple[Scope, ...] = (
            ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
        )
        findings = run_checks(ctx, scopes, extra=rendering.findings)
        stats = row_stats(ctx.view, len(rendering.input_ids), "conversation")
        # The rendering is this row's own and dropped after this: its lists are not copied.
        return (
            stats,
            findings,
            Processed(rendering.input_ids, rendering.labels, rendering.attention_mask),
        )

    def _token_row(self, row: dict[str, Any]) -> Evaluated:
        parsed = parse_token_row(row)
        view, findings = self.tokens.lint(parsed)
        mask = parsed.attention_mask or [1] * len(parsed.input_ids)
        stats = row_stats(view, parsed.real_tokens(), "tokenized")
        return stats, findings, Processed(parsed.input_ids, parsed.labels, mask)

    def drill(self, row: dict[str, Any]) -> tuple[Rendering, list[Finding]]:
        """One row as a Rendering with all its findings (deep checks included), for the page."""
        if not is_token_row(row):
            conversation = parse_row(row)
            renderer = self.renderer.for_row(row)
            rendering = renderer.render(conversation)
            ctx = renderer.context(rendering, conversation)
            return rendering, _checked(ctx, rendering, deep=True)
        parsed = parse_token_row(row)
        view, findings = self.tokens.lint(parsed)
        r = self.renderer
        return token_rendering(parsed, view, r.tokenizer, r.spec.dialect), findings


def _checked(ctx: LintContext, rendering: Rendering, deep: bool) -> list[Finding]:
    """Every finding of a rendering, the engine's own included; `deep` adds the checks that
    re-render the conversation (what `lint_rendering` runs)."""
    scopes: tuple[Scope, ...] = ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
    return run_checks(ctx, scopes, extra=rendering.findings)


def row_stats(view: TokenView, tokens: int, kind: str) -> RowStats:
    """What a row adds to the summary: `tokens` real tokens, its trained ones and end-of-turns."""
    trained = view.trained
    closing = [i for i in view.eots if i > 0 and trained[i - 1]]
    return RowStats(
        tokens=tokens,
        trained=sum(trained),
        eot_closing=len(closing),
        eot_trained=sum(1 for i in closing if trained[i]),
        kind=kind,
    )


def _conversations(raws: list[RawRow]) -> list[tuple[int, Conversation]]:
    """(position in the batch, parsed conversation) of each conversation row that parses; a
    row that does not, or that brings its own tools or template variables (rendered under its
    own spec), is left to `evaluate`, which reports it with its line."""
    parsed: list[tuple[int, Conversation]] = []
    for k, raw in enumerate(raws):
        row = raw.row
        if raw.error is None and row is not None and not is_token_row(row):
            if has_row_inputs(row):
                continue
            try:
                parsed.append((k, parse_row(raw.row)))
            except Exception:
                continue
    return parsed


def _rendered(
    parsed: list[tuple[int, Conversation]], finish: Renderings | None
) -> dict[int, Rendered]:
    """Row position -> (conversation, rendering or its error); empty when the batch broke
    (the rows are then rendered one by one, each failure with its own line)."""
    if finish is None:
        return {}
    try:
        results = finish()
    except Exception:
        log.debug("batch render failed; rendering row by row", exc_info=True)
        return {}
    return {k: (c, r) for (k, c), r in zip(parsed, results, strict=True)}
