"""Where each message sits in a rendered template: its content and its end-of-turn marker.

After app.templating.tracking has attributed the output chunks to messages, each message's
content, as the template transformed it (stripped, trimmed...), is located inside its own region,
and the end-of-turn special token right after it is found. A message that owns no chunk (folded
into another turn, Llama 2 and Gemma style) is searched between its neighbours.

Design concession: a message whose content cannot be found (a template that rewrites it beyond
strip-like changes) gets an empty content span and is reported; the caller turns that into a
finding instead of guessing.

Example: for "<|im_start|>user\\nHi<|im_end|>\\n" with regions [(0, 30, 0)],
         locate_messages(att, ["Hi"], ["user"], Locator(text, specials, frozenset({"<|im_end|>"})))
         -> ([MessageSpan(0, "user", 0, 30, 17, 19, 19, 29)], [])
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from app.chat.tokens import MessageSpan
from app.templating.tracking import Attributed, Region

_HEADERISH = re.compile(r"start|header|begin|bos|<s>|\[INST\]", re.IGNORECASE)
_INF = float("inf")


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
    """The content as templates commonly transform it, most faithful first (lazily): stripped
    in some way, or JSON-encoded (`content | tojson`, gpt-oss's tool results)."""
    yield content
    seen = {content}
    for transform in _TRANSFORMS:
        variant = transform(content)
        if variant and variant not in seen:
            seen.add(variant)
            yield variant
    for ascii_only in (False, True):
        variant = json.dumps(content, ensure_ascii=ascii_only)
        if variant not in seen:
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
