"""render(conversation, dialect, tokenizer, options) -> Rendering: the one source of truth.

Two ways to a layout (text + which characters belong to which message and part):
- a built-in dialect builds labelled segments and encodes them as its reference does;
- a Jinja template (`tokenizer`'s own or a `custom` one) is rendered once with role attribution
  (app.templating.attribution) and tokenized as a whole, as `apply_chat_template` does.
Then the mask policy picks trained character ranges and every token gets its message, role,
trained flag and character span.

Design concession: a pasted (`custom`) template runs in a worker process (killable, time-limited),
which costs a round trip; the tokenizer's own template renders in-process in the same sandbox.
Datasets go through `render_many`, which gives each row exactly what `render` gives but tokenizes
a batch of rows in one call and keeps tokens as columns (`TokenColumns`) rather than records.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.chat.encoding import (
    Encoded,
    TokenizerInfo,
    Unit,
    encode_later,
    encode_units,
    encode_whole,
    text_starts,
    tokenizer_info,
)
from app.chat.masking import MaskPolicy, trained_ranges
from app.chat.messages import Message, validate_conversation
from app.chat.tokens import IGNORE_INDEX, Finding, MessageSpan, Rendering, Token
from app.dialects.base import Segment, Specials
from app.dialects.registry import get_dialect
from app.errors import InputError, LimitError, MaskscopeError, TooLargeError
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


def render(
    conversation: Sequence[Message],
    dialect: str,
    tokenizer: Any,
    options: RenderOptions | None = None,
) -> Rendering:
    """Render, tokenize and mask one conversation.

    Example: render([Message("user", "Hi"), Message("assistant", "Hello")], "chatml", tok)
             -> Rendering(text="<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n...",
                          labels=[-100, ..., <id of "Hello">, <id of <|im_end|>>, -100])
    """
    options = options or RenderOptions()
    settings = options.settings or _default_settings()
    policy = _checked(conversation, options, settings)
    with collector_paused():
        if dialect in TEMPLATE_DIALECTS:
            from app.dialects.jinja import layout_from_template

            layout = layout_from_template(conversation, dialect, tokenizer, options, settings)
        else:
            layout = layout_from_dialect(conversation, dialect, tokenizer, options)
        return assemble(layout, policy, options, settings, dialect, tokenizer_info(tokenizer))


def render_many(
    conversations: Sequence[Sequence[Message]],
    dialect: str,
    tokenizer: Any,
    options: RenderOptions | None = None,
) -> list[Rendering | MaskscopeError]:
    """`render` of many conversations, each result equal to its own `render` (or the
    MaskscopeError it would raise): for Jinja dialects the texts are rendered first and
    tokenized in one batch, and tokens come as `TokenColumns`, which is how datasets are
    processed fast.

    Design concession: one bad row's error is returned in its place, not raised, so a caller
    streaming a dataset keeps going; other exceptions propagate.
    """
    return start_many(conversations, dialect, tokenizer, options)()


def start_many(
    conversations: Sequence[Sequence[Message]],
    dialect: str,
    tokenizer: Any,
    options: RenderOptions | None = None,
    pool: Executor | None = None,
) -> Callable[[], list[Rendering | MaskscopeError]]:
    """`render_many` in two steps, so a dataset reader can overlap batches: the templates are
    rendered now and their tokenization starts on `pool` (see `encode_later`); the returned
    function finishes the renderings. Built-in dialects are rendered when it is called.
    """
    options = options or RenderOptions()
    settings = options.settings or _default_settings()
    if dialect not in TEMPLATE_DIALECTS:

        def rows() -> list[Rendering | MaskscopeError]:
            with collector_paused():
                return [
                    _render_row(conversation, dialect, tokenizer, options, settings)
                    for conversation in conversations
                ]

        return rows
    from app.dialects.jinja import (
        attribute_conversation,
        layout_from_attributed,
        prepare_template,
    )

    template: Any
    try:
        template = prepare_template(dialect, tokenizer, options, settings)
    except MaskscopeError as exc:
        template = exc  # each row still reports its own input errors first, as render does
    staged: list[Any] = []
    with collector_paused():
        for conversation in conversations:
            try:
                policy = _checked(conversation, options, settings)
                if isinstance(template, MaskscopeError):
                    raise template
                staged.append((policy, attribute_conversation(conversation, template, settings)))
            except MaskscopeError as exc:
                staged.append(exc)
    texts = [item[1].text for item in staged if not isinstance(item, MaskscopeError)]
    encoding = encode_later(tokenizer, texts, pool)

    def finish() -> list[Rendering | MaskscopeError]:
        info = tokenizer_info(tokenizer)
        out: list[Rendering | MaskscopeError] = []
        with collector_paused():
            encoded = iter(encoding())
            for conversation, item in zip(conversations, staged, strict=True):
                if isinstance(item, MaskscopeError):
                    out.append(item)
                    continue
                policy, att = item
                try:
                    layout = layout_from_attributed(
                        att, conversation, tokenizer, template.tagged, next(encoded)
                    )
                    out.append(
                        assemble(layout, policy, options, settings, dialect, info, columns=True)
                    )
                except MaskscopeError as exc:
                    out.append(exc)
        return out

    return finish


def _render_row(
    conversation: Sequence[Message],
    dialect: str,
    tokenizer: Any,
    options: RenderOptions,
    settings: Settings,
) -> Rendering | MaskscopeError:
    """One built-in dialect row of `render_many`: `render` with token columns."""
    try:
        policy = _checked(conversation, options, settings)
        layout = layout_from_dialect(conversation, dialect, tokenizer, options)
        return assemble(
            layout, policy, options, settings, dialect, tokenizer_info(tokenizer), columns=True
        )
    except MaskscopeError as exc:
        return exc


def _checked(
    conversation: Sequence[Message], options: RenderOptions, settings: Settings
) -> MaskPolicy:
    """The mask policy, once the conversation and options are known to be acceptable."""
    policy = MaskPolicy(options.train_on, options.train_on_eot)
    validate_conversation(
        conversation, max_messages=settings.max_messages, max_chars=settings.max_chars
    )
    if options.max_length is not None and options.max_length < 1:
        raise InputError("max_length must be a positive number of tokens.", field="max_length")
    return policy


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while rendering.

    A render allocates tens of thousands of small acyclic objects (tokens, offsets), which
    trigger collections that walk every live object of the process (the loaded vocabularies
    included): a third of the render time for 8k tokens. Reference counting still frees
    everything; the collector resumes afterwards (only if it was running).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- built-in dialects ----------------------------------------------------------------------------


def layout_from_dialect(
    conversation: Sequence[Message], name: str, tokenizer: Any, options: RenderOptions
) -> Layout:
    """Lay out a built-in dialect and encode it segment by segment, like its reference."""
    dialect = get_dialect(name)
    info = tokenizer_info(tokenizer)
    specials = Specials(bos=info.bos, eos=info.eos or dialect.default_eos)
    segments = dialect.build(conversation, specials, options.add_generation_prompt)
    text, placed = _place(segments)
    units = _units(placed, info, dialect.split_text)
    encoded = encode_units(tokenizer, units)
    layout = Layout(
        text=text,
        encoded=encoded,
        spans=_spans(placed, conversation),
        pieces=[(s, e, seg.message, seg.part) for s, e, seg in placed if e > s],
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


def boundary_merge(tokenizer: Any, text: str, encoded: Encoded) -> Finding | None:
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


def differing_window(old: Sequence[Any], new: Sequence[Any]) -> tuple[int, int, int]:
    """Where two sequences differ, their common start and end left out: (start, end in old,
    end in new).

    Example: ([1, 2, 3, 4], [1, 9, 9, 4]) -> (1, 3, 3)
             ("Cafe\u0301 bar", "Caf\u00e9 bar") -> (3, 5, 4)
    """
    start = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
        min(len(old), len(new)),
    )
    back = 0
    while (
        back < min(len(old), len(new)) - start
        and old[len(old) - 1 - back] == new[len(new) - 1 - back]
    ):
        back += 1
    return start, len(old) - back, len(new) - back


# -- assembling the Rendering ---------------------------------------------------------------------


def assemble(
    layout: Layout,
    policy: MaskPolicy,
    options: RenderOptions,
    settings: Settings,
    dialect: str,
    info: TokenizerInfo,
    columns: bool = False,
) -> Rendering:
    """Mask, attribute every token, truncate, and check the token limit. `columns`: tokens as
    `TokenColumns` instead of a list of Token records."""
    text, enc = layout.text, layout.encoded
    keep = len(enc.ids)
    if options.max_length is not None:
        keep = min(keep, options.max_length)
    if keep > settings.max_tokens:
        raise LimitError(
            f"The rendering has {keep:,} tokens; the limit is "
            f"{settings.max_tokens:,} (max_tokens setting). Set max_length to cut it.",
            field="messages",
            setting="max_tokens",
        )
    ranges = trained_ranges(layout.spans, policy, len(text), layout.generation)
    roles = {s.message: s.role for s in layout.spans}
    table = token_columns(text, enc, layout.pieces, ranges, roles, info.special_ids, keep)
    tokens: Sequence[Token] = table if columns else list(table)
    cut = table.ends[-1] if table.ends else 0
    truncated = len(enc.ids) - keep
    return Rendering(
        text=text[:cut] if truncated else text,
        input_ids=table.ids,
        labels=table.labels,
        attention_mask=[1] * keep,
        tokens=tokens,  # type: ignore[arg-type]
        spans=_clip_spans(layout.spans, cut) if truncated else layout.spans,
        dialect=dialect,
        findings=[f for f in layout.findings if _in_range(f, keep)],
        truncated_tokens=truncated,
        meta=dict(layout.meta, full_text_chars=len(text)),
    )


def token_columns(
    text: str,
    enc: Encoded,
    pieces: list[Piece],
    ranges: list[tuple[int, int, int | None]],
    roles: dict[int, str],
    special: frozenset[int],
    keep: int,
) -> TokenColumns:
    """The first `keep` tokens as columns.

    trained: the raw offsets overlap a trained range (transformers' rule; a zero-width offset
    counts where it points); message: that range's message, else a content piece the token
    overlaps, else the piece where its text starts. Work is per range and per piece (bisection
    into the sorted token offsets, as transformers also assumes), not per token, because this
    runs on every render of every conversation.
    """
    ids, raw_starts, raw_ends = enc.ids, enc.starts, enc.ends
    if keep < len(ids):
        ids, raw_starts, raw_ends = ids[:keep], raw_starts[:keep], raw_ends[:keep]
    n = len(ids)
    # Ordered raw starts already are the text starts (all but the first, which is 0).
    if enc.ordered and n:
        starts = raw_starts if raw_starts[0] == 0 else [0, *raw_starts[1:]]
    else:
        starts = text_starts(raw_starts)
    tail = max(starts[-1], enc.starts[keep]) if n and keep < len(enc.ids) else len(text)
    ends = [*starts[1:], tail] if n else []
    owners: list[int | None] = [None] * n
    crossing: list[tuple[int, int]] = []
    for j, (p0, p1, owner, _part) in enumerate(pieces):
        i0, i1 = bisect_left(starts, p0), bisect_left(starts, p1)
        if i1 > i0:
            owners[i0:i1] = [owner] * (i1 - i0)
            if ends[i1 - 1] > p1:
                crossing.append((i1 - 1, j))
    for i, j in crossing:  # a token spanning several pieces goes to a content piece among them
        owners[i] = _content_owner(pieces, j, starts[i], ends[i], owners[i])
    trained = [False] * n
    labels = [IGNORE_INDEX] * n
    if ranges:
        first_reaching = _first_reaching(raw_starts, raw_ends, enc.ordered)
        for r0, r1, owner in ranges:
            i0, i1 = first_reaching(r0), bisect_left(raw_starts, r1)
            if i1 > i0:
                trained[i0:i1] = [True] * (i1 - i0)
                labels[i0:i1] = ids[i0:i1]
                if owner is not None:
                    owners[i0:i1] = [owner] * (i1 - i0)
    return TokenColumns(
        text, ids, list(map(roles.get, owners)), owners, special, trained, starts, ends, labels
    )


def _first_reaching(
    raw_starts: list[int], raw_ends: list[int], ordered: bool
) -> Callable[[int], int]:
    """`pos -> the first token whose raw offsets reach past pos`, where a zero-width token
    reaches one character past its start (so it is trained where it points).

    Ordered offsets (derived from token bytes) have non-decreasing starts and ends, so that token
    is the first whose end passes pos or whose start is at or past it: two bisections, nothing
    made per token. Other offsets get the per-token reach list.
    Example: starts [0, 0, 1], ends [1, 1, 3]: pos 0 -> 0, pos 1 -> 2
    """
    if ordered:
        return lambda pos: min(bisect_right(raw_ends, pos), bisect_left(raw_starts, pos))
    reach = list(map(max, raw_ends, map((1).__add__, raw_starts)))
    return lambda pos: bisect_right(reach, pos)


class TokenColumns(Sequence[Token]):
    """A rendering's tokens as aligned lists; a `Token` is made only when one is asked for.

    Design concession: datasets lint thousands of rows whose tokens nobody looks at, so their
    renderings carry these columns (lints read them directly); a single render still returns
    a plain list of Token records, which the views and the JSON answer expect.
    """

    __slots__ = (
        "_special",
        "_text",
        "ends",
        "ids",
        "labels",
        "messages",
        "roles",
        "starts",
        "trained",
    )
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        text: str,
        ids: list[int],
        roles: list[str | None],
        messages: list[int | None],
        special: frozenset[int],
        trained: list[bool],
        starts: list[int],
        ends: list[int],
        labels: list[int],
    ) -> None:
        self._text, self._special = text, special
        self.ids, self.roles, self.messages, self.trained = ids, roles, messages, trained
        self.starts, self.ends, self.labels = starts, ends, labels

    @property
    def texts(self) -> TokenTexts:
        return TokenTexts(self._text, self.starts, self.ends)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.ids)))]
        i = range(len(self.ids))[index]  # negative indices, and IndexError past the end
        return Token(
            i,
            self.ids[i],
            self._text[self.starts[i] : self.ends[i]],
            self.roles[i],
            self.messages[i],
            self.ids[i] in self._special,
            self.trained[i],
            self.starts[i],
            self.ends[i],
        )

    def __iter__(self) -> Iterator[Token]:
        texts = map(self._text.__getitem__, map(slice, self.starts, self.ends))
        return map(
            Token,
            range(len(self.ids)),
            self.ids,
            texts,
            self.roles,
            self.messages,
            map(self._special.__contains__, self.ids),
            self.trained,
            self.starts,
            self.ends,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


class TokenTexts(Sequence[str]):
    """Token texts cut from the rendered text when read (most rows never read them)."""

    __slots__ = ("_ends", "_starts", "_text")

    def __init__(self, text: str, starts: list[int], ends: list[int]) -> None:
        self._text, self._starts, self._ends = text, starts, ends

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._starts)))]
        return self._text[self._starts[index] : self._ends[index]]


def _content_owner(pieces: list[Piece], j: int, ps: int, pe: int, owner: int | None) -> int | None:
    """For a token spanning several pieces: the message of a content piece among them."""
    while j < len(pieces) and pieces[j][0] < pe:
        if pieces[j][3] == "content" and pieces[j][1] > ps:
            return pieces[j][2]
        j += 1
    return owner


def _clip_spans(spans: list[MessageSpan], cut: int) -> list[MessageSpan]:
    out = []
    for s in spans:
        eot_ok = s.eot_end is not None and s.eot_end <= cut
        out.append(
            MessageSpan(
                s.message,
                s.role,
                min(s.start, cut),
                min(s.end, cut),
                min(s.content_start, cut),
                min(s.content_end, cut),
                s.eot_start if eot_ok else None,
                s.eot_end if eot_ok else None,
            )
        )
    return out


def _in_range(finding: Finding, keep: int) -> bool:
    return not finding.tokens or min(finding.tokens) < keep


def check_template_size(source: str, settings: Settings) -> None:
    """TooLargeError (413) for a template over the max_template_bytes setting."""
    size = len(source.encode("utf-8"))
    if size > settings.max_template_bytes:
        raise TooLargeError(
            f"The template is {size:,} bytes; the limit is "
            f"{settings.max_template_bytes:,} (max_template_bytes setting).",
            field="template",
            setting="max_template_bytes",
        )
