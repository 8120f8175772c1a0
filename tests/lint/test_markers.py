"""Id-sequence search and completion-only masking, against plain reference loops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.lint.markers import IdSearch, find_all, mask_by_markers

# Small alphabets make matches common; the large ids and the surrogate range exercise the
# code-point encoding (and its fallback past U+10FFFF).
IDS = st.lists(st.sampled_from([0, 1, 2, 3, 0xD800, 0xDFFF, 0x10FFFF, 0x110000]), max_size=40)
NEEDLE = st.lists(st.sampled_from([0, 1, 2, 0xD800, 0x110000]), min_size=1, max_size=3)


def naive_find_all(ids: list[int], needle: list[int]) -> list[int]:
    n = len(needle)
    return [i for i in range(len(ids) - n + 1) if ids[i : i + n] == needle]


def naive_mask(
    ids: list[int], response: list[int], eots: set[int], stops: list[list[int]]
) -> list[bool]:
    mask = [False] * len(ids)
    stop_starts = sorted(i for s in stops for i in naive_find_all(ids, s))
    for start in naive_find_all(ids, response):
        i = start + len(response)
        limit = next((s for s in stop_starts if s >= i), len(ids))
        j = i
        while j < limit and ids[j] not in eots:
            j += 1
        end = j + 1 if j < limit else limit
        for k in range(i, end):
            mask[k] = True
    return mask


@given(IDS, NEEDLE)
def test_find_all_equals_the_plain_scan(ids, needle):
    assert find_all(ids, needle) == naive_find_all(ids, needle)


@given(IDS, NEEDLE, st.integers(0, 40), st.integers(0, 40))
def test_find_stays_inside_the_window(ids, needle, start, stop):
    expected = next(
        (i for i in naive_find_all(ids, needle) if i >= start and i + len(needle) <= stop), -1
    )
    assert IdSearch(ids).find(needle, start, stop) == expected


@given(
    IDS,
    NEEDLE,
    st.sets(st.sampled_from([1, 3, 0x110000]), max_size=2),
    st.lists(NEEDLE, max_size=2),
)
def test_mask_by_markers_equals_the_plain_loop(ids, response, eots, stops):
    assert mask_by_markers(ids, response, frozenset(eots), stops) == naive_mask(
        ids, response, eots, stops
    )


def test_examples_from_the_docstrings():
    assert find_all([5, 1, 2, 5, 1], [5, 1]) == [0, 3]
    assert find_all([1, 1, 1], [1, 1]) == [0, 1]  # overlapping occurrences count
    assert mask_by_markers([9, 1, 7, 3, 9, 2, 8, 3, 0], [9, 2], frozenset({3})) == [False] * 6 + [
        True,
        True,
        False,
    ]


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(st.integers(0, 4), max_size=40),
    needles=st.lists(st.lists(st.integers(0, 4), max_size=3), max_size=3),
    start=st.integers(0, 45),
    stop=st.integers(0, 45),
)
def test_first_is_the_earliest_find_of_any_needle(ids, needles, start, stop):
    search = IdSearch(ids)
    for _ in range(2):  # the second round reads the remembered occurrences
        found = [at for n in needles if (at := search.find(n, start, stop)) != -1]
        assert search.first(needles, start, stop) == min(found, default=-1)
