"""Chips: visible whitespace, escapes, raw bytes of split characters, and the size budget."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.chat.tokens import Token
from app.views.chips import (
    chip,
    chips_html,
    exact_repr,
    piece_bytes,
    runs,
    token_bytes,
    visible,
)
from tests.helpers.views import rendered, tok

CHIP = re.compile(r'<span class="([^"]*)"((?: data-[a-z]+="[^"]*")*)>([^<]*)</span>')


def _tok(text: str, **kw) -> Token:
    fields = dict(
        index=0,
        id=7,
        text=text,
        role="user",
        message=1,
        special=False,
        trained=False,
        start=0,
        end=len(text),
    )
    return Token(**{**fields, **kw})


@pytest.mark.parametrize(
    ("text", "shown", "escaped"),
    [
        ("a b\n", "a·b↵", False),
        ("\tx", "→x", False),
        ("\x07\x1b", "\\x07\\x1b", True),
        ("zero\u200bwidth", "zero\\u200bwidth", True),
        ("\ufffd", "\\ufffd", True),
        ("你好", "你好", False),
    ],
)
def test_visible(text, shown, escaped):
    assert visible(text) == (shown, escaped)


def test_exact_repr_is_json_plus_invisible_escapes():
    assert exact_repr('a"\n') == json.dumps('a"\n')
    assert exact_repr("x\u200b") == '"x\\u200b"'


def _unshow(shown: str) -> str:
    return shown.replace("·", " ").replace("↵", "\n").replace("→", "\t")


@pytest.mark.parametrize("text", [" hello\n", "a\tb", "dot · here", "back\\slash", "\x07", "ok"])
def test_exact_text_is_recoverable_from_every_chip(text):
    # The tooltip shows data-x when present, otherwise the un-mapped visible text.
    _classes, attrs, shown = CHIP.fullmatch(chip(_tok(text))).groups()
    data_x = re.search(r'data-x="([^"]*)"', attrs)
    recovered = (
        json.loads(html.unescape(data_x.group(1))) if data_x else _unshow(html.unescape(shown))
    )
    assert recovered == text


def test_chip_classes_and_attributes():
    markup = chip(
        _tok("<|im_end|>", role="assistant", trained=True, special=True, id=151645, message=3)
    )
    assert markup == ('<span class="a t k" data-id="151645" data-m="3">&lt;|im_end|&gt;</span>')
    outside = chip(_tok("<s>", role=None, message=None, special=True))
    assert outside.startswith('<span class="n k" data-id="7">')


def test_byte_level_pieces_spell_the_utf8_of_the_text():
    # Reference: the UTF-8 encoding of the text itself.
    tokenizer = tok("qwen3")
    text = "你好 我是AI 🦜"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    raws = piece_bytes(tokenizer.convert_ids_to_tokens(ids), byte_level=True)
    assert b"".join(raws) == text.encode("utf-8")


def test_byte_fallback_pieces_are_single_bytes():
    tokenizer = tok("mistral")
    ids = tokenizer("𒀀", add_special_tokens=False)["input_ids"]
    raws = piece_bytes(tokenizer.convert_ids_to_tokens(ids), byte_level=False)
    assert b"".join(r for r in raws if r is not None) == "𒀀".encode()


def test_split_character_becomes_escaped_bytes():
    rendering = rendered([("user", "我"), ("assistant", "🦜")], "chatml", "qwen3")
    markup = chips_html(rendering, tok("qwen3"))
    escaped = [shown for classes, _, shown in CHIP.findall(markup) if "e" in classes.split()]
    assert escaped and all(re.fullmatch(r"(\\x[0-9a-f]{2})+", s) for s in escaped)
    raws = token_bytes(rendering.input_ids, tok("qwen3"))
    assert b"".join(r for r in raws if r is not None) == rendering.text.encode("utf-8")


def test_eight_thousand_tokens_fit_the_html_budget():
    # P5 budget: at most 150 bytes of chip HTML per token on a long, mixed conversation.
    turns = [
        turn
        for i in range(180)
        for turn in (
            ("user", f"Question {i}: how do I sort a list of {i} numbers?\n\tThanks!"),
            ("assistant", f"Use sorted(xs) — it is O(n log n). 你好 #{i}"),
        )
    ]
    rendering = rendered(turns, "chatml", "qwen3")
    assert len(rendering.tokens) > 8000
    markup = chips_html(rendering, tok("qwen3"))
    assert markup.count("<span") == len(rendering.tokens)
    assert len(markup.encode()) / len(rendering.tokens) <= 150


def test_runs_end_after_newlines_and_cover_every_token():
    texts = ["a"] * 700
    texts[255], texts[530] = "\n", "x\n"
    tokens = [_tok(t, index=i) for i, t in enumerate(texts)]
    assert runs(tokens, size=256) == [(0, 256), (256, 531), (531, 700)]
    no_newline = [_tok("a", index=i) for i in range(1100)]
    assert runs(no_newline, size=256) == [(0, 512), (512, 1024), (1024, 1100)]


def test_runs_carry_their_first_index():
    turns = [("user", "line\n" * 300), ("assistant", "ok")]
    markup = chips_html(rendered(turns, "chatml", "qwen3"), tok("qwen3"))
    offsets = [int(o) for o in re.findall(r'<div class="run" data-o="(\d+)">', markup)]
    sizes = [len(CHIP.findall(run)) for run in markup.split('<div class="run"')[1:]]
    assert offsets[0] == 0 and len(offsets) > 1
    assert offsets[1:] == [sum(sizes[:i]) for i in range(1, len(sizes))]


def test_an_images_repeated_tokens_collapse_into_one_chip_with_its_count():
    from app.chat.messages import parse_row
    from app.chat.render import render
    from app.chat.spec import RenderSpec
    from app.dialects.registry import get_dialect
    from tests.helpers.tokenizers import bundled
    from tests.zoo.templates import template_source

    rows = [
        {"role": "user", "content": [{"type": "text", "text": "What?"}, {"type": "image"}]},
        {"role": "assistant", "content": "A cat."},
    ]
    spec = RenderSpec(dialect="custom", template=template_source("trl/gemma3"))
    r = render(parse_row({"messages": rows}), get_dialect("custom"), bundled("gemma3"), spec)
    html = str(chips_html(r))
    assert html.count('data-rep="256"') == 1
    assert html.count(' ih"') == 255
    assert html.count("<span ") == len(r.tokens)  # every token keeps its chip: indices hold
