"""Inspect a JSONL dataset row by row: render or read each row, lint it, count it.

Design concession: the checks that re-render a conversation (prefix stability, training vs
inference) depend on the template, not the row, so they run on the first `probe_rows`
conversation rows only; every other check runs on every row. At most `max_row_reports` rows
with findings are listed, those with an error or warning (or unreadable) first, so rows that
only carry information (pad == eos, on every row of some tokenizers) cannot crowd them out; the
summary counts them all. Rows are evaluated in batches of `BATCH_ROWS` (one tokenizer call
per batch), so progress is reported per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any, BinaryIO

from app.chat.messages import Message, parse_row
from app.chat.render import collector_paused, render, start_many
from app.chat.spec import RenderSpec
from app.chat.tokens import IGNORE_INDEX, Finding, Rendering, Token
from app.dialects.registry import get_dialect
from app.errors import MaskscopeError
from app.inspect.reader import JsonlReader, RawRow
from app.inspect.rows import TokenRow, is_token_row, parse_token_row
from app.inspect.summary import RowStats, Summary
from app.lint import context_for_rendering, lint_rendering, lint_tokens, run_checks
from app.lint.context import TokenView, view_of_rendering
from app.lint.facts import facts_for
from app.lint.markers import Markers, probe_markers, roles_by_markers
from app.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
BATCH_ROWS = 128  # rows rendered and tokenized together; progress is reported per batch


@dataclass
class InspectOptions:
    """How to read the rows: tokenizer object, dialect slug and the render options' fields."""

    tokenizer: Any
    dialect: str
    train_on: str = "assistant"
    train_on_eot: bool = True
    max_length: int | None = None
    template: str | None = None
    probe_rows: int = 3
    max_row_reports: int = 2_000
    max_rows: int = 200_000
    max_line_bytes: int = 16_000_000
    tokenizer_ref: str | None = None
    settings: Any = None


@dataclass
class RowReport:
    """One listed row: its line, kind, sizes and findings (or the error that made it bad)."""

    line: int
    offset: int
    kind: str
    tokens: int = 0
    trained: int = 0
    lints: list[Finding] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line": self.line,
            "kind": self.kind,
            "tokens": self.tokens,
            "trained": self.trained,
            "lints": [f.to_json() for f in self.lints],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Outcome:
    """One evaluated row, small enough to send between processes."""

    line: int
    offset: int
    kind: str
    stats: RowStats | None = None
    findings: list[Finding] = field(default_factory=list)
    export_line: str | None = None
    error: str | None = None


@dataclass
class Processed:
    """A row as the trainer would see it."""

    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int]

    def jsonl(self) -> str:
        """The row as one JSONL line, byte for byte what `json.dumps` writes.

        A list of exact ints prints as its JSON array (`str([5, -100])` == "[5, -100]") at
        a fraction of the encoder's cost; all three lists hold exact ints (token ids from the
        tokenizer, or a row's own lists, where booleans are refused).
        """
        mask = self.attention_mask
        # Conversation rows attend to every token: their mask's text is made once per length.
        text = _all_ones(len(mask)) if mask and all(mask) else str(mask)  # 0/1 only
        return (
            f'{{"input_ids": {self.input_ids}, "labels": {self.labels}, '
            f'"attention_mask": {text}}}\n'
        )


@lru_cache(maxsize=1024)
def _all_ones(n: int) -> str:
    return str([1] * n)


class Inspector:
    """Run over a stream; `summary` and `rows` fill as it goes, `progress` is called per row."""

    def __init__(self, options: InspectOptions) -> None:
        self.options = options
        self.render_spec = RenderSpec(
            dialect=options.dialect,
            template=options.template,
            train_on=options.train_on,
            train_on_eot=options.train_on_eot,
            add_generation_prompt=False,
            max_length=options.max_length,
        )
        self.chat_format = get_dialect(options.dialect)
        self.settings: Settings = options.settings or Settings.from_env()
        self.summary = Summary()
        self._problem_rows: list[RowReport] = []
        self._quiet_rows: list[RowReport] = []
        self._unkept = 0  # rows with findings beyond max_row_reports of their kind
        self._conversations = 0
        self._markers: Markers | None | bool = False

    def run(
        self, stream: BinaryIO, *, progress: Progress | None = None, export: IO[str] | None = None
    ) -> Inspector:
        """Inspect every row of `stream`; write processed rows to `export` when given.

        Batches overlap: while one batch is linted, the next one's tokens are being made on a
        second thread (the Rust tokenizer releases the GIL), so tokenizing costs little wall
        time on a machine with a spare core.
        """
        reader = JsonlReader(
            stream, max_rows=self.options.max_rows, max_line_bytes=self.options.max_line_bytes
        )
        want_export = export is not None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskscope-tokens") as pool:
            # The batch whose tokens are being made, and the (bytes, rows) read up to its end.
            pending: tuple[Callable[[], list[Outcome]], tuple[int, int]] | None = None
            for batch in _batches(reader, BATCH_ROWS):
                started = self._start(batch, want_export, pool)
                if pending is not None:
                    self.record_batch(pending[0](), export, progress, pending[1])
                pending = (started, (reader.bytes_read, reader.rows))
            if pending is not None:
                self.record_batch(pending[0](), export, progress, pending[1])
        if progress is not None:
            progress(reader.bytes_read, reader.rows)
        return self

    def record_batch(
        self,
        outcomes: Iterable[Outcome],
        export: IO[str] | None,
        progress: Progress | None,
        read: tuple[int, int],
    ) -> None:
        """`record` every outcome of a batch, then report the (bytes, rows) read up to its end."""
        for outcome in outcomes:
            self.record(outcome, export)
        if progress is not None:
            progress(*read)

    def evaluate_many(self, raws: list[RawRow], want_export: bool) -> list[Outcome]:
        """`evaluate` of every row, with the conversation rows rendered as one batch (the
        tokenizer then encodes them in one call), and the garbage collector paused once per
        batch instead of once per row."""
        return self._start(raws, want_export)()

    def _start(
        self, raws: list[RawRow], want_export: bool, pool: Executor | None = None
    ) -> Callable[[], list[Outcome]]:
        """Parse the batch's conversation rows and render their templates now, with their
        tokens made on `pool`; the returned function evaluates every row of the batch."""
        parsed: list[tuple[int, Any]] = []
        for k, raw in enumerate(raws):
            if raw.error is None and raw.row is not None and not is_token_row(raw.row):
                try:
                    parsed.append((k, parse_row(raw.row)))
                except Exception:  # noqa: BLE001 - evaluate reports it with its line
                    continue
        finish: Callable[[], list[Any]] | None = None
        try:
            finish = start_many(
                [c for _, c in parsed],
                self.chat_format,
                self.options.tokenizer,
                self.render_spec,
                self.settings,
                pool,
            )
        except Exception:
            log.debug("batch render failed; rendering row by row", exc_info=True)

        def outcomes() -> list[Outcome]:
            with collector_paused():
                ready = self._rendered(parsed, finish)
                # Each row's rendering is dropped once evaluated, while the collector is still
                # off: it resumes with almost nothing new to walk.
                return [
                    self.evaluate(raw, want_export, ready.pop(k, None))
                    for k, raw in enumerate(raws)
                ]

        return outcomes

    @staticmethod
    def _rendered(
        parsed: list[tuple[int, Any]],
        finish: Callable[[], list[Any]] | None,
    ) -> dict[int, tuple[Any, Any]]:
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

    def inspect_row(self, raw: RawRow) -> Outcome:
        """Lint and count one row; a bad row is recorded with its line and never raises."""
        outcome = self.evaluate(raw, want_export=False)
        self.record(outcome, None)
        return outcome

    def evaluate(
        self, raw: RawRow, want_export: bool, rendered: tuple[Any, Any] | None = None
    ) -> Outcome:
        """Render or read one row and lint it, without touching the summary. `rendered` is the
        row's (conversation, rendering or error) when `render_many` already made it."""
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

    def record(self, outcome: Outcome, export: IO[str] | None) -> None:
        """Count an evaluated row, list it if it has findings, export it if it was readable."""
        if outcome.error is not None or outcome.stats is None:
            self.summary.add_error(outcome.line, outcome.error or "unreadable row")
            self._report(RowReport(outcome.line, outcome.offset, outcome.kind, error=outcome.error))
            return
        self.summary.add_row(outcome.stats, outcome.findings)
        if outcome.findings:
            self._report(
                RowReport(
                    outcome.line,
                    outcome.offset,
                    outcome.kind,
                    outcome.stats.tokens,
                    outcome.stats.trained,
                    outcome.findings,
                )
            )
        if export is not None and outcome.export_line is not None:
            export.write(outcome.export_line)

    def _report(self, report: RowReport) -> None:
        # Rows whose findings are all info (pad == eos with a tokenizer like SmolLM2's: every
        # row) are kept apart, so they cannot push the rows that need fixing out of the list.
        quiet = report.error is None and all(f.severity == "info" for f in report.lints)
        kept = self._quiet_rows if quiet else self._problem_rows
        if len(kept) < self.options.max_row_reports:
            kept.append(report)
        else:
            self._unkept += 1

    @property
    def rows(self) -> list[RowReport]:
        """The listed rows, by line: every kept row with an error or warning (or unreadable),
        then info-only rows while fewer than `max_row_reports` are listed."""
        room = max(self.options.max_row_reports - len(self._problem_rows), 0)
        return sorted(self._problem_rows + self._quiet_rows[:room], key=lambda r: r.line)

    @property
    def omitted_rows(self) -> int:
        """Rows with findings that are counted in the summary but not listed."""
        return len(self._problem_rows) + len(self._quiet_rows) + self._unkept - len(self.rows)

    def _conversation_row(
        self,
        row: dict[str, Any],
        rendered: tuple[Any, Any] | None = None,
    ) -> tuple[RowStats, list[Finding], Processed]:
        if rendered is not None:
            conversation, rendering = rendered
            if isinstance(rendering, MaskscopeError):
                raise rendering
        else:
            conversation = parse_row(row)
            rendering = self.render(conversation)
        ctx = context_for_rendering(
            rendering,
            conversation=conversation,
            tokenizer=self.options.tokenizer,
            dialect=self.chat_format,
            spec=self.render_spec,
            settings=self.settings,
        )
        deep = self._conversations < self.options.probe_rows
        self._conversations += 1
        scopes = ("tokens", "rendering", "deep") if deep else ("tokens", "rendering")
        findings = run_checks(ctx, scopes, extra=rendering.findings)
        stats = _stats(ctx.view, len(rendering.input_ids), "conversation")
        # The rendering is this row's own and dropped after this: its lists are not copied.
        return (
            stats,
            findings,
            Processed(rendering.input_ids, rendering.labels, rendering.attention_mask),
        )

    def _token_row(self, row: dict[str, Any]) -> tuple[RowStats, list[Finding], Processed]:
        parsed = parse_token_row(row)
        view, findings = self._token_lints(parsed)
        mask = parsed.attention_mask or [1] * len(parsed.input_ids)
        stats = _stats(view, parsed.real_tokens(), "tokenized")
        return stats, findings, Processed(parsed.input_ids, parsed.labels, mask)

    def _token_lints(self, parsed: TokenRow) -> tuple[TokenView, list[Finding]]:
        view = self._token_view(parsed)
        eot_ids = self._eot_ids()
        if not view.eots:
            view.eots = [i for i, tid in enumerate(parsed.input_ids) if tid in eot_ids]
        findings = lint_tokens(
            view,
            tokenizer=self.options.tokenizer,
            labels=parsed.labels,
            eot_ids=eot_ids,
            dialect=self.options.dialect,
            train_on=self.options.train_on,
        )
        return view, findings

    def _token_view(self, parsed: TokenRow) -> TokenView:
        """Roles from re-rendering the row's messages when they give the same ids, else from
        the dialect's markers; end-of-turn tokens likewise."""
        trained = [label != IGNORE_INDEX for label in parsed.labels]
        if parsed.messages:
            rendering = self.render(parse_row({"messages": parsed.messages}))
            if list(rendering.input_ids) == parsed.input_ids:
                rendered = view_of_rendering(rendering)
                return TokenView(
                    parsed.input_ids, trained, rendered.roles, rendered.eots, parsed.segments()
                )
        markers = self._probe()
        roles: list[str | None] = (
            roles_by_markers(parsed.input_ids, markers.headers)
            if markers
            else [None] * len(parsed.input_ids)
        )
        return TokenView(parsed.input_ids, trained, roles, [], parsed.segments())

    def _probe(self) -> Markers | None:
        if self._markers is False:
            self._markers = probe_markers(
                self.options.tokenizer, self.options.dialect, self.render_spec, self.rerender
            )
        return self._markers or None

    def _eot_ids(self) -> frozenset[int]:
        markers = self._probe()
        eos = facts_for(self.options.tokenizer).eos_id
        found = set(markers.eot_ids) if markers else set()
        return frozenset(found | ({eos} if eos is not None else set()))

    def reset_probes(self) -> None:
        """Start counting probe rows afresh (a worker does this for every chunk)."""
        self._conversations = 0

    def drill(self, row: dict[str, Any]) -> tuple[Rendering, list[Finding]]:
        """One row as a Rendering with all its findings (deep checks included), for the page."""
        if not is_token_row(row):
            conversation = parse_row(row)
            rendering = self.render(conversation)
            return rendering, lint_rendering(
                rendering,
                conversation=conversation,
                tokenizer=self.options.tokenizer,
                dialect=self.chat_format,
                spec=self.render_spec,
                settings=self.settings,
            )
        parsed = parse_token_row(row)
        view, findings = self._token_lints(parsed)
        return token_rendering(parsed, view, self.options.tokenizer, self.options.dialect), findings

    def render(self, conversation: Sequence[Message]) -> Rendering:
        """One conversation under the inspection's dialect, tokenizer, spec and limits."""
        return render(
            conversation, self.chat_format, self.options.tokenizer, self.render_spec, self.settings
        )

    def rerender(self, conversation: Sequence[Message], spec: RenderSpec) -> Rendering:
        """`render` under another spec (the lints' probes)."""
        return render(conversation, self.chat_format, self.options.tokenizer, spec, self.settings)

    def result(self) -> dict[str, Any]:
        """The JSON answer: {"summary": {...}, "rows": [{"line", "lints", ...}]}."""
        summary = self.summary.to_json()
        rows = self.rows
        summary["rows_listed"] = len(rows)
        summary["rows_omitted"] = self.omitted_rows
        return {"summary": summary, "rows": [r.to_json() for r in rows]}


def token_rendering(parsed: TokenRow, view: TokenView, tokenizer: Any, dialect: str) -> Rendering:
    """A Rendering built from a pre-tokenized row, so the page can show it as chips.

    Design concession: each token's text is its own decoded piece, so the texts join to a
    readable string that may differ from a whole decode where characters span several tokens.
    """
    facts = facts_for(tokenizer)
    tokens, pos = [], 0
    for i, (tid, piece) in enumerate(
        zip(parsed.input_ids, tokenizer.batch_decode([[t] for t in parsed.input_ids]), strict=True)
    ):
        tokens.append(
            Token(
                i,
                tid,
                piece,
                view.roles[i],
                None,
                tid in facts.special_ids,
                view.trained[i],
                pos,
                pos + len(piece),
            )
        )
        pos += len(piece)
    return Rendering(
        text="".join(t.text for t in tokens),
        input_ids=list(parsed.input_ids),
        labels=list(parsed.labels),
        attention_mask=parsed.attention_mask or [1] * len(tokens),
        tokens=tokens,
        spans=[],
        dialect=dialect,
    )


def _stats(view: TokenView, tokens: int, kind: str) -> RowStats:
    trained = view.trained
    closing = [i for i in view.eots if i > 0 and trained[i - 1]]
    return RowStats(
        tokens=tokens,
        trained=sum(trained),
        eot_closing=len(closing),
        eot_trained=sum(1 for i in closing if trained[i]),
        kind=kind,
    )


def _batches(rows: Iterable[RawRow], size: int) -> Iterator[list[RawRow]]:
    """Consecutive lists of `size` rows (the last may be shorter; none is empty)."""
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
