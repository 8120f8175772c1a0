"""One conversation under several tokenizer+dialect pairs, in order: /api/compare and the
compare page.

Example: targets [smollm2/chatml, llama3/llama3] -> [(Rendered, [...]), (Rendered, [...])]

`align` lines the renderings up by message (one row each, plus what a template writes before the
first and after the last message) and names what differs between columns in words.

Design concession: targets render one after another in the caller's thread; a failing target
becomes an error in its slot (the same error every JSON surface shows) instead of failing the
rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.chat.tokens import Finding, MessageSpan, Rendering
from app.errors import LimitError, MaskscopeError
from app.service.render import Rendered, render_and_lint
from app.service.requests import CompareRequest
from app.settings import Settings

logger = logging.getLogger(__name__)

Outcome = tuple[Rendered, list[Finding]] | MaskscopeError


def compare(body: CompareRequest, settings: Settings) -> list[Outcome]:
    """Render `body`'s conversation under every target, in order."""
    if len(body.targets) > settings.max_compare_targets:
        raise LimitError(
            f"{len(body.targets)} targets asked for; the limit is "
            f"{settings.max_compare_targets} (max_compare_targets setting).",
            field="targets",
            setting="max_compare_targets",
        )
    return [_column(body, index, settings) for index in range(len(body.targets))]


def _column(body: CompareRequest, index: int, settings: Settings) -> Outcome:
    spec = body.target_spec(body.targets[index])
    try:
        return render_and_lint(body.messages, spec, settings)
    except MaskscopeError as exc:
        return exc
    except Exception as exc:  # one broken column must not take the others down
        logger.exception("compare target %d (%s/%s) failed", index, spec.tokenizer, spec.dialect)
        error = MaskscopeError(
            f"Rendering under {spec.tokenizer}/{spec.dialect} failed "
            f"unexpectedly ({type(exc).__name__}).",
            field=f"targets[{index}]",
        )
        error.status, error.code = 500, "internal_error"
        return error


# ---------- alignment by message ----------

QUOTE_LIMIT = 40
PLURAL = {"does": "do"}
WHITESPACE_NAMES = {" ": "a space", "\n": "a newline", "\t": "a tab", "\n\n": "two newlines"}


@dataclass
class AlignedCell:
    """One column's tokens for one row: their indices in order, counts, what differs.

    `notes` are (key, phrase) pairs: facts about this cell that another column may not share;
    `marked` the token indices that carry a difference (highlighted).
    """

    tokens: list[int] = field(default_factory=list)
    trained: int = 0
    notes: list[tuple[str, str]] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)
    differs: bool = False


@dataclass
class AlignedRow:
    """One message (or the text before the first / after the last one) across every column."""

    key: str  # "before", "0", "1", ..., "after"
    title: str
    cells: list[AlignedCell | None]  # None where the column failed to render
    differences: list[str] = field(default_factory=list)


def quote(text: str) -> str:
    """A short, readable rendition of template text for a sentence.

    Example: " " -> "a space"; "<s>\\n" -> "`<s>\\\\n`"
    """
    if text in WHITESPACE_NAMES:
        return WHITESPACE_NAMES[text]
    shown = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > QUOTE_LIMIT:
        shown = shown[: QUOTE_LIMIT - 1] + "…"
    return f"`{shown}`"


def row_of_tokens(rendering: Rendering) -> list[str]:
    """Each token's row: its message, or "before"/"after" for tokens outside every message; a
    token outside messages between two of them (Llama 2's `<s>` before each pair) opens the next.

    Example: llama2 [<s>, [INST]…(m1), …(m2), <s>, [INST]…(m3)] -> ["1", "1", …, "2", "3", "3", …]
    """
    keys: list[str | None] = [
        None if tok.message is None else str(tok.message) for tok in rendering.tokens
    ]
    following = "after"
    for i in range(len(keys) - 1, -1, -1):
        key = keys[i]
        if key is None:
            keys[i] = following
        else:
            following = key
    seen_message = False
    out: list[str] = []
    for key, tok in zip(keys, rendering.tokens, strict=True):
        seen_message = seen_message or tok.message is not None
        out.append("before" if not seen_message and tok.message is None else str(key))
    return out


def _char_ranges(spans: list[MessageSpan], message: int) -> tuple[list[range], list[range]]:
    """The content ranges and end-of-turn ranges of one message's spans."""
    content = [range(s.content_start, s.content_end) for s in spans if s.message == message]
    eot = [
        range(s.eot_start, s.eot_end)
        for s in spans
        if s.message == message and s.eot_start is not None and s.eot_end is not None
    ]
    return content, eot


def _trained_extras(
    rendering: Rendering, indices: list[int], message: int
) -> tuple[str, str, set[int]]:
    """Trained text of a message's tokens that is neither its content nor its end-of-turn
    marker, split into before and after the content, and the tokens that hold it."""
    content, eot = _char_ranges(rendering.spans, message)
    start = min((r.start for r in content), default=None)
    before: list[str] = []
    after: list[str] = []
    marked: set[int] = set()
    for i in indices:
        tok = rendering.tokens[i]
        if not tok.trained:
            continue
        extra = "".join(
            rendering.text[c]
            for c in range(tok.start, tok.end)
            if not any(c in r for r in content) and not any(c in r for r in eot)
        )
        if extra:
            marked.add(i)
            (before if start is not None and tok.start < start else after).append(extra)
    return "".join(before), "".join(after), marked


def _message_notes(rendering: Rendering, cell: AlignedCell, message: int) -> None:
    tokens = rendering.tokens
    if not cell.tokens:
        cell.notes.append(("absent", "writes nothing for this message"))
        return
    before, after, marked = _trained_extras(rendering, cell.tokens, message)
    if before:
        cell.notes.append((f"before:{before}", f"trains {quote(before)} before the content"))
    if after:
        cell.notes.append((f"after:{after}", f"trains {quote(after)} after the content"))
    cell.marked |= marked
    _, eot = _char_ranges(rendering.spans, message)
    closing = [i for i in cell.tokens if any(tokens[i].start in r for r in eot)]
    trains_turn = any(tokens[i].trained for i in cell.tokens)
    if closing and trains_turn and not any(tokens[i].trained for i in closing):
        text = "".join(tokens[i].text for i in closing)
        cell.notes.append(("eot-untrained", f"does not train its end of turn {quote(text)}"))
        cell.marked.update(closing)


def _edge_notes(rendering: Rendering, cell: AlignedCell) -> None:
    """What a template writes outside every message (BOS, a default system prompt, the
    generation prompt, a final EOS)."""
    tokens = [rendering.tokens[i] for i in cell.tokens]
    injected = [t for t in tokens if t.role == "system"]
    if injected:
        cell.notes.append(
            ("default-system", f"adds a default system prompt ({len(injected)} tokens)")
        )
    text = "".join(t.text for t in tokens if t.role != "system")
    cell.notes.append((f"writes:{text}", f"writes {quote(text)}" if text else "writes nothing"))
    if cell.trained:
        cell.notes.append(("trained", f"trains {cell.trained} of these tokens"))
        cell.marked.update(i for i in cell.tokens if rendering.tokens[i].trained)


def _label(targets: list[tuple[str, str]], index: int) -> str:
    tokenizer, dialect = targets[index]
    if [t for t, _ in targets].count(tokenizer) == 1:
        return tokenizer
    if targets.count((tokenizer, dialect)) == 1:
        return f"{tokenizer}/{dialect}"
    return f"column {index + 1} ({tokenizer}/{dialect})"


def _differences(row: AlignedRow, labels: list[str]) -> None:
    """Sentences for each note that some rendered columns have and others lack."""
    present = [(i, c) for i, c in enumerate(row.cells) if c is not None]
    if len(present) < 2:
        return
    holders: dict[str, tuple[str, list[int]]] = {}
    for i, cell in present:
        for key, phrase in cell.notes:
            holders.setdefault(key, (phrase, []))[1].append(i)
    for phrase, columns in holders.values():
        if len(columns) == len(present):
            continue
        names = [labels[i] for i in columns]
        if len(names) > 1:
            verb, _, rest = phrase.partition(" ")
            phrase = f"{PLURAL.get(verb, verb.removesuffix('s'))} {rest}".rstrip()
            names = [", ".join(names[:-1]) + " and " + names[-1]]
        row.differences.append(f"{names[0]} {phrase}")
        for i in columns:
            held = row.cells[i]
            if held is not None:
                held.differs = True


def _row_title(key: str, messages: list[dict[str, Any]], generation: bool) -> str:
    if key == "before":
        return "before the first message"
    if key == "after":
        return "generation prompt" if generation else "after the last message"
    role = messages[int(key)].get("role", "?") if int(key) < len(messages) else "?"
    return f"#{key} {role}"


def align(
    messages: list[dict[str, Any]],
    renderings: list[Rendering | None],
    targets: list[tuple[str, str]],
    generation: bool = False,
) -> list[AlignedRow]:
    """One row per message (plus the text before the first and after the last), each column's
    tokens of that row with their counts, and sentences naming what differs between columns.

    Example: [user, assistant] under chatml and llama2 -> rows "#0 user", "#1 assistant", with
             "llama2 trains a space after the content" on the assistant row
    """
    keys = ["before", *(str(i) for i in range(len(messages))), "after"]
    grouped: list[dict[str, AlignedCell] | None] = []
    for rendering in renderings:
        if rendering is None:
            grouped.append(None)
            continue
        cells = {key: AlignedCell() for key in keys}
        for tok, key in zip(rendering.tokens, row_of_tokens(rendering), strict=True):
            cell = cells.setdefault(key, AlignedCell())
            cell.tokens.append(tok.index)
            cell.trained += tok.trained
        grouped.append(cells)
    labels = [_label(targets, i) for i in range(len(targets))]
    rows = []
    for key in keys:
        row = AlignedRow(
            key,
            _row_title(key, messages, generation),
            [None if g is None else g[key] for g in grouped],
        )
        if key in ("before", "after") and not any(c and c.tokens for c in row.cells):
            continue
        for rendering, slot in zip(renderings, row.cells, strict=True):
            if rendering is None or slot is None:
                continue
            if key in ("before", "after"):
                _edge_notes(rendering, slot)
            else:
                _message_notes(rendering, slot, int(key))
        _differences(row, labels)
        rows.append(row)
    return rows
