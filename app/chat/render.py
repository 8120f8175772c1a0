"""render(conversation, dialect, tokenizer, options) -> Rendering: the one source of truth.

Two ways to a layout (text + which characters belong to which message and part):
- a built-in dialect builds labelled segments and encodes them as its reference does;
- a Jinja template (`tokenizer`'s own or a `custom` one) is rendered once with role attribution
  (app.templating.attribution) and tokenized as a whole, as `apply_chat_template` does.
Then the mask policy picks trained character ranges and every token gets its message, role,
trained flag and character span.

Design concession: a pasted (`custom`) template runs in a worker process (killable, time-limited),
which costs a round trip; the tokenizer's own template renders in-process in the same sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.chat.encoding import (
    Encoded,
    TokenizerInfo,
    Unit,
    encode_units,
    encode_whole,
    partition,
    tokenizer_info,
)
from app.chat.masking import MaskPolicy, mark_tokens, trained_ranges
from app.chat.messages import Message, validate_conversation
from app.chat.tokens import IGNORE_INDEX, Finding, MessageSpan, Rendering, Token
from app.dialects.base import Segment, Specials
from app.dialects.registry import get_dialect
from app.errors import InputError, LimitError, TooLargeError
from app.settings import Settings

Piece = tuple[int, int, int | None, str]  # start, end, message, part
TEMPLATE_DIALECTS = ("tokenizer", "custom")


@dataclass(frozen=True)
class RenderOptions:
    """How to render and mask. `template` is the Jinja source for dialect="custom"."""

    train_on: str = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = None
    template: str | None = None
    settings: Settings | None = field(default=None, compare=False)


@dataclass
class Layout:
    """A rendered text before masking: tokens, message spans and the owner of every character."""

    text: str
    encoded: Encoded
    spans: list[MessageSpan]
    pieces: list[Piece]
    generation: list[tuple[int, int]] | None = None
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _default_settings() -> Settings:
    return Settings.from_env()


def render(conversation: Sequence[Message], dialect: str, tokenizer: Any,
           options: RenderOptions | None = None) -> Rendering:
    """Render, tokenize and mask one conversation.

    Example: render([Message("user", "Hi"), Message("assistant", "Hello")], "chatml", tok)
             -> Rendering(text="<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n...",
                          labels=[-100, ..., <id of "Hello">, <id of <|im_end|>>, -100])
    """
    options = options or RenderOptions()
    settings = options.settings or _default_settings()
    policy = MaskPolicy(options.train_on, options.train_on_eot)
    validate_conversation(conversation, max_messages=settings.max_messages,
                          max_chars=settings.max_chars)
    if options.max_length is not None and options.max_length < 1:
        raise InputError("max_length must be a positive number of tokens.", field="max_length")
    if dialect in TEMPLATE_DIALECTS:
        from app.dialects.jinja import layout_from_template

        layout = layout_from_template(conversation, dialect, tokenizer, options, settings)
    else:
        layout = layout_from_dialect(conversation, dialect, tokenizer, options)
    return assemble(layout, policy, options, settings, dialect, tokenizer_info(tokenizer))


# -- built-in dialects ----------------------------------------------------------------------------

def layout_from_dialect(conversation: Sequence[Message], name: str, tokenizer: Any,
                        options: RenderOptions) -> Layout:
    """Lay out a built-in dialect and encode it segment by segment, like its reference."""
    dialect = get_dialect(name)
    info = tokenizer_info(tokenizer)
    specials = Specials(bos=info.bos, eos=info.eos or dialect.default_eos)
    segments = dialect.build(conversation, specials, options.add_generation_prompt)
    text, placed = _place(segments)
    units = _units(placed, info, dialect.split_text)
    encoded = encode_units(tokenizer, units)
    layout = Layout(text=text, encoded=encoded, spans=_spans(placed, conversation),
                    pieces=[(s, e, seg.message, seg.part) for s, e, seg in placed if e > s])
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


def _units(placed: list[tuple[int, int, Segment]], info: TokenizerInfo,
           split_text: bool) -> list[Unit]:
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


def _spans(placed: list[tuple[int, int, Segment]],
           conversation: Sequence[Message]) -> list[MessageSpan]:
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
        spans.append(MessageSpan(k, m.role, b["start"], b["end"], c0, b.get("c1", c0),
                                 b.get("e0"), b.get("e1")))
    return spans


def boundary_merge(tokenizer: Any, text: str, encoded: Encoded) -> Finding | None:
    """A finding when tokenizing the whole text differs from the segment-wise reference IDs."""
    whole = encode_whole(tokenizer, text).ids
    ref = encoded.ids
    if whole == ref:
        return None
    first = next((i for i, (a, b) in enumerate(zip(whole, ref, strict=False)) if a != b),
                 min(len(whole), len(ref)))
    back = 0
    while (back < min(len(whole), len(ref)) - first
           and whole[len(whole) - 1 - back] == ref[len(ref) - 1 - back]):
        back += 1
    last = max(first, len(ref) - back - 1)
    where = text[encoded.offsets[min(first, len(ref) - 1)][0]:][:40] if ref else ""
    return Finding(
        code="boundary-merge", severity="warning",
        message=(f"Tokenizing the rendered text as one string gives {len(whole)} tokens where the "
                 f"reference segment-by-segment encoding gives {len(ref)}; they first differ at "
                 f"token {first} ({where!r}). A model trained on one and prompted with the other "
                 "sees different tokens at this boundary."),
        tokens=list(range(first, min(last + 1, first + 64))))


# -- assembling the Rendering ---------------------------------------------------------------------

def assemble(layout: Layout, policy: MaskPolicy, options: RenderOptions, settings: Settings,
             dialect: str, info: TokenizerInfo) -> Rendering:
    """Mask, attribute every token, truncate, and check the token limit."""
    text, enc = layout.text, layout.encoded
    ranges = trained_ranges(layout.spans, policy, len(text), layout.generation)
    marks = mark_tokens(enc.offsets, ranges)
    spans = partition(enc.offsets, len(text))
    owners = _owners(spans, layout.pieces, marks, ranges)
    keep = len(enc.ids)
    if options.max_length is not None:
        keep = min(keep, options.max_length)
    if keep > settings.max_tokens:
        raise LimitError(f"The rendering has {keep:,} tokens; the limit is "
                         f"{settings.max_tokens:,} (max_tokens setting). Set max_length to cut it.",
                         field="messages", setting="max_tokens")
    roles = {s.message: s.role for s in layout.spans}
    special = info.special_ids
    tokens = []
    for i in range(keep):
        s, e = spans[i]
        owner = owners[i]
        tokens.append(Token(i, enc.ids[i], text[s:e], roles.get(owner) if owner is not None
                            else None, owner, enc.ids[i] in special, marks[i] is not None, s, e))
    labels = [t.id if t.trained else IGNORE_INDEX for t in tokens]
    cut = tokens[-1].end if tokens else 0
    truncated = len(enc.ids) - keep
    return Rendering(
        text=text[:cut] if truncated else text, input_ids=enc.ids[:keep], labels=labels,
        attention_mask=[1] * keep, tokens=tokens,
        spans=_clip_spans(layout.spans, cut) if truncated else layout.spans,
        dialect=dialect, findings=[f for f in layout.findings if _in_range(f, keep)],
        truncated_tokens=truncated, meta=dict(layout.meta, full_text_chars=len(text)))


def _owners(spans: list[tuple[int, int]], pieces: list[Piece], marks: list[int | None],
            ranges: list[tuple[int, int, int | None]]) -> list[int | None]:
    """The message of each token: the trained range it overlaps, else a content piece it
    overlaps, else the piece where it starts."""
    owners: list[int | None] = []
    j = 0
    n = len(pieces)
    for (s, e), mark in zip(spans, marks, strict=True):
        while j + 1 < n and pieces[j][1] <= s:
            j += 1
        owner = pieces[j][2] if n else None
        if mark is not None and ranges[mark][2] is not None:
            owner = ranges[mark][2]
        else:
            k = j
            while k < n and pieces[k][0] < e:
                if pieces[k][3] == "content" and pieces[k][1] > s:
                    owner = pieces[k][2]
                    break
                k += 1
        owners.append(owner)
    return owners


def _clip_spans(spans: list[MessageSpan], cut: int) -> list[MessageSpan]:
    out = []
    for s in spans:
        eot_ok = s.eot_end is not None and s.eot_end <= cut
        out.append(MessageSpan(s.message, s.role, min(s.start, cut), min(s.end, cut),
                               min(s.content_start, cut), min(s.content_end, cut),
                               s.eot_start if eot_ok else None, s.eot_end if eot_ok else None))
    return out


def _in_range(finding: Finding, keep: int) -> bool:
    return not finding.tokens or min(finding.tokens) < keep


def check_template_size(source: str, settings: Settings) -> None:
    """TooLargeError (413) for a template over the max_template_bytes setting."""
    size = len(source.encode("utf-8"))
    if size > settings.max_template_bytes:
        raise TooLargeError(f"The template is {size:,} bytes; the limit is "
                            f"{settings.max_template_bytes:,} (max_template_bytes setting).",
                            field="template", setting="max_template_bytes")
