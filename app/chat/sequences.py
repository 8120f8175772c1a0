"""Where two sequences differ, once their common start and end are left out.

Example: differing_window([1, 2, 3, 4], [1, 9, 9, 4]) -> (1, 3, 3)

Design concession: a plain scan from both ends, not an edit distance: callers (boundary merges,
normalized contents) only need the one window that holds every difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
