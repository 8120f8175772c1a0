"""A dialect's role markers as token ids, found by rendering a probe conversation.

Design concession: markers are read off one rendered probe (header = the text between a turn's
start and its content, end-of-turn = the span's eot text), so they are exactly what the engine
writes for this dialect and tokenizer; dialects whose headers depend on the content (none of the
built-ins) would need more probes. Results are cached per (tokenizer, dialect, template).
"""

from __future__ import annotations

import contextlib
import re
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from operator import attrgetter
from typing import NamedTuple

from app.chat.columns import TokenColumns
from app.chat.messages import Message
from app.chat.spec import RenderSpec
from app.chat.tokenizer import Tokenizer
from app.chat.tokens import Rendering

PROBE = [
    Message("system", "Be brief."),
    Message("user", "Hi there."),
    Message("assistant", "Hello."),
    Message("user", "Name a colour."),
    Message("assistant", "Blue."),
]
PROBE_NO_SYSTEM = PROBE[1:]

_CACHE: dict[tuple[int, str, str | None], Markers | None] = {}


@dataclass(frozen=True)
class Markers:
    """Role headers and the end-of-turn marker of one dialect under one tokenizer.

    Example (chatml, qwen3): header_texts["assistant"] == "<|im_start|>assistant\\n",
    eot_text == "<|im_end|>", eot_ids == frozenset({151645})
    """

    header_texts: dict[str, str]
    headers: dict[str, tuple[int, ...]]
    eot_text: str | None
    eot_ids: frozenset[int]


def token_bounds(rendering: Rendering) -> tuple[list[int], list[int]]:
    """Every token's start and end character offsets, read without making Token records."""
    tokens = rendering.tokens
    if type(tokens) is TokenColumns:  # (no subclasses; isinstance with an ABC is slow)
        return tokens.starts, tokens.ends
    return list(map(_START, tokens)), list(map(_END, tokens))


_START, _END = attrgetter("start"), attrgetter("end")


class TokenIndex:
    """Token positions of a rendering by character offset, in O(log n) per question.

    Example: tokens at [0,3) [3,5) [5,9): overlapping(4, 6) -> range(1, 3); within(3, 9) -> 1..2
    """

    def __init__(self, rendering: Rendering) -> None:
        self.starts, self.ends = token_bounds(rendering)

    @classmethod
    def of_bounds(cls, starts: list[int], ends: list[int]) -> TokenIndex:
        """The index of tokens whose bounds are already known (`token_bounds`)."""
        index = cls.__new__(cls)
        index.starts, index.ends = starts, ends
        return index

    def overlapping(self, start: int, end: int) -> range:
        """Tokens that share at least one character with [start, end)."""
        return range(bisect_right(self.ends, start), bisect_left(self.starts, end))

    def within(self, start: int, end: int) -> range:
        """Tokens lying entirely inside [start, end)."""
        return range(bisect_left(self.starts, start), bisect_right(self.ends, end))


class LeadIn(NamedTuple):
    """The template text that introduces one message: from the end of the previous message
    (its end-of-turn, else its content) to this message's content, leading whitespace dropped.
    (A tuple: every dataset row makes a few.)

    Example (ChatML, 2nd message): LeadIn(message=1, role="assistant",
                                          text="<|im_start|>assistant\n", start=58)
    """

    message: int
    role: str
    text: str
    start: int

    @property
    def marker(self) -> str:
        """The lead-in without trailing whitespace, as people write response templates."""
        return self.text.rstrip()

    @property
    def rank(self) -> tuple[bool, int]:
        """Lower is a better sample of its role's marker: not the first message (which carries
        BOS, a folded system prompt...), then the shortest."""
        return self.message == 0, len(self.text)


def lead_ins(rendering: Rendering) -> list[LeadIn]:
    """Every message's lead-in ("[/INST] " in Llama 2, which attributes it to the user turn)."""
    return read_turns(rendering).leads


class Turns(NamedTuple):
    """What a rendering's spans say about its markup, read in one pass (`read_turns`): every
    lead-in, each role's best (`best_lead_ins`), the role markers (the best lead-ins without
    trailing whitespace), the last end-of-turn marker's text and the ids of every one."""

    leads: list[LeadIn]
    best: dict[str, LeadIn]
    header_texts: dict[str, str]
    eot_text: str | None
    eot_ids: frozenset[int]


def read_turns(rendering: Rendering, index: TokenIndex | None = None) -> Turns:
    """The rendering's `Turns`: one loop over its spans, since every dataset row asks.

    Example (ChatML, system + user + assistant): header_texts {"system": "<|im_start|>system",
             "user": "<|im_start|>user", "assistant": "<|im_start|>assistant"},
             eot_text "<|im_end|>"
    """
    starts, ends = token_bounds(rendering) if index is None else (index.starts, index.ends)
    text, ids_of = rendering.text, rendering.input_ids
    leads: list[LeadIn] = []
    best: dict[str, LeadIn] = {}
    ranks: dict[str, int] = {}  # `LeadIn.rank` of each best as one int: first message, then length
    eot_ids: set[int] = set()
    last = None
    previous_end = _injected_end(rendering)
    for span in rendering.spans:
        begin = span.content_start if span.gen_start is None else span.gen_start
        lead = text[previous_end:begin].lstrip()
        if lead:  # lstripped: empty unless it holds more than whitespace
            role = span.role
            item = _new_lead(LeadIn, (span.message, role, lead, begin - len(lead)))
            leads.append(item)
            rank = len(lead) + (_FIRST_MESSAGE if span.message == 0 else 0)
            if rank < ranks.get(role, _WORST):  # the first of equals is kept
                best[role], ranks[role] = item, rank
        eot_start, eot_end = span.eot_start, span.eot_end
        if eot_end is None:
            previous_end = span.content_end
            continue
        previous_end = eot_end
        if eot_start is not None:  # the ids of the tokens inside the marker (`index.within`)
            last = span
            eot_ids.update(ids_of[bisect_left(starts, eot_start) : bisect_right(ends, eot_end)])
    headers = {role: lead.text.rstrip() for role, lead in best.items()}
    eot_text = None if last is None else text[last.eot_start : last.eot_end]
    return _new_turns(Turns, (leads, best, headers, eot_text, frozenset(eot_ids)))


# A LeadIn (a Turns) made at C speed: NamedTuple's own __new__ is Python.
_new_lead = _new_turns = tuple.__new__
_FIRST_MESSAGE = 1 << 62  # ranks after every lead-in of a later message, as `rank` says
_WORST = 1 << 63


def _injected_end(rendering: Rendering) -> int:
    """Where a turn the template writes on its own before the first message ends (a default
    system prompt, Qwen's tools block: role system, no message); 0 when there is none. Its
    markup is not the first message's lead-in."""
    end, tokens = 0, rendering.tokens
    if type(tokens) is TokenColumns:  # read the columns: no Token record is made
        if not tokens.messages or tokens.messages[0] is not None:
            return 0  # the usual row: its first token belongs to its first message
        for message, role, tok_end in zip(tokens.messages, tokens.roles, tokens.ends, strict=True):
            if message is not None:
                break
            if role == "system":
                end = tok_end
        return end
    for tok in tokens:
        if tok.message is not None:
            break
        if tok.role == "system":
            end = tok.end
    return end


def best_lead_ins(leads: list[LeadIn]) -> dict[str, LeadIn]:
    """Each role's best lead-in (see `LeadIn.rank`), the first of equals.

    Example: leads of messages 0 and 2, both "user" -> {"user": <the lead-in of message 2>}
    """
    best: dict[str, LeadIn] = {}
    for lead in leads:
        known = best.get(lead.role)
        if known is None or lead.rank < known.rank:
            best[lead.role] = lead
    return best


def markers_from_rendering(
    rendering: Rendering, index: TokenIndex | None = None, turns: Turns | None = None
) -> Markers:
    """Role markers and the end-of-turn marker read off a rendering's spans.

    A role's marker is its best lead-in (`best_lead_ins`), so BOS, a folded system prompt or
    Qwen3's think block do not stick to it; `turns` is `read_turns(rendering)` where known.
    """
    index = index or TokenIndex(rendering)
    turns = turns or read_turns(rendering, index)
    ids_of = rendering.input_ids
    ids: dict[str, tuple[int, ...]] = {}
    for role, lead in turns.best.items():
        hit = index.within(lead.start, lead.start + len(turns.header_texts[role]))
        ids[role] = tuple(ids_of[hit.start : hit.stop])
    return Markers(dict(turns.header_texts), ids, turns.eot_text, turns.eot_ids)


def probe_markers(
    tokenizer: Tokenizer,
    dialect: str,
    spec: RenderSpec,
    renderer: Callable[[Sequence[Message], RenderSpec], Rendering],
) -> Markers | None:
    """The dialect's markers, from a rendered probe (None when the dialect renders nothing);
    `renderer` renders under that dialect and tokenizer."""
    key = (id(tokenizer), dialect, spec.template)
    if key in _CACHE:
        return _CACHE[key]
    probe_spec = replace(spec, train_on="assistant", add_generation_prompt=False, max_length=None)
    found = None
    for conversation in (PROBE, PROBE_NO_SYSTEM):
        with contextlib.suppress(Exception):
            found = markers_from_rendering(renderer(conversation, probe_spec))
            break
    _CACHE[key] = found
    return found


class IdSearch:
    """Finds runs of token ids in one row with `str.find`: the ids become the code points of a
    string once, so each search is one C call rather than a scan id by id in Python.

    Example: IdSearch([5, 1, 2, 5, 1]).find_all([5, 1]) -> [0, 3]
    """

    __slots__ = ("_ids", "_starts", "_text")
    REMEMBER_FROM = 2048  # tokens from which `first` remembers each needle's occurrences

    def __init__(self, ids: Sequence[int]) -> None:
        self._ids = ids if isinstance(ids, list) else list(ids)
        self._text = _as_text(self._ids)
        self._starts: dict[tuple[int, ...], list[int]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def text(self) -> str | None:
        """The ids as code points (None when one is no code point)."""
        return self._text

    def find(self, needle: Sequence[int], start: int = 0, stop: int | None = None) -> int:
        """Where `needle` first lies entirely inside ids[start:stop], or -1."""
        stop = len(self._ids) if stop is None else stop
        if self._text is not None:
            key = _as_text(needle)
            # An empty needle, or one no id of this row can spell (past U+10FFFF), is not found.
            return self._text.find(key, start, stop) if key else -1
        if not needle:
            return -1
        n, first, needle = len(needle), needle[0], list(needle)
        at = start - 1
        while True:
            try:
                at = self._ids.index(first, at + 1, stop)
            except ValueError:
                return -1
            if at + n <= stop and self._ids[at : at + n] == needle:
                return at

    def find_all(self, needle: Sequence[int]) -> list[int]:
        """Start indices of every (possibly overlapping) occurrence of `needle`."""
        out: list[int] = []
        text, key = self._text, _as_text(needle) if self._text is not None else None
        find: Callable[[int], int] = (
            partial(text.find, key) if text is not None and key else partial(self.find, needle)
        )
        at = find(0)
        while at != -1:
            out.append(at)
            at = find(at + 1)
        return out

    def first(
        self,
        needles: Iterable[Sequence[int]],
        start: int,
        stop: int | None = None,
    ) -> int:
        """Where the earliest of `needles` first lies inside ids[start:stop], or -1.

        In a long row each needle's occurrences are found once and bisected: a long
        conversation asks this once per turn, and a needle that never comes again (a system
        header) would otherwise be searched for to the end of the row every time. A short row
        (most dataset rows) is searched directly, which costs less there.
        Example: IdSearch([5, 1, 2, 5, 1]).first([(2,), (5, 1)], 1) -> 2
        """
        stop = len(self._ids) if stop is None else stop
        if len(self._ids) < self.REMEMBER_FROM:
            found = [at for needle in needles if (at := self.find(needle, start, stop)) != -1]
            return min(found, default=-1)
        best = -1
        for needle in needles:
            starts = self.starts_of(needle)
            k = bisect_left(starts, start)
            # The first occurrence from `start` on; when it ends past `stop`, every later one does.
            if k < len(starts) and starts[k] + len(needle) <= stop and not -1 < best <= starts[k]:
                best = starts[k]
        return best

    def starts_of(self, needle: Sequence[int]) -> list[int]:
        """`find_all(needle)`, remembered for this row."""
        key = tuple(needle)
        found = self._starts.get(key)
        if found is None:
            found = self._starts[key] = self.find_all(key)
        return found


def _as_text(ids: Sequence[int]) -> str | None:
    """The ids as code points, or None when one is no code point (past U+10FFFF, negative)."""
    if type(ids) is tuple and len(ids) <= 8:  # a marker's ids: the same few every row
        try:
            return _NEEDLES[ids]
        except KeyError:
            if len(_NEEDLES) > 4096:
                _NEEDLES.clear()
            text = _NEEDLES[ids] = _as_text(list(ids))
            return text
    try:
        # Each id as one UTF-32 code unit: the C-level equivalent of "".join(map(chr, ids))
        # (surrogatepass: ids in the surrogate range become those code points too).
        return array(_UNIT, ids).tobytes().decode(_UTF32, "surrogatepass")
    except (ValueError, TypeError, OverflowError):  # past U+10FFFF, negative, not an int
        return None


_UNIT = next(code for code in "IL" if array(code).itemsize == 4)
_UTF32 = "utf-32-le" if sys.byteorder == "little" else "utf-32-be"


_NEEDLES: dict[tuple[int, ...], str | None] = {}


def find_all(ids: Sequence[int], needle: Sequence[int]) -> list[int]:
    """Start indices of every occurrence of `needle` in `ids`.

    Example: find_all([5, 1, 2, 5, 1], [5, 1]) -> [0, 3]
    """
    return IdSearch(ids).find_all(needle)


def roles_by_markers(ids: Sequence[int], headers: Mapping[str, Sequence[int]]) -> list[str | None]:
    """Give each token the role of the last header seen before it (None before the first).

    Example: headers {"user": [9, 1], "assistant": [9, 2]}, ids [9, 1, 7, 9, 2, 8]
             -> ["user", "user", "user", "assistant", "assistant", "assistant"]
    """
    search = IdSearch(ids)
    starts = sorted((i, role) for role, needle in headers.items() for i in search.find_all(needle))
    roles: list[str | None] = [None] * len(ids)
    for k, (start, role) in enumerate(starts):
        stop = starts[k + 1][0] if k + 1 < len(starts) else len(ids)
        roles[start:stop] = [role] * (stop - start)
    return roles


def mask_by_markers(
    ids: Sequence[int] | IdSearch,
    response: Sequence[int],
    eot_ids: frozenset[int],
    stops: Sequence[Sequence[int]] = (),
) -> list[bool]:
    """Completion-only masking: train from after each response marker through the next
    end-of-turn id (inclusive), or up to the next other header when no end-of-turn comes first.

    Example: response [9, 2], eot {3}, ids [9, 1, 7, 3, 9, 2, 8, 3, 0]
             -> [F, F, F, F, F, F, T, T, F]
    """
    search = ids if isinstance(ids, IdSearch) else IdSearch(ids)
    return as_mask(len(search), marker_ranges(search, response, eot_ids, stops))


def marker_ranges(
    search: IdSearch,
    response: Sequence[int],
    eot_ids: frozenset[int],
    stops: Sequence[Sequence[int]] = (),
) -> list[tuple[int, int]]:
    """The token ranges `mask_by_markers` trains, one per response marker (maybe empty).

    Example: response [9, 2], eot {3}, ids [9, 1, 7, 3, 9, 2, 8, 3, 0] -> [(6, 8)]
    """
    pattern = _turns_pattern(search, response, eot_ids, stops)
    if pattern is not None:
        # group 1: the turn up to its end-of-turn id or the next header; group 2: that id.
        return [(m.end(), m.end(2) if m.start(2) != -1 else m.end(1)) for m in pattern]
    size = len(search)
    out: list[tuple[int, int]] = []
    eots = [(eot,) for eot in eot_ids]
    for start in search.find_all(response):
        i = start + len(response)
        limit = search.first(stops, i)
        limit = size if limit == -1 else limit
        eot = search.first(eots, i, limit)  # the first end-of-turn id closes the turn
        out.append((i, eot + 1 if eot != -1 else limit))  # the end-of-turn is itself trained
    return out


def _turns_pattern(
    search: IdSearch,
    response: Sequence[int],
    eot_ids: frozenset[int],
    stops: Sequence[Sequence[int]],
) -> Iterator[re.Match[str]] | None:
    """`marker_ranges`'s search as one regular expression over a short row's code points (the
    matches, or None where the general search must answer: a long row, where each needle's
    occurrences are remembered instead, or a marker that could overlap itself, whose
    overlapping occurrences a left-to-right match would skip).

    Example: response [9, 2], eot {3}, ids [9, 1, 7, 3, 9, 2, 8, 3, 0] -> one match, ending at 6
             (the marker), group 1 ending at 7, group 2 at 8
    """
    text = search.text
    if text is None or len(text) >= search.REMEMBER_FROM:
        return None
    ends = eot_ids if type(eot_ids) is frozenset else frozenset(eot_ids)
    key = (tuple(response), tuple(map(tuple, stops)), ends)
    pattern = _PATTERNS.get(key, _UNKNOWN)
    if pattern is _UNKNOWN:
        if len(_PATTERNS) > 1024:
            _PATTERNS.clear()
        pattern = _PATTERNS[key] = _compile_turns(*key)
    return None if pattern is None else pattern.finditer(text)


_UNKNOWN = re.compile("")
_PATTERNS: dict[
    tuple[tuple[int, ...], tuple[tuple[int, ...], ...], frozenset[int]], re.Pattern[str] | None
] = {}


def _compile_turns(
    response: tuple[int, ...], stops: tuple[tuple[int, ...], ...], eot_ids: frozenset[int]
) -> re.Pattern[str] | None:
    """The pattern `_turns_pattern` matches with: the marker, then (looking ahead, so turns may
    hold the next marker) every id up to the first end-of-turn id or the first id of another
    header, then that end-of-turn id unless a header starts there. Ids that can start no header
    and end no turn are skipped as one run (no header is tried there). Needles no id sequence
    of a row can spell (empty, or past U+10FFFF) are never found, so they are left out."""
    marker = _as_text(response)
    if not marker or any(marker[:k] == marker[-k:] for k in range(1, len(marker))):
        return None
    headers = sorted({t for stop in stops if (t := _as_text(stop))})
    ends = {t for eot in eot_ids if (t := _as_text((eot,)))}
    firsts = {h[0] for h in headers}
    no_header = f"(?!{'|'.join(map(re.escape, headers))})" if headers else ""
    # Nothing after the turn can fail (the closer is optional), so the greedy run is kept
    # as it is: nothing backtracks.
    branches = [f"[^{_chars(ends | firsts)}]+" if ends | firsts else ".+"]
    if firsts - ends:  # an id that may start a header: part of the turn unless one starts
        branches.append(f"{no_header}[{_chars(firsts - ends)}]")
    closer = f"({no_header}[{_chars(ends)}])?" if ends else "((?!))?"  # (?!): never matches
    return re.compile(f"{re.escape(marker)}(?=((?:{'|'.join(branches)})*){closer})", re.DOTALL)


def _chars(chars: set[str]) -> str:
    """`chars` as the inside of a character class."""
    return "".join(map(re.escape, sorted(chars)))


def as_mask(size: int, ranges: Iterable[tuple[int, int]]) -> list[bool]:
    """`size` flags, True inside any of `ranges` (empty or reversed ranges mark nothing).

    Example: as_mask(5, [(1, 3), (2, 4)]) -> [F, T, T, T, F]
    """
    mask = [False] * size
    for a, b in ranges:
        b = min(b, size)
        if b > a:
            mask[a:b] = [True] * (b - a)
    return mask


def merged_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The positions `ranges` cover, as sorted disjoint ranges: two range lists mark the
    same mask exactly when their merged forms are equal (for ranges inside the mask).

    Example: merged_ranges([(4, 6), (1, 3), (3, 4), (7, 7)]) -> [(1, 6)]
    """
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
