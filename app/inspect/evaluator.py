"""A raw dataset row in, an Outcome out: render (or read) the row, lint it, count its tokens.

Example: RowEvaluator(options).evaluate_many([RawRow(1, 0, {"messages": [...]})], False)
         -> [Outcome(1, 0, "conversation", RowStats(tokens=37, trained=9, ...), [...])]

Rows of every shape go through here: conversations, pre-tokenized rows, prompt/completion and
KTO rows (as a conversation, or as TRL tokenizes plain strings) and preference rows (both sides
rendered, each linted, then the pair; see app.inspect.shapes and app.lint.preference_checks).

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
from app.errors import InputError, MaskscopeError
from app.inspect.options import InspectOptions
from app.inspect.outcome import Outcome, Processed
from app.inspect.pairs import PairEvaluator
from app.inspect.reader import RawRow
from app.inspect.renderer import RowRenderer
from app.inspect.rows import parse_token_row
from app.inspect.shapes import Shaped, shape_row
from app.inspect.summary import RowStats, row_stats, token_parts
from app.inspect.tokenized import TokenRowLinter, token_rendering
from app.lint import run_checks
from app.lint.context import LintContext
from app.lint.registry import Scope

log = logging.getLogger(__name__)

# A row's (conversation, rendering or the error its render raised), from the batch render.
Rendered = tuple[Conversation, Rendering | MaskscopeError]
Evaluated = tuple[RowStats, list[Finding], Processed | str]
# One side of a drilled row: its title ("" for a single rendering), rendering and findings.
Drilled = list[tuple[str, Rendering, list[Finding]]]


class RowEvaluator:
    """Evaluate rows under one inspection's options; counts its probe (deep-checked) rows."""

    def __init__(self, options: InspectOptions) -> None:
        self.renderer = RowRenderer.of(options)
        self.tokens = TokenRowLinter(self.renderer)
        self.pairs = PairEvaluator(self.renderer)
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
        shaped = [self.shape(raw) for raw in raws]
        parsed = _conversations(shaped)
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
                    self.evaluate(item, want_export, ready.pop(k, None))
                    for k, item in enumerate(shaped)
                ]

        return outcomes

    def shape(self, raw: RawRow) -> Shaped:
        """The row's kind, and the row as the conversation or token row it reads as."""
        return shape_row(raw, self.renderer.tokenizer, self.renderer.spec.train_on)

    def evaluate(
        self, shaped: Shaped, want_export: bool, rendered: Rendered | None = None
    ) -> Outcome:
        """Render or read one row and lint it; a bad row becomes an Outcome with its error.
        `rendered` is the row's batch rendering when `start` already made it."""
        kind, raw = shaped
        if raw.error is not None or raw.row is None:
            return Outcome(raw.line, raw.offset, kind, error=raw.error or "empty row")
        try:
            evaluated: Evaluated
            if kind == "preference":
                evaluated = self.pairs.evaluate(raw.row, self._deep())
            elif raw.row.get("input_ids") is not None:  # plain prompt/completion rows too
                evaluated = self._token_row(raw.row)
            else:
                evaluated = self._conversation_row(raw.row, rendered)
            stats, findings, processed = evaluated
            stats.kind = kind
            if kind == "kto":
                stats.desirable = bool(raw.row["label"])
        except MaskscopeError as exc:
            return Outcome(raw.line, raw.offset, kind, error=f"line {raw.line}: {exc.message}")
        except Exception as exc:  # one broken row must not stop the other 99,999
            log.debug("row %d failed", raw.line, exc_info=True)
            return Outcome(
                raw.line, raw.offset, kind, error=f"line {raw.line}: {type(exc).__name__}: {exc}"
            )
        line = None
        if want_export:
            line = processed if isinstance(processed, str) else processed.jsonl()
        return Outcome(raw.line, raw.offset, kind, stats, findings, line)

    def _deep(self) -> bool:
        """Whether this conversation row is one of the deep-checked probes (and count it)."""
        deep = self._conversations < self.probe_rows
        self._conversations += 1
        return deep

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
        scopes: tuple[Scope, ...] = (
            ("tokens", "rendering", "deep") if self._deep() else ("tokens", "rendering")
        )
        findings = run_checks(ctx, scopes, extra=rendering.findings)
        stats = row_stats(
            ctx.view, len(rendering.input_ids), "conversation", token_parts(rendering)
        )
        stats.arguments = argument_kinds(conversation)
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

    def drill(self, raw: RawRow) -> Drilled:
        """One row as its rendering(s) with all their findings (deep checks included), for
        the page: one for most rows, the chosen and the rejected side for a preference row
        (the pair's own findings listed with the chosen side)."""
        kind, shaped = self.shape(raw)
        row = shaped.row
        if row is None:
            raise InputError(shaped.error or f"line {raw.line} is empty", field="line")
        if kind == "preference":
            return self.pairs.drill(row)
        if row.get("input_ids") is None:
            conversation = parse_row(row)
            renderer = self.renderer.for_row(row)
            rendering = renderer.render(conversation)
            ctx = renderer.context(rendering, conversation)
            return [("", rendering, _checked(ctx, rendering, deep=True))]
        parsed = parse_token_row(row)
        view, findings = self.tokens.lint(parsed)
        r = self.renderer
        return [("", token_rendering(parsed, view, r.tokenizer, r.spec.dialect), findings)]


def argument_kinds(conversation: Conversation) -> int:
    """How the conversation's tool calls give their arguments: 1 as JSON strings, 2 as
    objects (both bits: mixed). Example: [call(arguments="{}"), call(arguments={})] -> 3"""
    kinds = 0
    for message in conversation:
        for call in message.extra.get("tool_calls") or () if message.extra else ():
            function = call.get("function", call) if isinstance(call, dict) else {}
            arguments = function.get("arguments") if isinstance(function, dict) else None
            kinds |= 1 if isinstance(arguments, str) else 2 if isinstance(arguments, dict) else 0
    return kinds


def _checked(ctx: LintContext, rendering: Rendering, deep: bool) -> list[Finding]:
    """Every finding of a rendering, the engine's own included; `deep` adds the checks that
    re-render the conversation (what `lint_rendering` runs)."""
    scopes: tuple[Scope, ...] = ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
    return run_checks(ctx, scopes, extra=rendering.findings)


def _conversations(shaped: list[Shaped]) -> list[tuple[int, Conversation]]:
    """(position in the batch, parsed conversation) of each conversation row that parses; a
    row that does not, or that brings its own tools or template variables (rendered under its
    own spec), is left to `evaluate`, which reports it with its line."""
    parsed: list[tuple[int, Conversation]] = []
    for k, (kind, raw) in enumerate(shaped):
        row = raw.row
        if kind == "preference" or kind == "tokenized":
            continue
        if raw.error is None and row is not None and row.get("input_ids") is None:
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
