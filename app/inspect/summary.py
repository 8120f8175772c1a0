"""Running dataset summary: constant memory whatever the number of rows.

Design concession: the trained-fraction distribution is kept as a fixed 10-bin histogram rather
than every row's value, and bad-row messages beyond `max_errors` are counted, not kept.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import compress
from typing import Any

from app.chat.tokens import SEVERITY_RANK, Finding, Rendering
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
    first_trained: int = 0  # index of the first trained token (tokens when none)
    trained_end: int = 0  # one past the last trained token (0 when none)
    roles: dict[str, int] = field(default_factory=dict)  # tokens per role
    parts: dict[str, int] = field(default_factory=dict)  # trained tokens per part
    tool_call_turns: int = 0  # trained turns ending in a tool call
    tool_call_eot_trained: int = 0  # ... whose end-of-turn is trained
    arguments: int = 0  # tool-call arguments given as: 1 a JSON string, 2 an object (bits)
    desirable: bool | None = None  # a KTO row's label

    def plus(self, other: RowStats) -> RowStats:
        """Both rows' counts (a preference row: its chosen and its rejected side); positions
        and roles are the first side's."""
        parts = Counter(self.parts)
        parts.update(other.parts)
        return replace(
            self,
            tokens=self.tokens + other.tokens,
            trained=self.trained + other.trained,
            eot_closing=self.eot_closing + other.eot_closing,
            eot_trained=self.eot_trained + other.eot_trained,
            parts=dict(parts),
            tool_call_turns=self.tool_call_turns + other.tool_call_turns,
            tool_call_eot_trained=self.tool_call_eot_trained + other.tool_call_eot_trained,
        )


def token_parts(rendering: Rendering) -> Sequence[str]:
    """Each token's part (content, reasoning, tool_call, image, markup)."""
    parts = getattr(rendering.tokens, "parts", None)  # TokenColumns: kept as a column
    return parts if parts is not None else [t.part for t in rendering.tokens]


def row_stats(
    view: TokenView, tokens: int, kind: str, parts: Sequence[str] | None = None
) -> RowStats:
    """What a row adds to the summary: `tokens` real tokens, its trained ones, end-of-turns,
    where training starts and ends, tokens per role and (with `parts`) trained ones per part."""
    trained = view.trained
    closing = [i for i in view.eots if i > 0 and trained[i - 1]]
    count = sum(trained)
    first = trained.index(True) if count else len(trained)
    end = len(trained) - trained[::-1].index(True) if count else 0
    by_part: dict[str, int] = {}
    calls = called = 0
    if parts is not None:
        by_part = dict(Counter(compress(parts, trained)))
        calls_at = [i for i in closing if parts[i - 1] == "tool_call"]
        calls, called = len(calls_at), sum(1 for i in calls_at if trained[i])
    roles = view.roles
    return RowStats(
        tokens=tokens,
        trained=count,
        eot_closing=len(closing),
        eot_trained=sum(1 for i in closing if trained[i]),
        kind=kind,
        first_trained=first,
        trained_end=end,
        roles={role or "none": n for role, n in Counter(roles).items()},
        parts=by_part,
        tool_call_turns=calls,
        tool_call_eot_trained=called,
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
    # Per row, in file order (4 bytes each, bounded by max_upload_rows): for the plots.
    lengths: array[int] = field(default_factory=lambda: array("I"))
    firsts: array[int] = field(default_factory=lambda: array("I"))
    ends: array[int] = field(default_factory=lambda: array("I"))
    trained_counts: array[int] = field(default_factory=lambda: array("I"))
    role_bins: dict[str, Counter[int]] = field(default_factory=dict)
    part_bins: dict[str, Counter[int]] = field(default_factory=dict)
    part_tokens: Counter[str] = field(default_factory=Counter)
    tool_call_turns: int = 0
    tool_call_eot_trained: int = 0
    kto_labels: Counter[bool] = field(default_factory=Counter)
    argument_lines: dict[int, int] = field(default_factory=dict)  # kind bit -> first line

    def add_row(self, stats: RowStats, findings: list[Finding], line: int = 0) -> None:
        self.rows += 1
        self.shapes[stats.kind] += 1
        if stats.kind == "tokenized":
            self.tokenized_rows += 1
        else:
            self.conversation_rows += 1
        self.tokens += stats.tokens
        self.trained_tokens += stats.trained
        self._add_shape(stats, line)
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

    def _add_shape(self, stats: RowStats, line: int) -> None:
        self.lengths.append(stats.tokens)
        self.firsts.append(min(stats.first_trained, stats.tokens))
        self.ends.append(stats.trained_end)
        self.trained_counts.append(stats.trained)
        for role, n in stats.roles.items():
            self.role_bins.setdefault(role, Counter())[n.bit_length()] += 1
        for part, n in stats.parts.items():
            self.part_bins.setdefault(part, Counter())[n.bit_length()] += 1
        self.part_tokens.update(stats.parts)
        self.tool_call_turns += stats.tool_call_turns
        self.tool_call_eot_trained += stats.tool_call_eot_trained
        if stats.desirable is not None:
            self.kto_labels[stats.desirable] += 1
        for bit in (1, 2):
            if stats.arguments & bit:
                self.argument_lines.setdefault(bit, line)

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
            "trained_tokens_by_part": dict(self.part_tokens.most_common()),
            "tool_call_turns": self.tool_call_turns,
            "tool_call_eot_trained": self.tool_call_eot_trained,
            "kto_desirable": self.kto_labels[True],
            "kto_undesirable": self.kto_labels[False],
            "dataset_findings": [f.to_json() for f in self.dataset_findings()],
        }

    def dataset_findings(self) -> list[Finding]:
        """Findings no single row shows: tool-call arguments that are JSON strings in some rows
        and objects in others."""
        if len(self.argument_lines) < 2:
            return []
        text, obj = self.argument_lines[1], self.argument_lines[2]
        return [
            Finding(
                "tool-arguments-mixed",
                "info",
                f"Tool-call arguments are JSON strings in some rows (first: line {text}) and "
                f"objects in others (first: line {obj}): templates that write arguments with "
                "tojson encode a string twice, so the dataset teaches two formats for one call. "
                "Convert them to objects before training.",
            )
        ]
