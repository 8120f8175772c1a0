"""Built-in layouts: labelled segments encoded as the reference formatter encodes them.

A marker the tokenizer knows is one token; the text between two markers (or every text segment,
for references that encode piece by piece, like Meta's Llama 3 `ChatFormat`) is encoded alone.
Where tokenizing the whole string would give other ids, `boundary_merge` says so.

Example: [Segment("<|im_start|>", 0, "header", True), Segment("user\nHi", 0, "header")]
         -> units [Unit(0, "<|im_start|>", 1), Unit(12, "user\nHi")]

Design concession: the segments carry their own message and part, so no attribution is needed;
the cost is that a built-in is Python code, not a template a user can paste.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.chat.encoding import Encoded, TokenizerInfo, Unit, encode_units, encode_whole
from app.chat.layout import Layout, Piece, Segment
from app.chat.messages import Message
from app.chat.sequences import differing_window
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Finding, MessageSpan


def layout_segments(
    segments: Sequence[Segment],
    conversation: Sequence[Message],
    tokenizer: Tokenizer,
    info: TokenizerInfo,
    split_text: bool,
) -> Layout:
    """Place, encode and attribute `segments`; a boundary merge becomes a finding."""
    text, placed = _place(segments)
    encoded = encode_units(tokenizer, _units(placed, info, split_text))
    layout = Layout(
        text=text,
        encoded=encoded,
        spans=_spans(placed, conversation),
        pieces=[Piece(s, e, seg.message, seg.part) for s, e, seg in placed if e > s],
    )
    merge = boundary_merge(tokenizer, text, encoded)
    if merge is not None:
        layout.findings.append(merge)
    return layout


def _place(segments: Sequence[Segment]) -> tuple[str, list[tuple[int, int, Segment]]]:
    pos = 0
    placed = []
    for seg in segments:
        placed.append((pos, pos + len(seg.text), seg))
        pos += len(seg.text)
    return "".join(seg.text for seg in segments), placed


def _units(
    placed: list[tuple[int, int, Segment]], info: TokenizerInfo, split_text: bool
) -> list[Unit]:
    """Encode calls: a marker the tokenizer knows is one token; text runs between them (or each
    text segment, for references that encode piece by piece) are encoded alone."""
    units: list[Unit] = []
    run_start, run_text = 0, ""
    for start, _end, seg in placed:
        known = info.added.get(seg.text) if seg.marker else None
        if known is None and not split_text:
            if not run_text:
                run_start = start
            run_text += seg.text
            continue
        if run_text:
            units.append(Unit(run_start, run_text))
            run_text = ""
        units.append(Unit(start, seg.text, known[0] if known else None))
    if run_text:
        units.append(Unit(run_start, run_text))
    return units


def _spans(
    placed: list[tuple[int, int, Segment]], conversation: Sequence[Message]
) -> list[MessageSpan]:
    bounds: dict[int, dict[str, int]] = {}
    for start, end, seg in placed:
        if seg.message is None:
            continue
        b = bounds.setdefault(seg.message, {"start": start, "end": end})
        b["end"] = max(b["end"], end)
        b["start"] = min(b["start"], start)
        if seg.part == "content" and "c0" not in b:
            b["c0"], b["c1"] = start, end
        elif seg.part == "eot" and "e0" not in b:
            b["e0"], b["e1"] = start, end
    spans = []
    for k, m in enumerate(conversation):
        b = bounds.get(k, {"start": 0, "end": 0})
        c0 = b.get("c0", b["start"])
        spans.append(
            MessageSpan(
                k, m.role, b["start"], b["end"], c0, b.get("c1", c0), b.get("e0"), b.get("e1")
            )
        )
    return spans


def boundary_merge(tokenizer: Tokenizer, text: str, encoded: Encoded) -> Finding | None:
    """A finding when tokenizing the whole text differs from the segment-wise reference IDs."""
    whole = encode_whole(tokenizer, text).ids
    ref = encoded.ids
    if whole == ref:
        return None
    first, _, ref_end = differing_window(whole, ref)
    last = max(first, ref_end - 1)
    where = text[encoded.starts[min(first, len(ref) - 1)] :][:40] if ref else ""
    return Finding(
        code="boundary-merge",
        severity="warning",
        message=(
            f"Tokenizing the rendered text as one string gives {len(whole)} tokens where the "
            f"reference segment-by-segment encoding gives {len(ref)}; they first differ at "
            f"token {first} ({where!r}). A model trained on one and prompted with the other "
            "sees different tokens at this boundary."
        ),
        tokens=list(range(first, min(last + 1, first + 64))),
    )
