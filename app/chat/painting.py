"""The token columns of a long rendering, worked out with numpy: every piece, trained range and
part is located by one `searchsorted` and painted onto its tokens at once, instead of two
bisections and a slice per range in Python (`app.chat.columns.token_columns`, which short
renderings keep: numpy's fixed cost per call is more than their whole work).

Example: starts [0, 3, 5], pieces [(0, 5, 0, "turn"), (5, 9, 1, "turn")] -> owners [0, 0, 1]

Design concession: the result is the list path's, value for value (a property test compares the
two); where raw offsets are not sorted, a binary search could land elsewhere than `bisect`
does, so those renderings go back to the list path (`painted` returns None).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from app.chat.encoding import Encoded
from app.chat.layout import Piece
from app.chat.tokens import IGNORE_INDEX


class Painted(NamedTuple):
    """The columns as `TokenColumns` holds them, and the codes its token kinds are read from."""

    starts: list[int]
    ends: list[int]
    messages: list[int | None]
    trained: list[bool]
    labels: list[int]
    roles: list[str | None]
    parts: list[str]
    codes: Codes


class Codes(NamedTuple):
    """What each token's kind is made of, as arrays: `roles[i]` numbers a role of `role_names`,
    `parts[i]` a part of `part_names`; whether it is trained; its id (special or not)."""

    roles: np.ndarray
    role_names: list[str | None]
    parts: np.ndarray
    part_names: list[str]
    trained: np.ndarray
    ids: np.ndarray


# Long: the list path's steps in its order (owners, trained ranges, holes, roles, parts), each a
# few array calls; split, the arrays and their names would pass between a dozen helpers.
def painted(
    text: str,
    enc: Encoded,
    keep: int,
    pieces: list[Piece],
    ranges: list[tuple[int, int, int | None]],
    roles: dict[int | None, str],
    parts: Sequence[tuple[int, int, str]],
    unowned_roles: Sequence[tuple[int, int, str]],
    tool_holes: Sequence[tuple[int, int]],
) -> Painted | None:
    """`token_columns`' columns for the first `keep` tokens (at least one), or None where the
    raw offsets are unsorted (see the module's concession)."""
    ids_a, raw_s, raw_e = (column[:keep] for column in enc.arrays())
    n = len(ids_a)
    reach = raw_e if enc.ordered else np.maximum(raw_e, raw_s + 1)
    if not enc.ordered and (_unsorted(raw_s) or _unsorted(reach)):
        return None
    starts = np.empty(n, dtype=np.int64)  # text starts: raw starts made non-decreasing, from 0
    starts[0] = 0
    np.maximum.accumulate(raw_s[1:], out=starts[1:])
    np.maximum(starts, 0, out=starts)
    tail = max(int(starts[-1]), enc.starts[keep]) if keep < len(enc.ids) else len(text)
    ends = np.empty(n, dtype=np.int64)
    ends[:-1], ends[-1] = starts[1:], tail

    owners = np.full(n, -1, dtype=np.int64)  # -1: no message
    if pieces:
        p0, p1, p_owner = map(_ints, list(zip(*pieces, strict=True))[:3])
        i0, i1 = np.searchsorted(starts, p0), np.searchsorted(starts, p1)
        _paint(owners, i0, i1, p_owner, first_wins=False)
        last = np.maximum(i1 - 1, 0)
        crossing = np.flatnonzero((i1 > i0) & (ends[last] > p1))
        for j in crossing.tolist():  # a token spanning several pieces: a content piece's
            i = int(last[j])
            owner = None if owners[i] < 0 else int(owners[i])
            found = content_owner(pieces, j, int(starts[i]), int(ends[i]), owner)
            owners[i] = -1 if found is None else found
    trained = np.zeros(n, dtype=bool)
    if ranges:
        r0, r1, r_owner = map(_ints, zip(*ranges, strict=True))
        if enc.ordered:
            a = np.minimum(np.searchsorted(raw_e, r0, "right"), np.searchsorted(raw_s, r0))
        else:
            a = np.searchsorted(reach, r0, "right")
        b = np.searchsorted(raw_s, r1)
        hit = b > a
        cover = np.bincount(a[hit], minlength=n + 1) - np.bincount(b[hit], minlength=n + 1)
        trained = np.cumsum(cover[:n]) > 0
        owned = (r_owner >= 0) & hit
        _paint(owners, a[owned], b[owned], r_owner[owned], first_wins=False)
    holes = _token_ranges(starts, tool_holes)
    for h0, h1 in holes:  # a tool result inside an assistant turn: the tool's, untrained
        owners[h0:h1][~trained[h0:h1]] = -1

    number: dict[str | None, int] = {None: 0}  # role -> its code, in first-seen order
    top = max(int(owners.max()), max((k for k in roles if k is not None), default=0))
    table = np.zeros(top + 2, dtype=np.int64)  # message + 1 -> its role's code
    for message, role in roles.items():
        if message is not None and message >= 0:
            table[message + 1] = number.setdefault(role, len(number))
    role_codes = table[owners + 1]
    free = owners < 0
    injected = _token_ranges(starts, [(a, b) for a, b, _ in unowned_roles])
    labels = ["tool"] * len(holes) + [role for _, _, role in unowned_roles]
    for (h0, h1), role in zip([*holes, *injected], labels, strict=True):
        code = number.setdefault(role, len(number))
        role_codes[h0:h1][free[h0:h1]] = code
    role_names = list(number)

    part_number = {"markup": 0}
    part_codes = np.zeros(n, dtype=np.int64)
    if parts:
        q0, q1, q_part = zip(*parts, strict=True)
        codes = _ints(part_number.setdefault(p, len(part_number)) for p in q_part)
        a, b = np.searchsorted(ends, _ints(q0), "right"), np.searchsorted(starts, _ints(q1))
        _paint(part_codes, a, b, codes, first_wins=True)  # the earliest part wins a token
    part_names = list(part_number)

    message_objects = np.empty(len(table), dtype=object)
    message_objects[1:] = list(range(len(table) - 1))  # Python ints, as the list path gives
    start_list = enc.starts[:keep] if enc.ordered and enc.starts[0] == 0 else starts.tolist()
    return Painted(
        start_list,
        [*start_list[1:], tail],
        message_objects[owners + 1].tolist(),
        trained.tolist(),
        np.where(trained, ids_a, IGNORE_INDEX).tolist(),
        np.array(role_names, dtype=object)[role_codes].tolist(),
        np.array(part_names, dtype=object)[part_codes].tolist(),
        Codes(role_codes, role_names, part_codes, part_names, trained, ids_a),
    )


def _unsorted(values: np.ndarray) -> bool:
    return bool(np.any(values[1:] < values[:-1]))


def _ints(values: Iterable[Any]) -> np.ndarray:
    """Character offsets, messages (None as -1) or codes as an int64 array."""
    return np.fromiter((-1 if v is None else v for v in values), np.int64)


def _token_ranges(starts: np.ndarray, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each (start, end) character range as the token range whose texts start in it."""
    found = np.searchsorted(starts, np.asarray(ranges, dtype=np.int64).reshape(-1, 2))
    return [(a, b) for a, b in found.tolist()]


def _paint(
    out: np.ndarray, a: np.ndarray, b: np.ndarray, values: np.ndarray, *, first_wins: bool
) -> None:
    """`out[a[j]:b[j]] = values[j]` for every j in order (`first_wins`: in reverse order), the
    ranges sorted as pieces and parts are: each range then only has to give up what its
    neighbour takes, and everything is written in one assignment. Ranges out of that order
    (none a dialect makes) are written one by one.

    Example: out [0, 0, 0, 0], a [0, 1], b [2, 4], values [7, 8]: -> [7, 8, 8, 8];
             first_wins -> [7, 7, 8, 8]
    """
    hit = b > a
    a, b, values = a[hit], b[hit], values[hit]
    if not len(a):
        return
    if _unsorted(a) or _unsorted(b):
        order = range(len(a) - 1, -1, -1) if first_wins else range(len(a))
        for j in order:
            out[a[j] : b[j]] = values[j]
        return
    if first_wins:  # a range starts where the one before it ends
        a = np.maximum(a, np.concatenate(([0], b[:-1])))
    else:  # a range ends where the next one starts
        b = np.minimum(b, np.concatenate((a[1:], [len(out)])))
    lengths = np.maximum(b - a, 0)
    at = np.arange(int(lengths.sum())) + np.repeat(a - (np.cumsum(lengths) - lengths), lengths)
    out[at] = np.repeat(values, lengths)


def content_owner(pieces: list[Piece], j: int, ps: int, pe: int, owner: int | None) -> int | None:
    """For a token spanning several pieces: the message of a content piece among them."""
    while j < len(pieces) and pieces[j][0] < pe:
        if pieces[j][3] == "content" and pieces[j][1] > ps:
            return pieces[j][2]
        j += 1
    return owner
