"""What the lints remember across rows and requests stays honest: per tokenizer and per key,
never shared between two templates or tokenizers, and a warm cache answers as a cold one does.
The fast paths (one regular expression per short row, `Check.when`) answer as the general ones.

Real bundled tokenizers and real dialects throughout; the reference for the marker search is a
plain loop written here (tests/lint/test_markers.py has the others).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.chat.messages import parse_messages
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.lint import CHECKS, context_for_rendering
from app.lint import context as lint_context
from app.lint import markers as lint_markers
from app.lint.markers import IdSearch, marker_ranges
from app.settings import Settings
from tests.helpers.lint import lint_conversation
from tests.helpers.tokenizers import bundled, fresh
from tests.zoo.conversations import CONVERSATIONS

# (tokenizer, dialect): dialects whose markers are, and are not, tokens of the tokenizer.
PAIRS = [
    ("smollm2", "chatml"),
    ("smollm2", "zephyr"),
    ("smollm2", "tokenizer"),
    ("smollm2", "alpaca"),
    ("llama3", "llama3"),
    ("llama3", "chatml"),
    ("qwen3", "tokenizer"),
    ("gemma3", "gemma"),
    ("mistral", "mistral"),
]


def _forget_everything() -> None:
    """A cold start: nothing remembered by the lints."""
    lint_context._SHARED.clear()
    lint_markers._PATTERNS.clear()


def _lint(tokenizer: str, dialect: str, conversation: str, **options: object) -> list[object]:
    conv = CONVERSATIONS[conversation]
    options = {"tokenizer": tokenizer, "tools": conv.tools, **options}
    try:
        _, found, _ = lint_conversation(tokenizer, dialect, conv.messages, deep=False, **options)
    except Exception as exc:  # the template refuses this conversation: nothing to lint
        return [f"refused: {type(exc).__name__}"]
    return [(f.code, f.severity, f.message, list(f.tokens)) for f in found]


CASES = [(t, d, c) for t, d in PAIRS for c in CONVERSATIONS]


def test_a_warm_cache_answers_as_a_cold_one():
    cold = {}
    for case in CASES:
        _forget_everything()
        cold[case] = _lint(*case)
    _forget_everything()
    for order in (CASES, CASES[::-1]):  # each case after every other one, in two orders
        for case in order:
            assert _lint(*case) == cold[case], case
    assert sum(1 for found in cold.values() if found and found[0][0] == "dialect-mismatch") > 0


def test_two_dialects_on_one_tokenizer_never_share_their_marker_findings():
    _forget_everything()
    chatml, zephyr = _lint("smollm2", "chatml", "basic"), _lint("smollm2", "zephyr", "basic")
    again = _lint("smollm2", "chatml", "basic")
    mismatch = [f for f in zephyr if f[0] == "dialect-mismatch"]
    assert mismatch and "<|user|>" in mismatch[0][2]  # zephyr's markers split into pieces
    assert not [f for f in chatml if f[0] == "dialect-mismatch"]
    assert again == chatml


def test_two_tokenizers_never_share_their_answers():
    # SmolLM2's pad token is its EOS (<|im_end|>); Llama 3's is made its EOS here: each
    # pad-is-eos finding names its own tokenizer's token, whichever was linted first.
    llama3 = fresh("llama3")
    llama3.pad_token = llama3.eos_token
    _forget_everything()
    smol_first = _pad_advice(bundled("smollm2"))
    llama_after = _pad_advice(llama3)
    _forget_everything()
    llama_first = _pad_advice(llama3)
    smol_after = _pad_advice(bundled("smollm2"))
    assert smol_first == smol_after and "'<|im_end|>'" in smol_first
    assert llama_first == llama_after and "'<|end_of_text|>'" in llama_first


def _pad_advice(tokenizer: object) -> str:
    messages = CONVERSATIONS["basic"].messages
    _, found, _ = lint_conversation(tokenizer, "tokenizer", messages, deep=False)
    (advice,) = [f.message for f in found if f.code == "pad-is-eos"]
    return advice


def test_shared_answers_are_per_tokenizer_and_key():
    tok_a, tok_b = bundled("smollm2"), bundled("llama3")
    spec = RenderSpec(tokenizer="smollm2", dialect="chatml")
    messages = parse_messages(CONVERSATIONS["basic"].messages)
    settings = Settings.from_env()
    contexts = []
    for tok in (tok_a, tok_b):
        rendering = render(messages, get_dialect("chatml"), tok, spec, settings)
        contexts.append(
            context_for_rendering(
                rendering,
                conversation=messages,
                tokenizer=tok,
                dialect=get_dialect("chatml"),
                spec=spec,
                settings=settings,
            )
        )
    a, b = contexts
    assert a.shared(("test", 1), lambda: "a1") == "a1"
    assert b.shared(("test", 1), lambda: "b1") == "b1"  # another tokenizer: asked afresh
    assert a.shared(("test", 2), lambda: "a2") == "a2"  # another key: asked afresh
    assert a.shared(("test", 1), lambda: "never") == "a1"  # remembered


def test_shared_answers_leave_with_their_tokenizer():
    class Throwaway:
        pass

    tok = Throwaway()
    answers = lint_context._shared_of(tok)
    answers["x"] = 1
    assert lint_context._shared_of(tok) is answers
    key = id(tok)
    del tok
    assert key not in lint_context._SHARED


@pytest.mark.parametrize("code", [c for c, item in CHECKS.items() if item.when is not None])
def test_a_check_skipped_by_its_when_finds_nothing(code):
    """`Check.when` only saves the call: wherever it says no, the check itself finds nothing."""
    item, asked = CHECKS[code], 0
    settings = Settings.from_env()
    for tokenizer, dialect in PAIRS:
        for conv in CONVERSATIONS.values():
            spec = RenderSpec(tokenizer=tokenizer, dialect=dialect, tools=conv.tools)
            tok, chat_format = bundled(tokenizer), get_dialect(dialect)
            messages = parse_messages(conv.messages)
            try:
                rendering = render(messages, chat_format, tok, spec, settings)
            except Exception:
                continue
            ctx = context_for_rendering(
                rendering,
                conversation=messages,
                tokenizer=tok,
                dialect=chat_format,
                spec=spec,
                settings=settings,
            )
            assert item.when is not None
            if not item.when(ctx):
                asked += 1
                assert list(item.func(ctx)) == [], (tokenizer, dialect, conv.name)
    assert asked > 0


def _plain_ranges(
    ids: list[int], response: list[int], eots: set[int], stops: list[list[int]]
) -> list[tuple[int, int]]:
    """marker_ranges as a plain loop: after each (overlapping) occurrence of the response
    marker, up to and including the first end-of-turn id before the next header."""

    def starts(needle: list[int]) -> list[int]:
        n = len(needle)
        return [i for i in range(len(ids) - n + 1) if n and ids[i : i + n] == needle]

    headers = sorted(i for s in stops for i in starts(s))
    out = []
    for start in starts(response):
        i = start + len(response)
        limit = next((h for h in headers if h >= i), len(ids))
        j = i
        while j < limit and ids[j] not in eots:
            j += 1
        out.append((i, j + 1 if j < limit else limit))
    return out


class _Remembering(IdSearch):
    REMEMBER_FROM = 0  # a long row's path (no regular expression), on a short row


# Self-overlapping markers ([1, 1], [1, 2, 1]), empty ones, and ids past U+10FFFF included.
_ID = st.sampled_from([0, 1, 2, 3, 0x110000])
_NEEDLE = st.lists(_ID, max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    ids=st.lists(_ID, max_size=40),
    response=_NEEDLE,
    eots=st.sets(_ID, max_size=3),
    stops=st.lists(_NEEDLE, max_size=3),
)
def test_marker_ranges_by_one_expression_equal_the_plain_loop(ids, response, eots, stops):
    expected = _plain_ranges(ids, response, eots, stops)
    for needle in (response, tuple(response)):
        assert marker_ranges(IdSearch(ids), needle, frozenset(eots), stops) == expected
        assert marker_ranges(_Remembering(ids), needle, frozenset(eots), stops) == expected
