"""Dataset plots from a finished summary: token-length histograms (total, trained, per role, per
part), truncation at a chosen max_length, packing at a chosen row length, the rows a trainer
drops; each as JSON, and as bars a page draws as SVG.

Example: plots(summary, max_length=1024, pack_length=1024)
         -> {"lengths": {"total": [{"from": 0, "to": 1, "rows": 0}, ...], ...},
             "truncation": {"max_length": 1024, "rows_cut": 3, ...}, "packing": {...}, ...}

Design concession: length histograms use power-of-two bins (a row of n tokens falls in the bin
[2^(k-1), 2^k) with k = n.bit_length()), so per-role and per-part figures cost one counter per
row and stay constant in memory; packing is simulated (best-fit decreasing, as TRL's "bfd"
strategy) on the first PACK_SAMPLE rows only.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterable
from typing import Any

from app.inspect.summary import Summary

PACK_SAMPLE = 20_000
DEFAULT_LENGTH = 1024  # TRL's SFTConfig max_length default


def plots(summary: Summary, *, max_length: int, pack_length: int) -> dict[str, Any]:
    """Every plot's figures for `summary`, cut at `max_length` and packed into `pack_length`."""
    return {
        "lengths": length_histograms(summary),
        "truncation": truncation(summary, max_length),
        "packing": packing(summary.lengths, pack_length),
        "trainer": trainer_drops(summary, max_length),
    }


def length_histograms(summary: Summary) -> dict[str, Any]:
    """Rows per power-of-two length bin: of all tokens, trained tokens, tokens per role and
    trained tokens per part."""
    return {
        "total": _bins(Counter(n.bit_length() for n in summary.lengths)),
        "trained": _bins(Counter(n.bit_length() for n in summary.trained_counts)),
        "roles": {role: _bins(c) for role, c in sorted(summary.role_bins.items())},
        "parts": {part: _bins(c) for part, c in sorted(summary.part_bins.items())},
    }


def _bins(counts: Counter[int]) -> list[dict[str, int]]:
    """[{"from", "to", "rows"}] for bit lengths 0..the largest seen (empty bins included)."""
    top = max(counts, default=0)
    return [
        {"from": 0 if k == 0 else 1 << (k - 1), "to": 1 << k, "rows": counts.get(k, 0)}
        for k in range(top + 1)
    ]


def truncation(summary: Summary, max_length: int) -> dict[str, Any]:
    """What cutting every row at `max_length` tokens does: rows cut, rows that lose (part of)
    their last answer or its end-of-turn, rows left with nothing trained, tokens lost."""
    cut = lost = answer = everything = 0
    for length, first, end in zip(summary.lengths, summary.firsts, summary.ends, strict=True):
        if length <= max_length:
            continue
        cut += 1
        lost += length - max_length
        answer += end > max_length
        everything += end > 0 and first >= max_length
    return {
        "max_length": max_length,
        "rows_cut": cut,
        "rows_losing_answer_end": answer,
        "rows_losing_everything_trained": everything,
        "tokens_lost": lost,
    }


def packing(lengths: Iterable[int], row_length: int) -> dict[str, Any]:
    """Best-fit decreasing packing of rows (each cut to `row_length`) into rows of
    `row_length` tokens: packs made, rows per pack, and the share of padding left."""
    sample = sorted((min(n, row_length) for n in list(lengths)[:PACK_SAMPLE]), reverse=True)
    free: list[int] = []  # remaining room of each open pack, ascending
    for n in sample:
        at = bisect_left(free, n)
        room = free.pop(at) - n if at < len(free) else row_length - n
        insort(free, room)
    packs = len(free)
    return {
        "row_length": row_length,
        "rows": len(sample),
        "packs": packs,
        "rows_per_pack": len(sample) / packs if packs else 0.0,
        "padding_share": sum(free) / (packs * row_length) if packs else 0.0,
        "padding_share_unpacked": (1 - sum(sample) / (len(sample) * row_length) if sample else 0.0),
    }


def trainer_drops(summary: Summary, max_length: int) -> dict[str, Any]:
    """Rows a trainer drops or fails on: nothing trained (TRL drops fully masked rows, and its
    assistant_only_loss raises on them), nothing trained once cut at `max_length`, longer than
    `max_length` (cut: the rest is never seen)."""
    after_cut = sum(
        1
        for first, end in zip(summary.firsts, summary.ends, strict=True)
        if end > 0 and first >= max_length
    )
    return {
        "max_length": max_length,
        "nothing_trained": summary.zero_trained_rows,
        "nothing_trained_after_cut": after_cut,
        "longer_than_max_length": sum(1 for n in summary.lengths if n > max_length),
    }


def bars(bins: list[dict[str, Any]], width: int = 300, height: int = 80) -> list[dict[str, Any]]:
    """SVG rectangles for a histogram (x, y, w, h in a width x height box), with labels.

    Example: bars([{"from": 0, "to": 1, "rows": 2}, {"from": 1, "to": 2, "rows": 1}], 100, 10)
             -> [{"x": 0.0, "y": 0.0, "w": 49.0, "h": 10.0, "label": "0 tokens: 2 rows"}, ...]
    """
    if not bins:
        return []
    most = max(b["rows"] for b in bins) or 1
    step = width / len(bins)
    out = []
    for k, b in enumerate(bins):
        h = height * b["rows"] / most
        out.append(
            {
                "x": round(k * step, 1),
                "y": round(height - h, 1),
                "w": round(max(step - 1, 0.5), 1),
                "h": round(h, 1),
                "label": f"{_span(b['from'], b['to'] - 1)} tokens: {b['rows']:,} rows",
            }
        )
    return out


def _span(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"
