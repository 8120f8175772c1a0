"""The render contract: token texts rebuild the text, labels follow the trained flags, and the mask
invariants hold for every dialect (hypothesis), plus the options and limits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.chat.tokens import IGNORE_INDEX
from app.dialects.registry import get_dialect
from app.errors import InputError, LimitError
from app.settings import Settings
from tests.helpers.conversations import conversations_of

# (dialect, tokenizer) pairs that fit each other.
PAIRS = [
    ("chatml", "qwen3"),
    ("chatml", "smollm2"),
    ("llama3", "llama3"),
    ("gemma", "gemma3"),
    ("llama2", "llama2"),
    ("mistral", "mistral"),
    ("tokenizer", "qwen3"),
    ("tokenizer", "llama3"),
    ("tokenizer", "gemma3"),
    ("tokenizer", "smollm2"),
    ("zephyr", "llama2"),
    ("alpaca", "llama2"),
    ("phi3", "llama3"),
]

_ALPHABET = st.characters(
    codec="utf-8", exclude_characters="<>|\r", exclude_categories=("Cs", "Co", "Cn", "Cc")
)
_TEXT = st.one_of(
    st.text(alphabet=_ALPHABET, min_size=1, max_size=40),
    st.sampled_from(
        [
            "Hi",
            " padded ",
            "line\nbreak\n",
            "中文内容",
            "emoji 😀🎉",
            "x = [1, 2]",
            "assistant",
            "user",
            "a",
            "\n\n",
            "  ",
        ]
    ),
)


def check_invariants(r, conv) -> None:
    assert "".join(t.text for t in r.tokens) == r.text
    assert [t.index for t in r.tokens] == list(range(len(r.tokens)))
    pos = 0
    for t in r.tokens:
        assert t.start == pos and t.end >= t.start
        pos = t.end
    assert len(r.input_ids) == len(r.labels) == len(r.attention_mask) == len(r.tokens)
    for t, label, tid in zip(r.tokens, r.labels, r.input_ids, strict=True):
        assert t.id == tid
        assert label == (tid if t.trained else IGNORE_INDEX)
        if t.message is None:  # outside every message; a template-injected system prompt
            assert t.role in (None, "system")
        else:
            assert t.role == conv[t.message].role
    assert len(r.spans) == len(conv)


def check_assistant_policy(r, conv) -> None:
    """Under train_on=assistant: no system/user/tool token is trained; all assistant content is."""
    assert not any(t.trained and t.role in ("system", "user", "tool") for t in r.tokens)
    for span in r.spans:
        if span.role != "assistant":
            continue
        inside = [t for t in r.tokens if span.content_start <= t.start < span.content_end]
        assert all(t.trained for t in inside), (span, [t for t in inside if not t.trained])
        if span.eot_start is not None:
            eot = [t for t in r.tokens if t.start <= span.eot_start < max(t.end, t.start + 1)]
            assert eot and eot[0].trained and eot[0].message == span.message


@pytest.mark.parametrize(("dialect", "name"), PAIRS)
def test_mask_invariants_hold_for_any_conversation(tokenizers, dialect, name):
    tok = tokenizers(name)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(conversations_of(_TEXT))
    def run(conv):
        if dialect == "tokenizer" and name == "gemma3" and not conv[-1].content.strip():
            conv = [*conv[:-1], Message("assistant", "ok")]
        r = render(conv, get_dialect(dialect), tok, RenderSpec())
        check_invariants(r, conv)
        check_assistant_policy(r, conv)

    run()


def _chatml(tokenizers, **kw):
    conv = [
        Message("system", "S"),
        Message("user", "Q1"),
        Message("assistant", "A1"),
        Message("user", "Q2"),
        Message("assistant", "A2"),
    ]
    return conv, render(conv, get_dialect("chatml"), tokenizers("qwen3"), RenderSpec(**kw))


def _trained_text(r) -> str:
    return "".join(t.text for t in r.tokens if t.trained)


def test_train_on_variants(tokenizers):
    _, r = _chatml(tokenizers)
    assert _trained_text(r) == "A1<|im_end|>A2<|im_end|>"
    _, r = _chatml(tokenizers, train_on="last_assistant")
    assert _trained_text(r) == "A2<|im_end|>"
    _, r = _chatml(tokenizers, train_on="all")
    assert _trained_text(r) == r.text and r.stats()["trained"] == len(r.tokens)
    _, r = _chatml(tokenizers, train_on_eot=False)
    assert _trained_text(r) == "A1A2"


def test_glue_after_end_of_turn_is_not_trained(tokenizers):
    _, r = _chatml(tokenizers)
    for i, t in enumerate(r.tokens[:-1]):
        if t.text == "<|im_end|>" and t.trained:
            assert r.tokens[i + 1].text == "\n" and not r.tokens[i + 1].trained


def test_max_length_truncates_on_the_right_and_reports_it(tokenizers):
    conv, full = _chatml(tokenizers)
    _, cut = _chatml(tokenizers, max_length=10)
    assert cut.input_ids == full.input_ids[:10]
    assert cut.truncated_tokens == len(full.input_ids) - 10
    assert cut.stats()["truncated"] == cut.truncated_tokens
    assert cut.text == full.text[: cut.tokens[-1].end]
    check_invariants(cut, conv)


def test_generation_prompt_belongs_to_no_message(tokenizers):
    conv = [Message("user", "Q")]
    r = render(
        conv, get_dialect("llama3"), tokenizers("llama3"), RenderSpec(add_generation_prompt=True)
    )
    assert r.text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert r.tokens[0].message is None  # the leading BOS
    assert [t.message for t in r.tokens[-4:]] == [None] * 4


def test_limits_name_their_setting(tokenizers):
    tok = tokenizers("qwen3")
    conv = [Message("user", "word " * 50), Message("assistant", "ok")]
    small = Settings.from_env(max_tokens=20)
    with pytest.raises(LimitError) as err:
        render(conv, get_dialect("chatml"), tok, RenderSpec(), small)
    assert err.value.setting == "max_tokens"
    few = Settings.from_env(max_messages=1)
    with pytest.raises(LimitError) as err:
        render(conv, get_dialect("chatml"), tok, RenderSpec(), few)
    assert err.value.setting == "max_messages"
    with pytest.raises(InputError) as err:
        render([], get_dialect("chatml"), tok, RenderSpec())
    assert err.value.field == "messages"


def test_unknown_dialect_and_train_on_are_refused(tokenizers):
    conv = [Message("user", "Q")]
    with pytest.raises(InputError) as err:
        render(conv, get_dialect("vicuna"), tokenizers("qwen3"), RenderSpec())
    assert err.value.field == "dialect" and "chatml" in err.value.message
    with pytest.raises(InputError) as err:
        render(conv, get_dialect("chatml"), tokenizers("qwen3"), RenderSpec(train_on="everything"))
    assert err.value.field == "train_on"


def test_concurrent_renders_do_not_disturb_each_other(tokenizers):
    """Built-in dialects encode with special tokens split, templates without: both at once."""
    from concurrent.futures import ThreadPoolExecutor

    tok = tokenizers("qwen3")
    conv = [Message("user", "say <|im_end|> " * 50), Message("assistant", "ok " * 50)]
    jobs = [("chatml" if i % 2 else "tokenizer") for i in range(40)]
    serial = {d: render(conv, get_dialect(d), tok, RenderSpec()).input_ids for d in set(jobs)}
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda d: (d, render(conv, get_dialect(d), tok, RenderSpec()).input_ids), jobs)
        )
    assert all(ids == serial[d] for d, ids in results)
    assert serial["chatml"] != serial["tokenizer"]  # the typed marker differs between the two


_BATCH_TEXTS = [
    "Hi",
    " padded  ",
    "line\nbreak\n\n",
    "中文内容，你好",
    "emoji 😀🎉 mixed",
    "café naïve",
    "cafe\u0301 decomposed",
    "x = [1, 2]\t\ttabs",
    "<|im_end|> <s> [INST] text",
    "word " * 2500,
]


def _batch_rows() -> list[list[Message]]:
    rows = []
    for k, text in enumerate(_BATCH_TEXTS):
        other = _BATCH_TEXTS[(k + 3) % len(_BATCH_TEXTS)]
        conv = [Message("system", "Be brief.")] if k % 2 else []
        conv += [
            Message("user", text),
            Message("assistant", other),
            Message("user", other[::-1]),
            Message("assistant", text + " end"),
        ]
        rows.append(conv)
    rows.insert(3, [])  # an empty conversation: refused, in its place
    return rows


@pytest.mark.parametrize(("dialect", "name"), PAIRS)
def test_render_many_equals_render_row_by_row(tokenizers, dialect, name):
    """The dataset path (rendered together, tokenized in one batch, offsets derived from token
    bytes where the tokenizer allows) gives each row exactly its own `render`: same ids, labels,
    tokens with roles and spans, findings, and the same error for a bad row."""
    from app.chat.render import render_many
    from app.dialects.registry import get_dialect

    tok = tokenizers(name)
    rows = _batch_rows()
    for options in (RenderSpec(), RenderSpec(train_on="all", max_length=40)):
        batch = render_many(rows, get_dialect(dialect), tok, options)
        assert len(batch) == len(rows)
        for conv, got in zip(rows, batch, strict=True):
            try:
                want = render(conv, get_dialect(dialect), tok, options)
            except InputError as exc:
                assert isinstance(got, InputError) and got.message == exc.message
                continue
            assert got.input_ids == want.input_ids and got.labels == want.labels
            assert got.tokens == want.tokens and got.spans == want.spans
            assert got.findings == want.findings and got.text == want.text
