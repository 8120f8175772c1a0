"""What an inspection found: the running summary of every row and the rows listed with their
findings, as the JSON answer {"summary": {...}, "rows": [...]}.

Example: report.record(Outcome(3, 120, "conversation", stats, [finding])); report.result()
         -> {"summary": {"rows": 1, ..., "rows_listed": 1}, "rows": [{"line": 3, ...}]}

Design concession: at most `max_row_reports` rows with findings are listed, those with an error
or warning (or unreadable) first, so rows that only carry information (pad == eos, on every row
of some tokenizers) cannot crowd them out; the summary counts them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from app.chat.tokens import SEVERITY_RANK, Finding
from app.errors import InputError
from app.inspect.outcome import Outcome
from app.inspect.plots import DEFAULT_LENGTH, plots
from app.inspect.summary import Summary

Progress = Callable[[int, int], None]  # (bytes read, rows read) so far
SORTS = ("severity", "line", "code")


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


class Report:
    """The summary and the listed rows; outcomes are recorded in file order."""

    def __init__(self, max_row_reports: int) -> None:
        self.max_row_reports = max_row_reports
        self.summary = Summary()
        self._problem_rows: list[RowReport] = []
        self._quiet_rows: list[RowReport] = []
        self._unkept = 0  # rows with findings beyond max_row_reports of their kind

    def record_batch(
        self,
        outcomes: Iterable[Outcome],
        export: IO[str] | None,
        progress: Progress | None,
        read: tuple[int, int],
    ) -> None:
        """`record` every outcome of a batch (writing the readable ones' processed lines to
        `export`, each with its source `line` and 0-based `row` index, so every exported row
        maps back to the dataset), then report the (bytes, rows) read up to the batch's end."""
        for outcome in outcomes:
            self.record(outcome)
            if export is not None and outcome.export_line is not None:
                row = self.summary.rows - 1  # outcomes arrive in file order, bad rows too
                export.write(
                    f'{outcome.export_line[:-2]}, "line": {outcome.line}, "row": {row}}}\n'
                )
        if progress is not None:
            progress(*read)

    def record(self, outcome: Outcome) -> None:
        """Count an evaluated row and list it if it has findings or could not be read."""
        if outcome.error is not None or outcome.stats is None:
            self.summary.add_error(outcome.line, outcome.error or "unreadable row")
            self._keep(RowReport(outcome.line, outcome.offset, outcome.kind, error=outcome.error))
            return
        self.summary.add_row(outcome.stats, outcome.findings, outcome.line)
        if outcome.findings:
            self._keep(
                RowReport(
                    outcome.line,
                    outcome.offset,
                    outcome.kind,
                    outcome.stats.tokens,
                    outcome.stats.trained,
                    outcome.findings,
                )
            )

    def _keep(self, report: RowReport) -> None:
        # Rows whose findings are all info (pad == eos with a tokenizer like SmolLM2's: every
        # row) are kept apart, so they cannot push the rows that need fixing out of the list.
        quiet = report.error is None and all(f.severity == "info" for f in report.lints)
        kept = self._quiet_rows if quiet else self._problem_rows
        if len(kept) < self.max_row_reports:
            kept.append(report)
        else:
            self._unkept += 1

    @property
    def rows(self) -> list[RowReport]:
        """The listed rows, by line: every kept row with an error or warning (or unreadable),
        then info-only rows while fewer than `max_row_reports` are listed."""
        room = max(self.max_row_reports - len(self._problem_rows), 0)
        return sorted(self._problem_rows + self._quiet_rows[:room], key=lambda r: r.line)

    @property
    def omitted_rows(self) -> int:
        """Rows with findings that are counted in the summary but not listed."""
        return len(self._problem_rows) + len(self._quiet_rows) + self._unkept - len(self.rows)

    def offset_of(self, line: int) -> int | None:
        """The byte offset of listed row `line` (None when it is not listed)."""
        return next((r.offset for r in self.rows if r.line == line), None)

    def result(
        self, *, max_length: int | None = None, pack_length: int | None = None
    ) -> dict[str, Any]:
        """The JSON answer: {"summary": {...}, "rows": [{"line", "lints", ...}],
        "plots": {...}}, the plots cut at `max_length` and packed into `pack_length` tokens
        (both default to TRL's max_length default, 1024)."""
        summary = self.summary.to_json()
        rows = self.rows
        summary["rows_listed"] = len(rows)
        summary["rows_omitted"] = self.omitted_rows
        cut = max_length or DEFAULT_LENGTH
        return {
            "summary": summary,
            "rows": [r.to_json() for r in rows],
            "plots": plots(self.summary, max_length=cut, pack_length=pack_length or cut),
        }


def triage(
    rows: Iterable[dict[str, Any]],
    *,
    severity: str = "warning",
    code: str | None = None,
    sort: str = "severity",
) -> tuple[list[dict[str, Any]], int]:
    """Listed rows (as `result()["rows"]`) for reading: findings below `severity` left out,
    rows left with none (and readable) hidden, only rows with `code` when given, sorted by
    their worst severity (unreadable first), by line, or by code. Returns (rows, hidden).

    Example: triage([{"line": 3, "lints": [info]}, {"line": 9, "lints": [error]}])
             -> ([{"line": 9, ...}], 1)
    """
    if severity not in SEVERITY_RANK:
        raise InputError(
            f"severity is {severity!r}; choose one of {', '.join(SEVERITY_RANK)}.",
            field="severity",
        )
    if sort not in SORTS:
        raise InputError(f"sort is {sort!r}; choose one of {', '.join(SORTS)}.", field="sort")
    limit = SEVERITY_RANK[severity]
    kept, hidden = [], 0
    for row in rows:
        lints = [f for f in row["lints"] if SEVERITY_RANK[f["severity"]] <= limit]
        if code is not None:
            lints = [f for f in lints if f["code"] == code]
        if not lints and not (row.get("error") and code is None):
            hidden += 1
            continue
        kept.append({**row, "lints": lints})
    keys: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
        "severity": lambda r: (_worst(r), r["line"]),
        "line": lambda r: (r["line"],),
        "code": lambda r: (r["lints"][0]["code"] if r["lints"] else "", r["line"]),
    }
    return sorted(kept, key=keys[sort]), hidden


def _worst(row: dict[str, Any]) -> int:
    if row.get("error"):
        return -1
    return min((SEVERITY_RANK[f["severity"]] for f in row["lints"]), default=len(SEVERITY_RANK))
