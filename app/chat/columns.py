"""A rendering's tokens as columns: who owns each token, which are trained, their spans.

`token_columns` turns a Layout's encoding, pieces and trained character ranges into aligned
lists; `TokenColumns` serves them as a sequence of `Token` records made only when read, and
writes them as the API's per-token JSON objects without making one (`to_json_bytes`).

Example: ids [1, 2], pieces [Piece(0, 3, 0, "content")], ranges [(0, 3, 0)]
         -> TokenColumns(ids=[1, 2], messages=[0, 0], trained=[True, True], labels=[1, 2])

Design concession: work is per range and per piece (bisection into the sorted token offsets),
never per token, because this runs on every render of every dataset row.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import orjson

from app.chat.encoding import LONG_RENDERING, Encoded, text_starts
from app.chat.layout import Piece
from app.chat.painting import Codes, content_owner, painted
from app.chat.tokens import IGNORE_INDEX, Token


# Long: one pass per piece and per range over shared lists; splitting it would pass eight lists
# between helpers on every dataset row for no gain in clarity.
def token_columns(
    text: str,
    enc: Encoded,
    pieces: list[Piece],
    ranges: list[tuple[int, int, int | None]],
    roles: dict[int | None, str],  # None (no message) is never a key: its role is None
    special: frozenset[int],
    keep: int,
    parts: Sequence[tuple[int, int, str]] = (),
    unowned_roles: Sequence[tuple[int, int, str]] = (),
    tool_holes: Sequence[tuple[int, int]] = (),
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
    if n >= LONG_RENDERING:
        made = painted(text, enc, keep, pieces, ranges, roles, parts, unowned_roles, tool_holes)
        if made is not None:
            return TokenColumns(
                text,
                ids,
                made.roles,
                made.messages,
                special,
                made.trained,
                made.starts,
                made.ends,
                made.labels,
                made.parts,
                made.codes,
            )
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
        owners[i] = content_owner(pieces, j, starts[i], ends[i], owners[i])
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
    for h0, h1 in tool_holes:  # a tool result inside an assistant turn: the tool's, untrained
        for i in range(bisect_left(starts, h0), bisect_left(starts, h1)):
            if not trained[i]:
                owners[i] = None
    role_column = list(map(roles.get, owners))
    for h0, h1 in tool_holes:
        for i in range(bisect_left(starts, h0), bisect_left(starts, h1)):
            if owners[i] is None:
                role_column[i] = "tool"
    for r0, r1, role in unowned_roles:  # text of no message with a role (an injected system)
        for i in range(bisect_left(starts, r0), bisect_left(starts, r1)):
            if owners[i] is None:
                role_column[i] = role
    part_column = ["markup"] * n
    for r0, r1, part in reversed(parts):  # the earliest part wins a token two overlap
        i0, i1 = bisect_right(ends, r0), bisect_left(starts, r1)
        if i1 > i0:
            part_column[i0:i1] = [part] * (i1 - i0)
    return TokenColumns(
        text,
        ids,
        role_column,
        owners,
        special,
        trained,
        starts,
        ends,
        labels,
        part_column,
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


# Long: one sequence over nine parallel lists, with the three shapes it is written in (records,
# per-token JSON, columns) and the token kinds they share; apart, they would pass the lists around.
class TokenColumns(Sequence[Token]):
    """A rendering's tokens as aligned lists; a `Token` is made only when one is asked for.

    Design concession: datasets lint thousands of rows whose tokens nobody looks at, so their
    renderings carry these columns (lints read them directly); a single render still returns
    a plain list of Token records, which the views and the JSON answer expect.
    """

    __slots__ = (
        "_codes",
        "_kinds",
        "_special",
        "_text",
        "ends",
        "ids",
        "labels",
        "messages",
        "parts",
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
        parts: list[str],
        codes: Codes | None = None,
    ) -> None:
        """`codes`: the kinds' parts as arrays, where the columns were painted with numpy."""
        self._text, self._special, self._codes = text, special, codes
        self.ids, self.roles, self.messages, self.trained = ids, roles, messages, trained
        self.starts, self.ends, self.labels, self.parts = starts, ends, labels, parts
        self._kinds: tuple[bytes, list[Kind]] | tuple[()] | None = None

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
            self.parts[i],
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
            self.parts,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def to_json(self) -> list[dict[str, Any]]:
        """Every token as `Token.to_json` gives it, made straight from the columns (no Token
        record in between: the JSON answer of a long conversation is built per token once)."""
        texts = map(self._text.__getitem__, map(slice, self.starts, self.ends))
        special = map(self._special.__contains__, self.ids)
        return [
            {
                "id": i,
                "text": text,
                "role": role,
                "message": message,
                "special": sp,
                "trained": trained,
                "start": start,
                "end": end,
                "part": part,
            }
            for i, text, role, message, sp, trained, start, end, part in zip(
                self.ids,
                texts,
                self.roles,
                self.messages,
                special,
                self.trained,
                self.starts,
                self.ends,
                self.parts,
                strict=True,
            )
        ]

    def to_json_bytes(
        self, head: bytes | memoryview = b"", tail: bytes | memoryview = b""
    ) -> bytes | None:
        """`head + orjson.dumps(self.to_json()) + tail`, byte for byte, without a dict per token
        (nor a copy of megabytes to add head and tail); None where this way does not apply
        (token texts that are not consecutive slices of the text, or a text orjson cannot
        write: the caller then writes `to_json()`). How: `_token_objects`.
        Example: ids [1, 2], texts ["Hi", "!"]
                 -> b'[{"id":1,"text":"Hi","role":...},{"id":2,"text":"!","role":...}]'
        """
        return _token_objects(self, head, tail)

    def kinds(self) -> tuple[bytes, list[Kind]] | None:
        """Each token's kind, (role, special, trained, part), as one byte that numbers it, and
        the kinds in the order they first occur (about ten in a conversation); None past 256
        kinds. Made once: the columns are not changed after they are made.

        Example: roles ["user", "user", None], trained [False, False, True], ...
                 -> (b"\x00\x00\x01", [("user", False, False, "content"), (None, ...)])
        """
        made = self._kinds
        if made is None:
            made = _kinds_of_codes(self._codes, self._special) if self._codes else _kinds_of(self)
            made = self._kinds = made or ()
        return made or None

    def role_counts(self) -> dict[str | None, int]:
        """How many tokens each role has, in the order the roles first occur."""
        made = self.kinds()
        if made is None:
            return dict(Counter(self.roles))
        kind, keys = made
        counts: dict[str | None, int] = {}
        for number, key in enumerate(keys):
            counts[key[0]] = counts.get(key[0], 0) + kind.count(number)
        return counts

    def columns_json(self) -> dict[str, Any]:
        """The tokens as parallel arrays (the API's `"format": "columns"`): roles and parts as
        indices into `names`, so a long conversation costs a few bytes per token.

        Example: ids [1, 2], roles ["user", None] -> {"ids": [1, 2], "roles": [0, 1], ...,
                 "names": {"roles": ["user", None], "parts": [...]}}
        """
        made = self.kinds()
        if made is None:
            role_names = list(dict.fromkeys(self.roles))
            part_names = list(dict.fromkeys(self.parts))
            role_at = {name: k for k, name in enumerate(role_names)}
            part_at = {name: k for k, name in enumerate(part_names)}
            roles = list(map(role_at.__getitem__, self.roles))
            parts = list(map(part_at.__getitem__, self.parts))
        else:  # the same first-seen order; each token's number read off its kind's, in C
            kind, keys = made
            role_names = list(dict.fromkeys(key[0] for key in keys))
            part_names = list(dict.fromkeys(key[3] for key in keys))
            roles = list(kind.translate(_table(role_names.index(key[0]) for key in keys)))
            parts = list(kind.translate(_table(part_names.index(key[3]) for key in keys)))
        return {
            "ids": self.ids,
            "texts": list(map(self._text.__getitem__, map(slice, self.starts, self.ends))),
            "roles": roles,
            "messages": self.messages,
            "parts": parts,
            "trained": self.trained,
            "starts": self.starts,
            "ends": self.ends,
            "special": sorted(self._special.intersection(self.ids)),
            "names": {"roles": role_names, "parts": part_names},
        }


def _token_objects(
    cols: TokenColumns, head: bytes | memoryview, tail: bytes | memoryview
) -> bytes | None:
    """TokenColumns.to_json_bytes. The escaped text is written once, with a marker byte where
    each token starts that numbers the kind (role, flags, part) of the token before; each kind's
    marker becomes the glue between two texts with those written in (`","role":"user",
    "message":%s,...},{"id":%d,"text":"`), and one `%` over the ids, messages and offsets fills
    in the rest in C. More than 32 kinds of token (there are about ten) give None. Few large
    copies: each one of megabytes costs page faults as much as the copying."""
    ids, starts, ends = cols.ids, cols.starts, cols.ends
    if not ids or ends[:-1] != starts[1:]:
        return None
    made = cols.kinds()
    if made is None or len(made[1]) > _MARKERS:
        return None
    kind, kinds = made
    glues = [_KIND_GLUE % tuple(map(_format_json, key)) for key in kinds]
    # The template: the escaped text with the kind of the token before at each token start.
    template = _marked_text(
        cols._text,
        starts[0],
        starts[1:],
        ends[-1],
        kind[:-1],
        b"%s[" + _NEXT_TOKEN[1:],
        glues[kind[-1]] + b"]%s",
    )
    if template is None:
        return None
    # Each kind's marker becomes its glue; the rarest first, so the copies start small.
    for number in sorted(range(len(glues)), key=lambda k: kind.count(k)):
        template = template.replace(bytes((number,)), glues[number] + _NEXT_TOKEN)
    fields: list[Any] = [None] * (4 * len(ids) + 2)  # filled a column at a time, in C
    fields[0], fields[-1] = head, tail
    fields[1:-1:4], fields[3:-1:4], fields[4:-1:4] = ids, starts, ends
    try:
        fields[2:-1:4] = orjson.dumps(cols.messages)[1:-1].split(b",")
        return template % tuple(fields)
    except (TypeError, ValueError):  # a value that is no int or None: the dicts' way says so
        return None


# A token's kind: its role, whether it is special, whether it is trained, its part.
Kind = tuple[str | None, bool, bool, str]


def _kinds_of(cols: TokenColumns) -> tuple[bytes, list[Kind]] | None:
    """TokenColumns.kinds."""
    kinds = _Kinds()  # kind -> its number, in first-seen order
    special = map(cols._special.__contains__, cols.ids)
    keys = zip(cols.roles, special, cols.trained, cols.parts, strict=True)
    try:
        kind = bytes(map(kinds.__getitem__, keys))
    except ValueError:  # more than 256 kinds (or columns of different lengths)
        return None
    return kind, list(kinds)


def _kinds_of_codes(codes: Codes, special: frozenset[int]) -> tuple[bytes, list[Kind]] | None:
    """`_kinds_of` from painted columns: each token's kind as one number made of its role, flags
    and part; the kinds numbered in the order they first occur, found one kind at a time (there
    are about ten) rather than by sorting the tokens."""
    parts = len(codes.part_names)
    flags = np.isin(codes.ids, np.fromiter(special, np.int64, len(special))).astype(np.int64)
    flags += 2 * codes.trained
    kind = (codes.roles * 4 + flags) * parts + codes.parts
    present = np.flatnonzero(np.bincount(kind))
    if len(present) > 256:
        return None
    present = present[np.argsort([int(np.argmax(kind == k)) for k in present], kind="stable")]
    number = np.zeros(int(present.max()) + 1, dtype=np.uint8)
    number[present] = np.arange(len(present), dtype=np.uint8)
    keys: list[Kind] = []
    for k in present.tolist():
        role, rest = divmod(k, 4 * parts)
        flag, part = divmod(rest, parts)
        role_name, part_name = codes.role_names[role], codes.part_names[part]
        keys.append((role_name, bool(flag & 1), bool(flag & 2), part_name))
    return number[kind].tobytes(), keys


def _table(numbers: Iterator[int]) -> bytes:
    """A bytes.translate table sending byte k to the k-th of `numbers` (the rest to 0)."""
    return bytes(numbers).ljust(256, b"\0")


class _Kinds(dict[tuple[Any, ...], int]):
    """Numbers keys in the order they are first looked up (the lookup stays dict's own, in C)."""

    def __missing__(self, key: tuple[Any, ...]) -> int:
        number = self[key] = len(self)
        return number


def _format_json(value: Any) -> bytes:
    """`value` as JSON, fit to sit in a %-format."""
    return orjson.dumps(value).replace(b"%", b"%%")


# What follows a token's text up to the next token's text (Token.to_json's keys, in its order),
# for one kind of token: its role, flags and part written in, message and offsets left to fill.
_KIND_GLUE = b'","role":%s,"message":%%s,"special":%s,"trained":%s,"start":%%d,"end":%%d,"part":%s}'
_NEXT_TOKEN = b',{"id":%d,"text":"'
# The marker bytes: the control characters, which orjson always escapes, so none is in the text.
_MARKERS = 0x20
# Bytes that orjson writes for each ASCII character inside a string: two for the short escapes
# (\b \t \n \f \r \" \\), six for the other control characters (\u00XX), one otherwise;
# and two for %, doubled for a %-format.
_ASCII_WIDTH = np.ones(128, dtype=np.int64)
_ASCII_WIDTH[:0x20] = 6
_ASCII_WIDTH[[0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x25, 0x5C]] = 2


def _marked_text(
    text: str,
    first: int,
    cuts: list[int],
    last: int,
    markers: bytes,
    before: bytes = b"",
    after: bytes = b"",
) -> bytes | None:
    r"""`before`, `text[first:last]` as orjson escapes it inside a string and with each `%`
    doubled (for a %-format), `after`; `markers[i]` inserted at offset `cuts[i]` (control
    characters, which orjson always escapes, so the escaped text holds none). None when orjson
    cannot write the text (a lone surrogate).

    Example: ("a\nb%", 0, [1, 2], 4, b"\0\1") -> b"a\0\\n\1b%%" (a, NUL, \ and n, 1, b, %%)
    """
    try:
        escaped = orjson.dumps(text).replace(b"%", b"%%")
    except orjson.JSONEncodeError:
        return None
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    width = np.where(
        points < 0x80,
        _ASCII_WIDTH[np.minimum(points, 0x7F)],
        2 + (points >= 0x800) + (points >= 0x10000),  # UTF-8 lengths
    )
    at = np.zeros(len(points) + 1, dtype=np.int64)  # the escaped offset of each character
    np.cumsum(width, out=at[1:])
    if int(at[-1]) != len(escaped) - 2:  # not orjson's escaping after all: say so, never guess
        return None
    start, end = int(at[first]) + 1, int(at[last]) + 1  # + 1: orjson's opening quote
    body = np.frombuffer(escaped, dtype=np.uint8)[start:end]
    where = np.concatenate(
        (
            np.zeros(len(before), dtype=np.int64),
            at[np.fromiter(cuts, np.int64, len(cuts))] + (1 - start),
            np.full(len(after), end - start, dtype=np.int64),
        )
    )
    values = np.frombuffer(before + markers + after, dtype=np.uint8)
    return np.insert(body, where, values).tobytes()  # equal offsets keep their order


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
