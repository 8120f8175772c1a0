"""Id-sequence search and completion-only masking, against plain reference loops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.lint.markers import (
    IdSearch,
    _as_text,
    as_mask,
    find_all,
    mask_by_markers,
    merged_ranges,
)

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


class _Remembering(IdSearch):
    REMEMBER_FROM = 0  # a long row's path, on a short row


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(st.integers(0, 4), max_size=40),
    needles=st.lists(st.lists(st.integers(0, 4), max_size=3), max_size=3),
    start=st.integers(0, 45),
    stop=st.integers(0, 45),
)
def test_first_is_the_earliest_find_of_any_needle(ids, needles, start, stop):
    direct, remembering = IdSearch(ids), _Remembering(ids)
    found = [at for n in needles if (at := direct.find(n, start, stop)) != -1]
    assert direct.first(needles, start, stop) == min(found, default=-1)
    for _ in range(2):  # the second round reads the remembered occurrences
        assert remembering.first(needles, start, stop) == min(found, default=-1)


@given(st.lists(st.one_of(st.integers(-2, 0x110002), st.integers(0xD7F0, 0xE010)), max_size=30))
def test_ids_become_the_code_points_chr_gives(ids):
    try:
        expected = "".join(map(chr, ids))
    except ValueError:
        expected = None
    assert _as_text(ids) == expected


_RANGES = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=5)


@given(a=_RANGES, b=_RANGES)
def test_merged_ranges_are_equal_exactly_when_their_masks_are(a, b):
    assert (merged_ranges(a) == merged_ranges(b)) == (as_mask(12, a) == as_mask(12, b))
    assert as_mask(12, merged_ranges(a)) == as_mask(12, a)
