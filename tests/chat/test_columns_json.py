"""TokenColumns.to_json_bytes writes exactly what orjson writes for `to_json()`, for texts that
need every kind of escape, zero-width tokens, truncated renderings and real templates; it declines
(None) where it cannot, rather than writing something else."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.chat.columns import TokenColumns, _marked_text
from app.chat.messages import parse_row
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from tests.helpers.tokenizers import bundled
from tests.helpers.tool_calls import TOOL_CALL_TURNS, WEATHER_TOOLS
from tests.zoo.templates import template_source

ODD_TEXT = (
    'a%d %s %% 100% "quoted" back\\slash \\" \x00nul \x01\x07\x08\t\n\x0b\x0c\r\x1f\x7f '
    "é ß 日本 🦙 \u0301 \u2028\u2029 \ufeff \U0010ffff end"
)


def _columns(text: str, cuts: list[int], **overrides) -> TokenColumns:
    """Columns over `text` cut at `cuts` (token starts after the first), made by hand."""
    starts = [0, *cuts]
    ends = [*cuts, len(text)]
    n = len(starts)
    fields = {
        "ids": list(range(100, 100 + n)),
        "roles": [("user", "assistant", None, "tool")[i % 4] for i in range(n)],
        "messages": [None if i % 5 == 0 else i // 3 for i in range(n)],
        "special": frozenset({100, 103}),
        "trained": [i % 3 == 0 for i in range(n)],
        "labels": [-100] * n,
        "parts": [("markup", "content", "reasoning")[i % 3] for i in range(n)],
    }
    fields.update(overrides)
    return TokenColumns(text=text, starts=starts, ends=ends, **fields)  # type: ignore[arg-type]


def _orjson(cols: TokenColumns) -> bytes:
    return orjson.dumps(cols.to_json())


@pytest.mark.parametrize("step", [1, 2, 3, 7])
def test_every_kind_of_escape_at_every_cut_is_written_as_orjson_writes_it(step):
    cuts = list(range(step, len(ODD_TEXT), step))
    cols = _columns(ODD_TEXT, cuts)
    assert cols.to_json_bytes() == _orjson(cols)


def test_head_and_tail_are_written_around_the_tokens_as_they_are():
    cols = _columns(ODD_TEXT, [3, 9, 20])
    head, tail = b'{"note":"100%s %d %%","tokens":', b',"after":"%s"}'
    written = cols.to_json_bytes(memoryview(head), tail)
    assert written == head + _orjson(cols) + tail


def test_zero_width_tokens_and_a_single_token():
    text = "ab🦙c"
    cols = _columns(text, [1, 1, 2, 2, 3])  # empty texts where a character is completed later
    assert any(t["text"] == "" for t in cols.to_json())
    assert cols.to_json_bytes() == _orjson(cols)
    one = _columns("x", [])
    assert one.to_json_bytes() == _orjson(one)


def test_texts_that_are_not_consecutive_slices_are_declined():
    cols = _columns("abcdef", [2, 4])
    cols.ends[0] = 1  # a gap between the first and the second token
    assert cols.to_json_bytes() is None
    assert (
        _columns(
            "", [], ids=[], roles=[], messages=[], trained=[], labels=[], parts=[]
        ).to_json_bytes()
        is None
    )


def test_more_kinds_of_token_than_marker_bytes_are_declined():
    text = "x" * 40
    many = _columns(text, list(range(1, 40)), parts=[f"part{i}" for i in range(40)])
    assert many.to_json_bytes() is None
    few = _columns(text, list(range(1, 40)), parts=[f"part{i % 8}" for i in range(40)])
    assert few.to_json_bytes() == _orjson(few)


def test_values_that_are_not_plain_numbers_are_declined():
    assert _columns("abc", [1, 2], messages=[0, np.int64(1), None]).to_json_bytes() is None
    assert _columns("abc", [1, 2], ids=[1, "2", 3]).to_json_bytes() is None


def test_a_lone_surrogate_is_declined_so_the_caller_writes_the_records():
    cols = _columns("ab\ud800cd", [2, 3])
    assert cols.to_json_bytes() is None
    with pytest.raises(orjson.JSONEncodeError):
        _orjson(cols)


def test_the_escape_widths_are_orjsons_for_every_character():
    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(every)
    # A cut after every character: each marker lands exactly where orjson's escape of it ends.
    marked = _marked_text(text, 0, list(range(1, len(text))), len(text), bytes(len(text) - 1))
    assert marked is not None
    # (each % doubled: the text becomes part of a %-format)
    assert marked.split(b"\0") == [orjson.dumps(ch)[1:-1].replace(b"%", b"%%") for ch in every]


def _render(tokenizer: str, messages: list[dict], *, tools=None, **spec):
    conversation = parse_row({"messages": messages})
    rspec = RenderSpec(tokenizer=tokenizer, tools=tools, **spec)
    return render(conversation, get_dialect(rspec.dialect), bundled(tokenizer), rspec, columns=True)


@pytest.mark.parametrize(
    ("tokenizer", "messages", "spec", "tools"),
    [
        # SmolLM2's own template injects a system prompt (message null); a generation prompt
        (
            "smollm2",
            [{"role": "user", "content": 'Say "100%"\\n\t'}],
            {"dialect": "tokenizer", "add_generation_prompt": True},
            None,
        ),
        # reasoning, tool calls (JSON quotes) and a tool result, Qwen3's own template
        ("qwen3", TOOL_CALL_TURNS, {"dialect": "tokenizer"}, WEATHER_TOOLS),
        # an image expanded into 256 placeholders, Gemma 3's TRL template
        (
            "gemma3",
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Was ist das? 🦙"},
                        {"type": "image", "width": 640, "height": 480},
                    ],
                },
                {"role": "assistant", "content": "Ein Lama."},
            ],
            {"dialect": "custom", "template": template_source("trl/gemma3")},
            None,
        ),
        # Llama 3's BOS outside every message, cut short by max_length
        (
            "llama3",
            TOOL_CALL_TURNS[:1] + [{"role": "assistant", "content": "naïve café " * 20}],
            {"dialect": "llama3", "max_length": 40},
            None,
        ),
    ],
    ids=["smollm2-injected-system", "qwen3-tools", "gemma3-image", "llama3-truncated"],
)
def test_real_renderings_are_written_as_orjson_writes_their_records(
    tokenizer, messages, spec, tools
):
    rendering = _render(tokenizer, messages, tools=tools, **spec)
    cols = rendering.tokens
    assert isinstance(cols, TokenColumns)
    assert cols.to_json_bytes() == _orjson(cols)
    assert cols.to_json_bytes() == orjson.dumps([t.to_json() for t in cols])


@pytest.mark.parametrize("distinct_parts", [3, 300])  # kinds in a byte, and past 256 of them
def test_role_counts_and_the_columnar_roles_and_parts_match_the_columns(distinct_parts):
    n = 900
    cols = _columns(
        "x" * n,
        list(range(1, n)),
        ids=[100 + i % 7 for i in range(n)],
        roles=[(None, "system", "user", "assistant", "tool")[(i // 5) % 5] for i in range(n)],
        parts=[f"part{(i * 7) % distinct_parts}" for i in range(n)],
    )
    assert (cols.kinds() is None) is (distinct_parts > 256)
    counts: dict[str | None, int] = {}
    for role in cols.roles:  # first-seen order
        counts[role] = counts.get(role, 0) + 1
    assert list(cols.role_counts().items()) == list(counts.items())
    data = cols.columns_json()
    roles, parts = data["names"]["roles"], data["names"]["parts"]
    assert roles == list(dict.fromkeys(cols.roles))
    assert parts == list(dict.fromkeys(cols.parts))
    assert [roles[k] for k in data["roles"]] == cols.roles
    assert [parts[k] for k in data["parts"]] == cols.parts
    if distinct_parts <= 256:
        kind, kinds = cols.kinds()  # type: ignore[misc]
        special = [i in {100, 103} for i in cols.ids]
        keys = list(zip(cols.roles, special, cols.trained, cols.parts, strict=True))
        assert [kinds[k] for k in kind] == keys
        assert kinds == list(dict.fromkeys(keys))
