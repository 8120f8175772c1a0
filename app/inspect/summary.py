"""Running dataset summary: constant memory whatever the number of rows.

Design concession: the trained-fraction distribution is kept as a fixed 10-bin histogram rather
than every row's value, and bad-row messages beyond `max_errors` are counted, not kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.chat.tokens import SEVERITY_RANK, Finding
from app.lint.context import TokenView

BINS = 10
CODE_LINES = 10  # lines kept per lint code, the first ones found


@dataclass
class RowStats:
    """What one row adds: real tokens, trained tokens, end-of-turns closing trained turns."""

    tokens: int
    trained: int
    eot_closing: int
    eot_trained: int
    kind: str

    def plus(self, other: RowStats) -> RowStats:
        """Both rows' counts (a preference row: its chosen and its rejected side)."""
        return RowStats(
            self.tokens + other.tokens,
            self.trained + other.trained,
            self.eot_closing + other.eot_closing,
            self.eot_trained + other.eot_trained,
            self.kind,
        )


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


@dataclass
class Summary:
    """Counts over all rows. Example: Summary().to_json()["rows"] == 0"""

    max_errors: int = 100
    rows: int = 0
    bad_rows: int = 0
    conversation_rows: int = 0
    tokenized_rows: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    zero_trained_rows: int = 0
    eot_closing: int = 0
    eot_trained: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * BINS)
    codes: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    worst: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    lines: dict[str, list[int]] = field(default_factory=dict)

    def add_row(self, stats: RowStats, findings: list[Finding], line: int = 0) -> None:
        self.rows += 1
        self.shapes[stats.kind] += 1
        if stats.kind == "tokenized":
            self.tokenized_rows += 1
        else:
            self.conversation_rows += 1
        self.tokens += stats.tokens
        self.trained_tokens += stats.trained
        self.eot_closing += stats.eot_closing
        self.eot_trained += stats.eot_trained
        if stats.trained == 0:
            self.zero_trained_rows += 1
        fraction = stats.trained / stats.tokens if stats.tokens else 0.0
        self.histogram[min(int(fraction * BINS), BINS - 1)] += 1
        # Each code once per row, in the row's finding order: a set would order equal counts by
        # string hash, which differs from one process to the next.
        for code in dict.fromkeys(f.code for f in findings):
            self.codes[code] += 1
            kept = self.lines.setdefault(code, [])
            if len(kept) < CODE_LINES:
                kept.append(line)
        for finding in findings:
            self.severities[finding.severity] += 1
            known = self.worst.get(finding.code)
            if known is None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK[known]:
                self.worst[finding.code] = finding.severity

    def add_error(self, line: int, message: str) -> None:
        self.rows += 1
        self.bad_rows += 1
        if len(self.errors) < self.max_errors:
            self.errors.append({"line": line, "message": message})

    @property
    def has_errors(self) -> bool:
        return self.fails("error")

    def fails(self, level: str) -> bool:
        """Whether a row is unreadable or has a finding of `level` ("error" or "warning") or
        worse: what `maskscope lint --fail-on` exits 1 on."""
        worse = [s for s, rank in SEVERITY_RANK.items() if rank <= SEVERITY_RANK[level]]
        return self.bad_rows > 0 or any(self.severities[s] > 0 for s in worse)

    def to_json(self) -> dict[str, Any]:
        good = self.rows - self.bad_rows
        return {
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "conversation_rows": self.conversation_rows,
            "tokenized_rows": self.tokenized_rows,
            "shapes": dict(self.shapes.most_common()),
            "tokens": self.tokens,
            "trained_tokens": self.trained_tokens,
            "trained_fraction": self.trained_tokens / self.tokens if self.tokens else 0.0,
            "trained_fraction_histogram": [
                {"from": i / BINS, "to": (i + 1) / BINS, "rows": n}
                for i, n in enumerate(self.histogram)
            ],
            "zero_trained_rows": self.zero_trained_rows,
            "eot_closing_trained_turns": self.eot_closing,
            "eot_trained": self.eot_trained,
            "eot_trained_rate": self.eot_trained / self.eot_closing if self.eot_closing else None,
            "codes": dict(self.codes.most_common()),
            "worst_severity": dict(self.worst),
            "code_lines": {code: list(self.lines.get(code, ())) for code in self.codes},
            "severities": {s: self.severities[s] for s in ("error", "warning", "info")},
            "errors": list(self.errors),
            "rows_ok": good,
        }
