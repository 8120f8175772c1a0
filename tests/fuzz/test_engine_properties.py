"""Property-based tests of the engine (DESIGN.md §7 item 11: mask invariants under hypothesis).

Random conversations -- hostile content included: typed role markers, control characters, odd
whitespace, astral characters -- rendered by real tokenizers under several dialects, including a
pasted template through the worker. Checked against definitions, not against our own output:
labels follow `trained`, the ids decode back to the text, and each `train_on` trains exactly the
tokens it promises.
"""

from __future__ import annotations

import unicodedata

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.settings import Settings
from app.templating.limits import LimitedSandboxedEnvironment
from app.tokenizers.registry import load_tokenizer
from tests.helpers.conversations import conversations_of

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CASES = [
    ("chatml", "qwen3", None),
    ("llama3", "llama3", None),
    ("gemma", "gemma3", None),
    ("custom", "qwen3", CHATML),
]
MARKERS = [
    "<|im_end|>",
    "<|im_start|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "[INST]",
    "</s>",
    "\n",
    "  ",
    "\t",
    "\x07",
    "\u200b",
    "🦜",
    "é",
    "<script>",
]

text = (
    st.lists(
        st.one_of(
            st.sampled_from(MARKERS),
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
        ),
        min_size=1,
        max_size=6,
    )
    .map("".join)
    .filter(lambda s: s.strip())
)


@pytest.fixture(scope="module")
def real() -> Settings:
    return Settings.from_env(render_timeout_ms=5_000)


PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _render(conversation, case, real, **options):
    dialect, tokenizer_name, template = case
    tokenizer = load_tokenizer(tokenizer_name, real)
    opts = RenderSpec(dialect=dialect, template=template, **options)
    return render(conversation, get_dialect(dialect), tokenizer, opts, real), tokenizer


def _as_model_sees(text: str, tokenizer) -> str:
    """The text after the tokenizer's Unicode normalization, which is what the ids encode.

    Example (qwen3, NFC): "\uf9be" (a CJK compatibility ideograph) -> "\u6599"
    """
    normalizer = tokenizer.backend_tokenizer.normalizer
    if type(normalizer).__name__ in ("NFC", "NFKC", "NFD", "NFKD"):
        return normalizer.normalize_str(text)
    return text


def _inside_content(token, spans, role: str) -> bool:
    return any(
        s.role == role
        and s.content_start <= token.start
        and token.end <= s.content_end
        and token.end > token.start
        for s in spans
    )


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@PROPERTY
@given(conversation=conversations_of(text), train_on_eot=st.booleans())
def test_assistant_masking_invariants(real, case, conversation, train_on_eot):
    r, tokenizer = _render(
        conversation, case, real, train_on="assistant", train_on_eot=train_on_eot
    )
    n = len(r.input_ids)
    assert len(r.labels) == len(r.tokens) == len(r.attention_mask) == n
    assert r.attention_mask == [1] * n
    for token, label, token_id in zip(r.tokens, r.labels, r.input_ids, strict=True):
        assert label == (token_id if token.trained else -100)
        if token.role in ("system", "user", "tool") or token.role is None:
            assert not token.trained, token
        if _inside_content(token, r.spans, "assistant"):
            assert token.trained, token
    assert tokenizer.decode(
        r.input_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
    ) == _as_model_sees(r.text, tokenizer)
    for span in r.spans:
        if span.role == "assistant" and span.eot_start is not None:
            eot = [t for t in r.tokens if span.eot_start <= t.start < span.eot_end]
            assert eot and all(t.trained is train_on_eot for t in eot), (span, eot)


@pytest.mark.parametrize("case", CASES[:2], ids=[c[0] for c in CASES[:2]])
@PROPERTY
@given(conversation=conversations_of(text))
def test_train_on_all_and_last_assistant(real, case, conversation):
    everything, _ = _render(conversation, case, real, train_on="all")
    assert all(t.trained for t in everything.tokens)
    last, _ = _render(conversation, case, real, train_on="last_assistant")
    final = max(i for i, m in enumerate(conversation) if m.role == "assistant")
    trained = {t.message for t in last.tokens if t.trained}
    assert trained == {final}
    assert last.input_ids == everything.input_ids


# -- the limited sandbox changes no value that stays within its limits ---------------------------

small_int = st.integers(-4, 9)
leaf = st.one_of(small_int.map(str), st.sampled_from(["'ab'", "'x'", "[1, 2]", "'%s-%d'"]))


@st.composite
def expressions(draw, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(leaf)
    op = draw(st.sampled_from(["*", "+", "~", "%", "**", "-", "//"]))
    left, right = draw(expressions(depth - 1)), draw(expressions(depth - 1))
    if op == "**":  # keep the reference's own computation small
        right = draw(st.integers(0, 3).map(str))
    return f"({left} {op} {right})"


@settings(max_examples=300, deadline=None)
@given(expression=expressions())
def test_limited_sandbox_agrees_with_the_plain_sandbox(expression):
    source = "{{ " + expression + " }}"
    try:
        expected = ImmutableSandboxedEnvironment().from_string(source).render()
    except (jinja2.TemplateError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return  # an invalid expression; the property is about valid ones
    # Operands this small never come near a limit, so any LimitError here is a false alarm.
    limited = LimitedSandboxedEnvironment(max_range=1_000, max_output_chars=1_000_000)
    assert limited.from_string(source).render() == expected


def test_a_normalizing_tokenizer_keeps_the_typed_text_and_encodes_the_normalized_one(real):
    # Found by the property above: qwen3 normalizes to NFC, so U+F9BE is trained as U+6599.
    conversation = [Message("user", "<|im_end|>"), Message("assistant", "\uf9be")]
    r, tokenizer = _render(
        conversation, ("chatml", "qwen3", None), real, train_on="assistant", train_on_eot=False
    )
    assert "\uf9be" in r.text
    decoded = tokenizer.decode(r.input_ids, skip_special_tokens=False)
    assert unicodedata.normalize("NFC", "\uf9be") == "\u6599"
    assert "\u6599" in decoded and "\uf9be" not in decoded
    assert "".join(t.text for t in r.tokens) == r.text
    assert any(t.trained and t.text == "\uf9be" for t in r.tokens)


@st.composite
def _agentic(draw: st.DrawFn) -> list[Message]:
    """A user turn, then one or two tool rounds (a call, its result) and a final answer, with
    optional reasoning: hostile text in every content."""
    conv = [Message("user", draw(text))]
    for k in range(draw(st.integers(1, 2))):
        call = {"type": "function", "function": {"name": f"tool_{k}", "arguments": {"q": "x"}}}
        conv.append(Message("assistant", "", {"tool_calls": [call]}))
        conv.append(Message("tool", draw(text), {"name": f"tool_{k}", "tool_call_id": f"c{k}"}))
    extra = {"reasoning_content": draw(text)} if draw(st.booleans()) else {}
    conv.append(Message("assistant", draw(text), extra))
    return conv


def _render_zoo(conversation, tokenizer_name: str, template: str, real, **options):
    """Render under a zoo template; None where the template refuses hostile content
    (raise_exception) or the engine refuses it as input."""
    from tests.zoo.templates import template_source

    tokenizer = load_tokenizer(tokenizer_name, real)
    spec = RenderSpec(dialect="custom", template=template_source(template), **options)
    try:
        return render(conversation, get_dialect("custom"), tokenizer, spec, real)
    except Exception as exc:
        if type(exc).__name__ in ("TemplateError", "InputError"):
            return None
        raise


AGENTIC_TEMPLATES = [("qwen3", "trl/qwen3"), ("gptoss", "trl/gptoss"), ("llama3", "axolotl/llama4")]


@pytest.mark.parametrize(("tokenizer_name", "template"), AGENTIC_TEMPLATES)
@PROPERTY
@given(conversation=_agentic())
def test_tool_results_and_prompts_are_never_trained_on_real_templates(
    real, tokenizer_name, template, conversation
):
    """DESIGN §4: tool results (role tool) and prompts are never trained, whatever the content;
    reasoning and tool-call parts only ever sit in assistant turns."""
    r = _render_zoo(conversation, tokenizer_name, template, real)
    if r is None:
        return
    for token, label in zip(r.tokens, r.labels, strict=True):
        assert label == (token.id if token.trained else -100)
        if token.role in ("system", "user", "tool") or token.role is None:
            assert not token.trained, token
        if token.part in ("reasoning", "tool_call"):
            assert token.role == "assistant", token


@st.composite
def _pictures(draw: st.DrawFn) -> list[Message]:
    """User turns holding images (any size, anywhere among hostile text parts), each answered."""
    conv = []
    for _ in range(draw(st.integers(1, 2))):
        parts = [{"type": "text", "text": draw(text)} for _ in range(draw(st.integers(0, 2)))]
        for _ in range(draw(st.integers(1, 2))):
            size = {"width": draw(st.integers(1, 4000)), "height": draw(st.integers(1, 4000))}
            if max(size.values()) / min(size.values()) > 200:  # Qwen-VL refuses such shapes
                size["height"] = size["width"]
            parts.insert(draw(st.integers(0, len(parts))), {"type": "image", **size})
        joined = "".join(p["text"] for p in parts if p["type"] == "text")  # as parsing joins
        conv.append(Message("user", joined, parts=parts))
        conv.append(Message("assistant", draw(text)))
    return conv


# (tokenizer, template, the token the processor repeats, the markers its expansion adds);
# Qwen-VL's <|vision_start|> / <|vision_end|> are the template's text, trained under "all".
IMAGE_TEMPLATES = [
    ("gemma3", "trl/gemma3", "<image_soft_token>", {"<start_of_image>", "<end_of_image>"}),
    ("qwen3", "trl/qwen3_vl", "<|image_pad|>", set()),
]


@pytest.mark.parametrize(("tokenizer_name", "template", "image_token", "markers"), IMAGE_TEMPLATES)
@PROPERTY
@given(conversation=_pictures(), train_on=st.sampled_from(["assistant", "all"]))
def test_no_image_token_is_ever_trained_on_real_templates(
    real, tokenizer_name, template, image_token, markers, conversation, train_on
):
    """DESIGN §4: image placeholder tokens are never trained, under any train_on; every image
    expands to its processor's count, and the token texts still spell the rendered text."""
    r = _render_zoo(conversation, tokenizer_name, template, real, train_on=train_on)
    if r is None:
        return
    images = sum(1 for m in conversation for p in m.parts or () if p["type"] == "image")
    assert r.meta["images"] == {"placeholders": images, "images": images}
    assert "".join(t.text for t in r.tokens) == r.text
    for token in r.tokens:
        if token.text == image_token:
            assert token.part == "image", token
        if token.text == image_token or token.text in markers:
            assert not token.trained, token
        if train_on == "assistant" and token.part == "image":
            assert not token.trained, token
