"""Role attribution for any Jinja chat template, in one render.

The template is rendered once, chunk by chunk (`Template.generate`). The messages are handed to it
as a list whose iterator, and a loop context installed in the compiled template, record which
message the template is currently looping over; every chunk is attributed to that message (None
before and after the message loop: a BOS, a generation prompt). Each message's content, as the
template transformed it (stripped, trimmed...), is then located inside its own region, and the
end-of-turn token right after it is found. This is O(output) and exact for templates that emit a
turn while looping over that turn's message.

Templates that fold a message into another turn (the system prompt inside the first user turn,
Llama 2 and Gemma style) are handled by searching a message that owns no chunk between its
neighbours. Design concession: a message whose content cannot be found (a template that rewrites
it beyond strip-like changes) gets an empty content span and is reported; the caller turns that
into a finding instead of guessing.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.runtime import LoopContext

from app.chat.tokens import MessageSpan
from app.errors import MaskscopeError, TemplateError
from app.templating.limits import generate_limited
from app.templating.sandbox import GenerationRecorder, compile_template, recording

Region = tuple[int, int, int | None]
_HEADERISH = re.compile(r"start|header|begin|bos|<s>|\[INST\]", re.IGNORECASE)
_INF = float("inf")


class _Tracker:
    """Which message the template is emitting right now."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.index_of = {id(m): i for i, m in enumerate(messages)}
        self.current: int | None = None

    def visit(self, item: Any) -> None:
        index = self.index_of.get(id(item))
        if index is not None:
            self.current = index


_TRACKER: ContextVar[_Tracker | None] = ContextVar("message_tracker", default=None)


class _TrackingIterator:
    """Iterator over messages for plain `{% for %}` loops (no `loop` variable used)."""

    __slots__ = ("_it",)

    def __init__(self, items: list[Any]) -> None:
        self._it = list.__iter__(items)

    def __iter__(self) -> _TrackingIterator:
        return self

    def __next__(self) -> Any:
        tracker = _TRACKER.get()
        try:
            item = next(self._it)
        except StopIteration:
            if tracker is not None:
                tracker.current = None
            raise
        if tracker is not None:
            tracker.visit(item)
        return item


class TrackedMessages(list[Any]):
    """The `messages` list a template sees; iterating it (or a slice of it) tracks the message."""

    def __iter__(self) -> _TrackingIterator:
        return _TrackingIterator(self)

    def __getitem__(self, key: Any) -> Any:
        value = list.__getitem__(self, key)
        return TrackedMessages(value) if isinstance(key, slice) else value


class _TrackingLoopContext(LoopContext):
    """Loop context for `{% for %}` loops that use `loop`: tracks real advances, not peeks.

    `loop.last` peeks at the next item before the body ends, so the iterator alone would switch
    messages too early; here the switch happens when the loop hands out the item.
    """

    @staticmethod
    def _to_iterator(iterable: Any) -> Any:
        if isinstance(iterable, TrackedMessages):
            return list.__iter__(iterable)
        return iter(iterable)

    def __next__(self) -> tuple[Any, LoopContext]:
        tracker = _TRACKER.get()
        try:
            item, loop = super().__next__()
        except StopIteration:
            if (
                tracker is not None
                and tracker.current is not None
                and isinstance(self._iterable, TrackedMessages)
            ):
                tracker.current = None
            raise
        if tracker is not None:
            tracker.visit(item)
        return item, loop


def _install_tracking(template: jinja2.Template) -> None:
    # The compiled module looks LoopContext up in its own globals: swap it for this template only.
    namespace = template.root_render_func.__globals__
    if namespace.get("LoopContext") is not _TrackingLoopContext:
        namespace["LoopContext"] = _TrackingLoopContext


@dataclass
class Attributed:
    """A rendered template: the text, chunk regions by message, and `{% generation %}` spans."""

    text: str
    regions: list[Region]
    generation: list[tuple[int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "regions": [list(r) for r in self.regions],
            "generation": [list(g) for g in self.generation],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attributed:
        return cls(
            text=data["text"],
            regions=[tuple(r) for r in data["regions"]],
            generation=[tuple(g) for g in data["generation"]],
        )


def render_attributed(
    source: str,
    messages: list[dict[str, Any]],
    context: dict[str, Any],
    *,
    max_range: int,
    max_chars: int,
    limited: bool = True,
) -> Attributed:
    """Render `source` once and attribute every output chunk to a message index (or None).

    `limited=False` is for the templates Maskscope ships (see sandbox.build_environment)."""
    template = compile_template(source, max_range, max_chars, limited)
    _install_tracking(template)
    tracked = TrackedMessages(messages)
    tracker = _Tracker(messages)
    recorder = GenerationRecorder()
    chunks: list[str] = []
    regions: list[list[Any]] = []
    token = _TRACKER.set(tracker)
    try:
        with recording(recorder):
            for chunk in generate_limited(template, max_chars, {**context, "messages": tracked}):
                if not chunk:
                    continue
                start = recorder.produced
                recorder.produced = start + len(chunk)
                chunks.append(chunk)
                owner = tracker.current
                # Unowned chunks stay separate: one may turn out to hold a message (see below).
                if regions and owner is not None and regions[-1][2] == owner:
                    regions[-1][1] = recorder.produced
                else:
                    regions.append([start, recorder.produced, owner])
    except MaskscopeError:
        raise
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateError(f"The template failed{where}: {exc}", field="template") from None
    finally:
        _TRACKER.reset(token)
    return Attributed("".join(chunks), [tuple(r) for r in regions], recorder.spans)


def render_untrusted(
    source: str,
    messages: list[dict[str, Any]],
    context: dict[str, Any],
    max_range: int,
    max_chars: int,
) -> dict[str, Any]:
    """Worker entry point for pasted templates: JSON in, JSON out."""
    return render_attributed(
        source, messages, context, max_range=max_range, max_chars=max_chars
    ).to_json()


# -- locating each message inside the output ------------------------------------------------------

_TRANSFORMS = (
    str.strip,
    str.rstrip,
    str.lstrip,
    lambda c: c.strip("\n"),
    lambda c: c.lstrip("\n"),
    lambda c: c.rstrip("\n"),
    lambda c: c.strip(" "),
)


def _variants(content: str) -> Iterator[str]:
    """The content as templates commonly transform it, most faithful first (lazily)."""
    yield content
    seen = {content}
    for transform in _TRANSFORMS:
        variant = transform(content)
        if variant and variant not in seen:
            seen.add(variant)
            yield variant


class Locator:
    """Finds message contents and end-of-turn markers in a rendered text.

    `special_starts` / `special_ends` map the character offsets where special tokens start / end
    (from the tokenization) to the token's span, so contents can be told apart from markers.
    """

    def __init__(
        self, text: str, special_spans: Sequence[tuple[int, int, str]], eot_texts: frozenset[str]
    ) -> None:
        self.text = text
        self.special_at = {s: (s, e, t) for s, e, t in special_spans}
        self.special_ends = {e: (s, e, t) for s, e, t in special_spans}
        self.special_starts = sorted(self.special_at)
        self.eot_texts = eot_texts

    def _edge_score(self, pos: int, lo: int, hi: int, before: bool) -> int:
        if (before and pos <= lo) or (not before and pos >= hi):
            return 2
        ch = self.text[pos - 1] if before else self.text[pos]
        if ch.isspace():
            return 2
        if (before and pos in self.special_ends) or (not before and pos in self.special_at):
            return 2
        return 0 if ch.isalnum() else 1

    def find_content(self, content: str, lo: int, hi: int) -> tuple[int, int] | None:
        """The best occurrence of (a variant of) `content` within text[lo:hi].

        An occurrence scores by how cleanly it is delimited (whitespace, a special token or the
        window edge on each side: 2 points each). The most faithful variant with a clean match
        wins; otherwise the best score over all variants (earlier variants win ties, and within a
        variant the later occurrence does, since headers precede content).
        """
        text = self.text
        pos = text.find(content, lo, hi)
        if pos != -1 and text.find(content, pos + 1, hi) == -1:
            # The usual case: the content, as given, once in its window. Taken when cleanly
            # delimited, which is what the full search below would conclude too.
            end = pos + len(content)
            if self._edge_score(pos, lo, hi, True) + self._edge_score(end, lo, hi, False) == 4:
                return pos, end
        best: tuple[int, int] | None = None
        best_score = -1
        for variant in _variants(content):
            pos = self.text.find(variant, lo, hi)
            tries = 0
            found, found_score = None, -1
            while pos != -1 and tries < 256:
                end = pos + len(variant)
                score = self._edge_score(pos, lo, hi, True) + self._edge_score(end, lo, hi, False)
                if score >= found_score:
                    found, found_score = (pos, end), score
                pos = self.text.find(variant, pos + 1, hi)
                tries += 1
            if found_score == 4:
                return found
            if found_score > best_score:
                best, best_score = found, found_score
        return best

    def find_eot(self, pos: int, hi: int) -> tuple[int, int] | None:
        """The end-of-turn special token after `pos`, allowing only whitespace in between."""
        while pos < hi and pos not in self.special_at and self.text[pos].isspace():
            pos += 1
        hit = self.special_at.get(pos)
        if hit is not None and hit[2] in self.eot_texts:
            return hit[0], hit[1]
        return None

    def next_eot(self, pos: int, hi: int) -> tuple[int, int] | None:
        """The first end-of-turn special token starting in text[pos:hi]."""
        i = bisect_left(self.special_starts, pos)
        while i < len(self.special_starts) and self.special_starts[i] < hi:
            s, e, t = self.special_at[self.special_starts[i]]
            if t in self.eot_texts:
                return s, e
            i += 1
        return None

    def tool_call_start(self, name: str, lo: int, hi: int) -> int | None:
        """Where the rendering of a tool call to `name` begins: the start of the line holding the
        name, extended over a marker that opens it (Qwen's `<tool_call>`), never over a header
        marker or the role name."""
        p = self.text.find(name, lo, hi)
        if p == -1:
            return None
        while p > lo and self.text[p - 1] != "\n" and p not in self.special_ends:
            p -= 1
        while p > lo:
            q = p - 1 if self.text[p - 1] == "\n" else p
            hit = self.special_ends.get(q)
            if hit is None or _HEADERISH.search(hit[2]) or hit[2] in self.eot_texts:
                break
            p = hit[0]
        return p

    def empty_content_at(self, lo: int, hi: int) -> int:
        """Where an empty (or whitespace-only) content sits: before the turn's closing marker."""
        for pos in range(lo, hi):
            hit = self.special_at.get(pos)
            if hit is not None and hit[2] in self.eot_texts:
                return pos
        return hi


def locate_messages(
    att: Attributed,
    contents: Sequence[str],
    roles: Sequence[str],
    locator: Locator,
    tool_calls: Sequence[list[str]] | None = None,
) -> tuple[list[MessageSpan], list[int]]:
    """MessageSpans for every message, and the indices of messages whose content was not found."""
    own: dict[int, list[tuple[int, int]]] = {}
    for start, end, owner in att.regions:
        if owner is not None:
            own.setdefault(owner, []).append((start, end))
    spans: list[MessageSpan] = []
    missing: list[int] = []
    cursor = 0
    n = len(contents)
    windows = _window_ends(own, n, len(att.text))
    any_unowned = any(owner is None for _, _, owner in att.regions)
    for k in range(n):
        regions = own.get(k, [])
        window_hi = windows[k]
        found = None
        if regions:
            for lo, hi in regions:
                found = _find_in(locator, contents[k], max(lo, cursor), hi)
                if found:
                    break
        if found is None:
            found = _find_in(locator, contents[k], cursor, window_hi)
        if found is None:
            missing.append(k)
            at = max(cursor, regions[0][0]) if regions else cursor
            found = (at, at)
        c0, c1 = found
        eot = locator.find_eot(c1, window_hi)
        unowned = _claim_unowned(att.regions, c0, c1, k) if any_unowned else None
        if tool_calls and tool_calls[k]:
            lo = max(cursor, regions[0][0]) if regions else cursor
            c0, c1, eot = _widen_over_tool_calls(
                locator, tool_calls[k][0], (c0, c1), eot, lo, window_hi
            )
        if unowned is not None:
            regions = [*regions, unowned]
        e0, e1 = eot if eot else (None, None)
        cursor = e1 if e1 is not None else c1
        start, end = c0, cursor
        for r0, r1 in regions:
            start, end = min(start, r0), max(end, r1)
        spans.append(MessageSpan(k, roles[k], start, end, c0, c1, e0, e1))
    return spans, missing


def _widen_over_tool_calls(
    locator: Locator,
    name: str,
    content: tuple[int, int],
    eot: tuple[int, int] | None,
    lo: int,
    hi: int,
) -> tuple[int, int, tuple[int, int] | None]:
    """The calls are part of what the assistant writes: widen its content span over them, up
    to the end-of-turn marker that follows them."""
    c0, c1 = content
    start = locator.tool_call_start(name, lo, hi)
    if start is None:
        return c0, c1, eot
    eot = locator.next_eot(max(c1, start), hi)
    c0 = min(c0, start) if c1 > c0 else start
    return c0, (eot[0] if eot else max(c1, hi)), eot


def _claim_unowned(regions: list[Region], c0: int, c1: int, k: int) -> tuple[int, int] | None:
    """Give message k the unowned chunk holding its content (a system prompt written before the
    message loop, e.g. Qwen's `messages[0].content`)."""
    i = bisect_right(regions, (c0, _INF, None)) - 1 if c1 > c0 else -1
    if i < 0:
        return None
    start, end, owner = regions[i]
    if owner is None and start <= c0 and c1 <= end:
        regions[i] = (start, end, k)
        return start, end
    return None


def _find_in(locator: Locator, content: str, lo: int, hi: int) -> tuple[int, int] | None:
    if lo > hi:
        return None
    if not content or content.isspace():  # (no stripped copy of every content made)
        at = locator.empty_content_at(lo, hi)
        return (at, at) if lo < hi else None
    return locator.find_content(content, lo, hi)


def _window_ends(own: dict[int, list[tuple[int, int]]], n: int, text_len: int) -> list[int]:
    """Search limit for each message: up to the next message that owns output.

    A message with output of its own may find its end-of-turn token in the first chunk of the next
    one (templates that close a turn when opening the next); a message without output (folded
    into another turn) is searched up to the end of the next owner's output.
    """
    out = [text_len] * n
    nxt: int | None = None
    for k in range(n - 1, -1, -1):
        if nxt is not None:
            first, last = own[nxt][0], own[nxt][-1]
            out[k] = first[0] + min(first[1] - first[0], 64) if k in own else last[1]
        if k in own:
            nxt = k
    return out
