"""Long renderings' token columns (numpy, app.chat.painting) equal the list path's value for
value, and type for type, with the same token kinds: on random layouts (pieces, trained ranges
with and without owners, parts that share tokens, tool holes, injected roles, byte-split
characters, truncation, unsorted raw offsets) and on real long renderings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import app.chat.columns as columns_module
from app.chat.columns import TokenColumns, token_columns
from app.chat.encoding import Encoded, marker_offsets
from app.chat.layout import Piece
from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from tests.helpers.tokenizers import bundled

FIELDS = ("ids", "roles", "messages", "trained", "starts", "ends", "labels", "parts")
ROLES = ("system", "user", "assistant", "tool")
PARTS = ("content", "reasoning", "tool_call", "image")


def _both(monkeypatch, *args, **kwargs) -> tuple[TokenColumns, TokenColumns]:
    monkeypatch.setattr(columns_module, "LONG_RENDERING", 10**9)
    lists = token_columns(*args, **kwargs)
    monkeypatch.setattr(columns_module, "LONG_RENDERING", 1)
    arrays = token_columns(*args, **kwargs)
    return lists, arrays


def _assert_same(lists: TokenColumns, arrays: TokenColumns) -> None:
    for name in FIELDS:
        a, b = getattr(lists, name), getattr(arrays, name)
        assert a == b, name
        assert [type(v) for v in a] == [type(v) for v in b], name
    assert lists.kinds() == arrays.kinds()
    assert lists.role_counts() == arrays.role_counts()
    assert lists.columns_json() == arrays.columns_json()
    assert lists.to_json_bytes() == arrays.to_json_bytes()


def _cuts(draw, length: int, count: int) -> list[int]:
    return sorted(draw(st.lists(st.integers(0, length), min_size=count, max_size=count)))


def _labelled(draw, length: int, labels, most: int) -> list[tuple[int, int, object]]:
    """Sorted, disjoint ranges of the text, each with a label drawn from `labels`."""
    bounds = _cuts(draw, length, 2 * draw(st.integers(0, most)))
    return [(a, b, draw(labels)) for a, b in zip(bounds[::2], bounds[1::2], strict=True)]


@st.composite
def layouts(draw):
    length = draw(st.integers(1, 300))
    text = "x" * length
    n = draw(st.integers(1, 120))
    ordered = draw(st.booleans())
    if ordered:  # derived from token bytes: non-decreasing, a split character shared
        starts = _cuts(draw, length, n)
        ends = [min(length, max(s, e)) for s, e in zip(starts, [*starts[1:], length], strict=True)]
        ends = [e + (draw(st.booleans()) and e < length) for e in ends]
        ends = [max(ends[: i + 1]) for i in range(n)]
    else:  # the Rust tokenizer's own offsets: any order, now and then
        starts = draw(st.lists(st.integers(0, length), min_size=n, max_size=n))
        if draw(st.booleans()):
            starts.sort()
        ends = [min(length, s + draw(st.integers(0, 4))) for s in starts]
    enc = Encoded(list(range(50, 50 + n)), starts, ends, ordered=ordered)
    messages = st.one_of(st.none(), st.integers(0, 6))
    bounds = [0, *sorted(set(_cuts(draw, length, draw(st.integers(0, 12))))), length]
    pieces = [
        Piece(a, b, draw(messages), draw(st.sampled_from(("turn", "content", "eot", "bos"))))
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]
    ranges = _labelled(draw, length, messages, 6)
    roles = {k: draw(st.sampled_from(ROLES)) for k in range(7) if draw(st.booleans())}
    parts = _labelled(draw, length, st.sampled_from(PARTS), 6)
    unowned = _labelled(draw, length, st.sampled_from(("system", "developer")), 2)
    holes = [(a, b) for a, b, _ in _labelled(draw, length, st.none(), 2)]
    special = frozenset(draw(st.lists(st.integers(50, 50 + n), max_size=5)))
    keep = draw(st.integers(1, n))
    return text, enc, pieces, ranges, roles, special, keep, parts, unowned, holes


@given(layouts())
def test_random_layouts_give_the_list_path_s_columns(layout):
    text, enc, pieces, ranges, roles, special, keep, parts, unowned, holes = layout
    with pytest.MonkeyPatch.context() as monkeypatch:
        lists, arrays = _both(
            monkeypatch, text, enc, pieces, ranges, roles, special, keep, parts, unowned, holes
        )
    _assert_same(lists, arrays)


def test_unsorted_raw_offsets_stay_on_the_list_path(monkeypatch):
    enc = Encoded([1, 2, 3], [0, 4, 2], [2, 6, 4])
    monkeypatch.setattr(columns_module, "LONG_RENDERING", 1)
    cols = token_columns("abcdef", enc, [Piece(0, 6, 0, "turn")], [], {0: "user"}, frozenset(), 3)
    assert cols._codes is None  # painted nothing: the list path's bisections decided


@pytest.mark.parametrize(
    ("tokenizer", "dialect", "train_on"),
    [
        ("smollm2", "tokenizer", "assistant"),
        ("qwen3", "tokenizer", "all"),
        ("llama3", "llama3", "assistant"),
        ("gemma3", "tokenizer", "last_assistant"),
    ],
)
def test_a_long_real_rendering_is_painted_as_the_list_path_writes_it(
    monkeypatch, tokenizer, dialect, train_on
):
    tok = bundled(tokenizer)
    turns = [{"role": "system", "content": "Be brief. é 日本 🦙"}]
    for i in range(120):
        turns.append({"role": "user", "content": f"question {i}: why the mask?"})
        turns.append({"role": "assistant", "content": f"because {i} — the <b>rule</b>."})
    conversation = parse_messages(turns)
    spec = RenderSpec(tokenizer=tokenizer, dialect=dialect, train_on=train_on, max_length=3000)
    made = {}
    for threshold in (10**9, 1):
        monkeypatch.setattr(columns_module, "LONG_RENDERING", threshold)
        made[threshold] = render(conversation, get_dialect(dialect), tok, spec, columns=True)
    lists, arrays = made[10**9].tokens, made[1].tokens
    assert isinstance(arrays, TokenColumns) and arrays._codes is not None
    assert len(arrays) == 3000
    _assert_same(lists, arrays)  # type: ignore[arg-type]
    assert made[1].labels == made[10**9].labels


def test_marker_offsets_of_a_long_encoding_are_those_of_the_short_way():
    n = 5000
    enc = Encoded([i % 13 for i in range(n)], list(range(n)), list(range(1, n + 1)))
    markers = frozenset({3, 7})
    expected = [(i, i + 1) for i in range(n) if i % 13 in markers]
    assert list(marker_offsets(enc, markers)) == expected
    short = Encoded(enc.ids[:40], enc.starts[:40], enc.ends[:40])
    assert list(marker_offsets(short, markers)) == [o for o in expected if o[0] < 40]
