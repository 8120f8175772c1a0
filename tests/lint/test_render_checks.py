"""Every render-based code: a real case that triggers it and a near-identical one that does not,
on the bundled tokenizers. Where the cause is a template, the test first shows the cause with
transformers' own apply_chat_template, independently of Maskscope."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.helpers.lint import by_code, lint_conversation
from tests.helpers.tokenizers import bundled

CHAT = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
]
SYSTEM = [{"role": "system", "content": "Answer in one word."}]
NOT_QUIET = ("error", "warning")


@pytest.mark.parametrize(
    "tokenizer, dialect, messages",
    [
        ("gemma3", "tokenizer", CHAT),
        ("gemma3", "gemma", CHAT),
        ("llama3", "llama3", SYSTEM + CHAT),
        ("mistral", "mistral", CHAT),
        ("llama2", "llama2", CHAT),
        ("smollm2", "tokenizer", SYSTEM + CHAT),
        ("smollm2", "chatml", SYSTEM + CHAT),
        ("qwen3", "chatml", CHAT),
    ],
)
def test_clean_conversation_under_its_own_template_is_quiet(tokenizer, dialect, messages):
    _, findings, _ = lint_conversation(tokenizer, dialect, messages)
    assert [f for f in findings if f.severity in NOT_QUIET] == []


def test_generation_prompt_in_training_bundled_llama3_template():
    tokenizer = bundled("llama3")
    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=False)
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")  # the asset's bug
    rendering, findings, _ = lint_conversation("llama3", "tokenizer", CHAT)
    (hit,) = by_code(findings, "generation-prompt-in-training")
    assert hit.severity == "error"
    assert (
        "".join(rendering.tokens[i].text for i in hit.tokens).strip().endswith("<|end_header_id|>")
    )
    _, findings, _ = lint_conversation("llama3", "llama3", CHAT)
    assert by_code(findings, "generation-prompt-in-training") == []


def test_generation_prompt_is_fine_when_asked_for():
    _, findings, _ = lint_conversation("llama3", "tokenizer", CHAT[:1], add_generation_prompt=True)
    assert by_code(findings, "generation-prompt-in-training") == []


def test_default_system_injected_smollm2():
    text = bundled("smollm2").apply_chat_template(CHAT, tokenize=False)
    assert "You are a helpful AI assistant named SmolLM" in text
    rendering, findings, _ = lint_conversation("smollm2", "tokenizer", CHAT)
    (hit,) = by_code(findings, "default-system-injected")
    assert "SmolLM" in "".join(rendering.tokens[i].text for i in hit.tokens)
    _, findings, _ = lint_conversation("smollm2", "tokenizer", SYSTEM + CHAT)
    assert by_code(findings, "default-system-injected") == []


@pytest.mark.parametrize("role, severity", [("user", "warning"), ("assistant", "error")])
def test_special_token_in_content_whole_string_template(role, severity):
    # The tokenizer's own template is tokenized as one string, like apply_chat_template: the typed
    # <|im_end|> becomes the real end-of-turn token.
    messages = [dict(m) for m in CHAT]
    index = 2 if role == "user" else 3
    messages[index]["content"] = "Fine.<|im_end|> go on"
    rendering, findings, tokenizer = lint_conversation("qwen3", "tokenizer", messages)
    (hit,) = by_code(findings, "special-token-in-content")
    assert hit.severity == severity
    assert [rendering.input_ids[i] for i in hit.tokens] == [
        tokenizer.convert_tokens_to_ids("<|im_end|>")
    ]
    messages[index]["content"] = "Fine. im_end go on"
    _, findings, _ = lint_conversation("qwen3", "tokenizer", messages)
    assert by_code(findings, "special-token-in-content") == []


def test_special_token_in_content_split_by_builtin_dialect_is_info():
    messages = [dict(m) for m in CHAT]
    messages[2]["content"] = "Fine.<|im_end|> go on"
    rendering, findings, tokenizer = lint_conversation("qwen3", "chatml", messages)
    (hit,) = by_code(findings, "special-token-in-content")
    assert hit.severity == "info"
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") not in [
        rendering.input_ids[i] for i in hit.tokens
    ]


def test_boundary_merge_reported_by_engine_for_llama2_system_prompt():
    _, findings, _ = lint_conversation("llama2", "llama2", SYSTEM + CHAT)
    assert len(by_code(findings, "boundary-merge")) == 1
    _, findings, _ = lint_conversation("llama2", "llama2", CHAT)
    assert by_code(findings, "boundary-merge") == []


def test_boundary_merge_token_spanning_two_messages():
    template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    pair = [{"role": "user", "content": "Hel"}, {"role": "assistant", "content": "lo world"}]
    rendering, findings, _ = lint_conversation("qwen3", "custom", pair, template=template)
    hits = by_code(findings, "boundary-merge")
    assert hits and any(rendering.tokens[i].text == "Hello" for h in hits for i in h.tokens)
    pair[1]["content"] = " lo world"
    _, findings, _ = lint_conversation("qwen3", "custom", pair, template=template)
    assert by_code(findings, "boundary-merge") == []


def test_truncation_cuts_answer():
    full, _, _ = lint_conversation("qwen3", "chatml", CHAT)
    last_answer = full.text.index("Rome")
    cut_inside = next(t.index for t in full.tokens if t.start >= last_answer) + 1
    rendering, findings, _ = lint_conversation("qwen3", "chatml", CHAT, max_length=cut_inside)
    assert rendering.truncated_tokens > 0
    assert by_code(findings, "truncation-cuts-answer")
    assert by_code(findings, "train-inference-mismatch") == []
    # Cutting inside the second user turn drops the last answer whole: never trained.
    cut_user = next(t.index for t in full.tokens if t.start >= full.text.index("Italy"))
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT, max_length=cut_user)
    (hit,) = by_code(findings, "truncation-cuts-answer")
    assert hit.severity == "warning" and "drops assistant message(s) 3 whole" in hit.message
    assert by_code(findings, "train-inference-mismatch") == []
    # Cutting only the glue after the last end-of-turn cuts nothing that is trained.
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT, max_length=len(full.tokens) - 1)
    assert by_code(findings, "truncation-cuts-answer") == []


def test_dialect_mismatch_chatml_on_llama3_tokenizer():
    assert len(bundled("llama3").encode("<|im_start|>", add_special_tokens=False)) > 1
    _, findings, _ = lint_conversation("llama3", "chatml", CHAT)
    assert any(f.severity == "error" for f in by_code(findings, "dialect-mismatch"))
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT)
    assert by_code(findings, "dialect-mismatch") == []


def test_dialect_mismatch_eot_not_eos_is_info_for_llama3():
    tokenizer = bundled("llama3")
    assert tokenizer.eos_token == "<|end_of_text|>"
    _, findings, _ = lint_conversation("llama3", "llama3", CHAT)
    (hit,) = by_code(findings, "dialect-mismatch")
    assert hit.severity == "info" and "<|eot_id|>" in hit.message


def test_template_not_prefix_stable_qwen3_reasoning():
    tokenizer = bundled("qwen3")
    chat = [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nAdd.\n</think>\n\n4."},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6."},
    ]
    part = tokenizer.apply_chat_template(chat[:2], tokenize=False)
    whole = tokenizer.apply_chat_template(chat, tokenize=False)
    assert not whole.startswith(part)  # Qwen3 strips earlier reasoning
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    assert by_code(findings, "template-not-prefix-stable")
    _, findings, _ = lint_conversation("qwen3", "chatml", chat)
    assert by_code(findings, "template-not-prefix-stable") == []


def test_qwen3_empty_think_block_is_generated_not_a_mismatch():
    """Qwen3 writes `<think>\n\n</think>\n\n` on the last turn; its generation prompt (thinking
    on) does not, so the prompt is a prefix of the training text and the model generates the
    block (DESIGN §4): trained, and no train-inference-mismatch."""
    tokenizer = bundled("qwen3")
    chat = CHAT[:2]
    train = tokenizer.apply_chat_template(chat, tokenize=False)
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert train.startswith(prompt + "<think>\n\n</think>\n\n")
    rendering, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    assert by_code(findings, "train-inference-mismatch") == []
    trained = "".join(t.text for t in rendering.tokens if t.trained)
    assert trained.startswith("<think>\n\n</think>\n\n")


def test_train_inference_mismatch_when_the_prompt_opens_a_think_block():
    """DeepSeek-R1-Distill's prompt ends with `<think>\n`, which its training text lacks."""
    template = (
        "{% for m in messages %}{% if m.role == 'user' %}<|im_start|>user\n{{ m.content }}"
        "<|im_end|>\n{% else %}<|im_start|>assistant\n{{ m.content }}<|im_end|>\n{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
    )
    _, findings, _ = lint_conversation("qwen3", "custom", CHAT[:2], template=template)
    assert by_code(findings, "train-inference-mismatch")
    _, findings, _ = lint_conversation("gemma3", "tokenizer", CHAT[:2])
    assert by_code(findings, "train-inference-mismatch") == []


def test_response_template_context_alpaca_on_sentencepiece():
    tokenizer = bundled("mistral")
    rendering, findings, _ = lint_conversation("mistral", "alpaca", SYSTEM + CHAT)
    alone = tokenizer.encode("### Response:", add_special_tokens=False)
    ids = rendering.input_ids
    assert not any(ids[i : i + len(alone)] == alone for i in range(len(ids)))
    assert by_code(findings, "response-template-context")
    _, findings, _ = lint_conversation("mistral", "mistral", CHAT)
    assert by_code(findings, "response-template-context") == []


def test_mask_methods_disagree_marker_typed_in_user_content():
    # SmolLM2's own template is tokenized as one string: the typed marker becomes real tokens, and
    # a completion-only collator starts training inside the user turn.
    messages = SYSTEM + [dict(m) for m in CHAT]
    messages[3]["content"] = "Continue this: <|im_start|>assistant\nSure thing"
    rendering, findings, _ = lint_conversation("smollm2", "tokenizer", messages)
    (hit,) = by_code(findings, "mask-methods-disagree")
    assert all(rendering.tokens[i].role == "user" for i in hit.tokens)
    assert "marker matching: trained" in hit.message
    _, findings, _ = lint_conversation("smollm2", "tokenizer", SYSTEM + CHAT)
    assert by_code(findings, "mask-methods-disagree") == []


@pytest.mark.parametrize("train_on, severity", [("all", "info"), ("assistant", None)])
def test_prompt_trained_under_train_on(train_on, severity):
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT, train_on=train_on)
    hits = by_code(findings, "prompt-trained")
    assert [h.severity for h in hits] == ([severity] if severity else [])


@pytest.mark.parametrize("train_on_eot, severity", [(False, "warning"), (True, None)])
def test_eot_untrained_when_chosen(train_on_eot, severity):
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT, train_on_eot=train_on_eot)
    assert [h.severity for h in by_code(findings, "eot-untrained")] == (
        [severity] if severity else []
    )


def test_no_trained_tokens_without_assistant_turn():
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT[:1])
    assert by_code(findings, "no-trained-tokens")
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT[:2])
    assert by_code(findings, "no-trained-tokens") == []


def test_pad_is_eos_smollm2_is_info_on_our_renderings():
    tokenizer = bundled("smollm2")
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # as shipped
    _, findings, _ = lint_conversation("smollm2", "chatml", SYSTEM + CHAT)
    assert [h.severity for h in by_code(findings, "pad-is-eos")] == ["info"]
    _, findings, _ = lint_conversation("qwen3", "chatml", CHAT)
    assert by_code(findings, "pad-is-eos") == []


def test_deep_checks_sample_long_conversations():
    chat = []
    for k in range(12):
        chat += [
            {"role": "user", "content": f"Question {k}?"},
            {"role": "assistant", "content": f"<think>\nStep {k}.\n</think>\n\nAnswer {k}."},
        ]
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat)
    (hit,) = by_code(findings, "template-not-prefix-stable")
    assert "sample" in hit.message and hit.tokens == []
    _, findings, _ = lint_conversation("qwen3", "chatml", chat)
    assert by_code(findings, "template-not-prefix-stable") == []


HEADER_IN_GENERATION = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{% generation %}"
    "{{ '<|im_start|>assistant\\n' + m['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}{% else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("template, disagree", [("annotated", False), (HEADER_IN_GENERATION, True)])
def test_mask_methods_disagree_with_generation_tags(template, disagree):
    from app.chat.messages import parse_messages
    from app.chat.render import render
    from app.chat.spec import RenderSpec
    from app.dialects.registry import get_dialect
    from app.inspect.export import export_generation_template
    from app.lint import lint_rendering
    from app.settings import Settings
    from tests.helpers.tokenizers import fresh

    tokenizer = fresh("smollm2")
    if template == "annotated":
        template = export_generation_template(tokenizer, "tokenizer", Settings.from_env())[
            "template"
        ]
    tokenizer.chat_template = template
    conversation = parse_messages(SYSTEM + CHAT)
    options = RenderSpec()
    rendering = render(conversation, get_dialect("tokenizer"), tokenizer, options)
    findings = lint_rendering(
        rendering,
        conversation=conversation,
        tokenizer=tokenizer,
        dialect=get_dialect("tokenizer"),
        spec=options,
        settings=Settings.from_env(),
    )
    hits = by_code(findings, "mask-methods-disagree")
    assert bool(hits) is disagree
    if disagree:
        assert "generation tags: trained" in hits[0].message
        assert rendering.tokens[hits[0].tokens[0]].text == "<|im_start|>"


def test_content_not_found_when_the_template_rewrites_content():
    """A template that truncates each message: transformers' own rendering shows the content is
    not in the output, and the finding names the messages; the same template emitting the
    content unchanged is quiet."""
    truncating = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content[:6] }}"
        "<|im_end|>\n{% endfor %}"
    )
    tokenizer = bundled("qwen3")
    text = tokenizer.apply_chat_template(CHAT, chat_template=truncating, tokenize=False)
    assert "What is the capital" not in text and "What i" in text
    _, findings, _ = lint_conversation("qwen3", "custom", CHAT, template=truncating)
    (hit,) = by_code(findings, "content-not-found")
    assert hit.severity == "warning" and "messages[0] (user)" in hit.message
    faithful = truncating.replace("m.content[:6]", "m.content")
    _, findings, _ = lint_conversation("qwen3", "custom", CHAT, template=faithful)
    assert by_code(findings, "content-not-found") == []


def test_content_normalized_qwen3_nfc():
    """Qwen3's tokenizer applies NFC: a decomposed accent is trained as the composed character.
    The tokenizer itself shows the change; the precomposed twin, and tokenizers without a Unicode
    normal form (SmolLM2: none; Llama 2: only SentencePiece's space replacement), are quiet."""
    decomposed = "Cafe\u0301 au lait?"
    normalizer = bundled("qwen3").backend_tokenizer.normalizer
    assert normalizer.normalize_str(decomposed) == "Caf\u00e9 au lait?"
    chat = [{"role": "user", "content": decomposed}, {"role": "assistant", "content": "Oui."}]
    rendering, findings, _ = lint_conversation("qwen3", "chatml", chat)
    (hit,) = by_code(findings, "content-normalized")
    assert hit.severity == "info" and "message 0 (user)" in hit.message
    assert "(U+0065 U+0301) is encoded as" in hit.message and "(U+00E9)" in hit.message
    assert "e\u0301" in "".join(rendering.tokens[i].text for i in hit.tokens)
    composed = [{**chat[0], "content": "Caf\u00e9 au lait?"}, chat[1]]
    _, findings, _ = lint_conversation("qwen3", "chatml", composed)
    assert by_code(findings, "content-normalized") == []
    for tokenizer, dialect in (("smollm2", "chatml"), ("llama2", "llama2")):
        _, findings, _ = lint_conversation(tokenizer, dialect, chat)
        assert by_code(findings, "content-normalized") == []


def _long_chat(exchanges: int) -> list[dict]:
    words = (
        "the",
        "model",
        "learns",
        "to",
        "answer",
        "questions",
        "about",
        "data",
        "tokens",
        "masks",
        "labels",
        "café",
        "你好",
    )
    chat = [{"role": "system", "content": "Be brief."}]
    for k in range(exchanges):
        text = " ".join(words[(k * 7 + i) % len(words)] for i in range(60))
        chat += [{"role": "user", "content": text}, {"role": "assistant", "content": text[::-1]}]
    return chat


def test_linting_an_8k_token_conversation_re_renders_a_bounded_sample():
    """The playground lints every render, so the deep checks' re-renders must not grow with the
    conversation: probes are cached after the first lint, and the prefix and inference checks
    re-render a sample (the system message and the last turns), never all 120 messages.
    benchmarks/ times it; this counts the work."""
    from app.chat.messages import parse_messages
    from app.chat.render import render
    from app.chat.spec import RenderSpec
    from app.dialects.registry import get_dialect
    from app.lint import lint_rendering
    from app.lint.template_checks import DEEP_MAX_MESSAGES, MAX_CUTS, SAMPLE_TAIL
    from app.settings import Settings

    dialect = get_dialect("tokenizer")
    layouts: list[int] = []

    class CountingDialect:
        """The tokenizer dialect, recording how many messages each render lays out."""

        def __getattr__(self, name):
            return getattr(dialect, name)

        def layout(self, conversation, *args, **kwargs):
            layouts.append(len(conversation))
            return dialect.layout(conversation, *args, **kwargs)

    tokenizer, conversation = bundled("qwen3"), parse_messages(_long_chat(60))
    spec, settings = RenderSpec(), Settings.from_env()
    rendering = render(conversation, dialect, tokenizer, spec, settings)
    assert len(rendering.input_ids) > 8000
    runs = []
    for _ in range(2):  # the first lint also probes the dialect's markers
        layouts.clear()
        findings = lint_rendering(
            rendering,
            conversation=conversation,
            tokenizer=tokenizer,
            dialect=CountingDialect(),
            spec=spec,
            settings=settings,
        )
        runs.append([(f.code, f.tokens) for f in findings])
    assert runs[0] == runs[1]  # the cache changes the work, never the answer
    assert 2 <= len(layouts) <= MAX_CUTS + 2, layouts  # a sample, its prefixes, the prompt
    assert max(layouts) == 1 + SAMPLE_TAIL < DEEP_MAX_MESSAGES < len(conversation), layouts


@pytest.mark.parametrize(
    "tokenizer, dialect",
    [
        ("qwen3", "tokenizer"),
        ("llama3", "tokenizer"),
        ("smollm2", "tokenizer"),
        ("gemma3", "tokenizer"),
        ("llama3", "llama3"),
        ("qwen3", "custom"),
    ],
)
def test_dataset_renderings_lint_exactly_like_single_renders(tokenizer, dialect):
    """Dataset rows are rendered in batches with tokens kept as columns; every check must find
    the same things there as on a single render's Token records."""
    from app.chat.columns import TokenColumns
    from app.chat.messages import parse_messages
    from app.chat.render import render, render_many
    from app.chat.spec import RenderSpec
    from app.dialects.registry import get_dialect
    from app.lint import lint_rendering

    template = (
        (
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content[:9] }}<|im_end|>\n"
            "{% endfor %}"
        )
        if dialect == "custom"
        else None
    )
    rows = [
        CHAT,
        SYSTEM + CHAT,
        _long_chat(3),
        [
            {"role": "user", "content": "Say <|im_end|> or <|eot_id|>"},
            {"role": "assistant", "content": "  spaced  "},
        ],
    ]
    options = RenderSpec(dialect=dialect, template=template)
    tok = bundled(tokenizer)
    conversations = [parse_messages(row) for row in rows]
    batch = render_many(conversations, get_dialect(dialect), tok, options)
    for conversation, columns in zip(conversations, batch, strict=True):
        assert isinstance(columns.tokens, TokenColumns)
        single = render(conversation, get_dialect(dialect), tok, options)
        assert isinstance(single.tokens, list)
        lint = {
            "conversation": conversation,
            "tokenizer": tok,
            "dialect": get_dialect(dialect),
            "spec": options,
            "settings": Settings.from_env(),
        }
        assert lint_rendering(columns, **lint) == lint_rendering(single, **lint)


@pytest.mark.parametrize("tokenizer, dialect", [("llama2", "llama2"), ("mistral", "mistral")])
def test_boundary_merge_is_info_where_the_reference_merges_alike(tokenizer, dialect):
    """A system prompt folded into the first [INST]: Meta's formatter and the Mistral template
    tokenize "[INST] <<SYS>>" (or "[INST] You") into a token that spans both messages too. Both
    are prompt, nothing trained depends on it: info, with nothing to change."""
    from tests.dialects.test_builtin import ref_llama2

    rendering, findings, tokenizer_ = lint_conversation(tokenizer, dialect, SYSTEM + CHAT)
    if dialect == "llama2":
        assert rendering.input_ids == ref_llama2(tokenizer_, SYSTEM + CHAT)
    (hit,) = by_code(findings, "boundary-merge")
    assert hit.severity == "info" and "nothing to change" in hit.message
    assert hit.tokens and not any(rendering.tokens[i].trained for i in hit.tokens)


def test_boundary_merge_is_a_warning_where_a_trained_token_takes_in_the_prompt():
    template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    pair = [{"role": "user", "content": "Hel"}, {"role": "assistant", "content": "lo world"}]
    rendering, findings, _ = lint_conversation("qwen3", "custom", pair, template=template)
    (hit,) = by_code(findings, "boundary-merge")
    assert hit.severity == "warning" and "trained token(s) span two messages" in hit.message
    assert [rendering.tokens[i].text for i in hit.tokens] == ["Hello"]
    _, findings, _ = lint_conversation("qwen3", "custom", pair, template=template, train_on="all")
    assert [h.severity for h in by_code(findings, "boundary-merge")] == ["info"]


def test_default_system_injected_quotes_the_prompt_as_written():
    text = bundled("smollm2").apply_chat_template(CHAT, tokenize=False)
    prompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert f"system\n{prompt}<|im_end|>" in text
    _, findings, _ = lint_conversation("smollm2", "tokenizer", CHAT)
    (hit,) = by_code(findings, "default-system-injected")
    assert f"wrote {prompt!r} before the first message" in hit.message
    words = " ".join(f"word{k}" for k in range(60))
    template = (
        "<|im_start|>system\nYou are a careful assistant. " + words + "<|im_end|>\n"
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    )
    _, findings, _ = lint_conversation("qwen3", "custom", CHAT, template=template)
    (hit,) = by_code(findings, "default-system-injected")
    quoted = hit.message.split("wrote '")[1].split("'…")[0]
    assert ("You are a careful assistant. " + words).startswith(quoted) and len(quoted) > 100


@pytest.mark.parametrize("tokenizer", ["smollm2", "qwen3", "gemma3"])
def test_generation_prompt_ticked_on_a_training_render_says_to_untick_it(tokenizer):
    text = bundled(tokenizer).apply_chat_template(
        SYSTEM + CHAT, tokenize=False, add_generation_prompt=True
    )
    assert not text.rstrip().endswith(("<|im_end|>", "<end_of_turn>"))  # an open header last
    rendering, findings, _ = lint_conversation(
        tokenizer, "tokenizer", SYSTEM + CHAT, add_generation_prompt=True
    )
    (hit,) = by_code(findings, "generation-prompt-in-training")
    assert hit.severity == "error" and "Untick add_generation_prompt" in hit.message
    assert all(rendering.tokens[i].message is None for i in hit.tokens)
    _, findings, _ = lint_conversation(tokenizer, "tokenizer", SYSTEM + CHAT)
    assert by_code(findings, "generation-prompt-in-training") == []


@pytest.mark.parametrize(
    "train_on, severity", [("assistant", "warning"), ("last_assistant", "info")]
)
def test_template_not_prefix_stable_warns_only_where_a_trained_turn_differs(train_on, severity):
    """Qwen3 writes an empty think block on the last turn only: the first answer is trained
    without it, unlike when the model generates it (a warning), unless only the last turn is
    trained (then the earlier turns are context, written as at inference: info)."""
    _, findings, _ = lint_conversation("qwen3", "tokenizer", CHAT, train_on=train_on)
    (hit,) = by_code(findings, "template-not-prefix-stable")
    assert hit.severity == severity


def test_template_not_prefix_stable_is_info_for_a_trailing_header():
    # The bundled Llama 3 template's unconditional header differs after the answer, in context
    # nothing trains; generation-prompt-in-training is the finding that says what to fix.
    _, findings, _ = lint_conversation("llama3", "tokenizer", CHAT)
    assert [h.severity for h in by_code(findings, "template-not-prefix-stable")] == ["info"]
    assert by_code(findings, "generation-prompt-in-training")


@pytest.mark.parametrize("tokenizer, dialect", [("gemma3", "tokenizer"), ("gemma3", "gemma")])
def test_add_special_tokens_reproduces_the_double_bos_pipeline(tokenizer, dialect):
    """apply_chat_template(tokenize=False) then tokenizer(text): Gemma's template writes <bos>
    and the tokenizer adds another. The render option shows exactly those ids."""
    tok = bundled(tokenizer)
    ids = tok(tok.apply_chat_template(CHAT, tokenize=False))["input_ids"]
    assert ids[:2] == [tok.bos_token_id] * 2
    rendering, findings, _ = lint_conversation(tokenizer, dialect, CHAT, add_special_tokens=True)
    assert rendering.input_ids == ids
    assert "".join(t.text for t in rendering.tokens) == rendering.text
    (hit,) = by_code(findings, "double-bos")
    assert hit.severity == "error" and hit.tokens == [0, 1]
    _, findings, _ = lint_conversation(tokenizer, dialect, CHAT)
    assert by_code(findings, "double-bos") == []


def test_add_special_tokens_changes_nothing_where_the_tokenizer_adds_nothing():
    tok = bundled("qwen3")
    assert tok("Hi")["input_ids"] == tok("Hi", add_special_tokens=False)["input_ids"]
    plain, _, _ = lint_conversation("qwen3", "tokenizer", CHAT)
    added, _, _ = lint_conversation("qwen3", "tokenizer", CHAT, add_special_tokens=True)
    assert added.input_ids == plain.input_ids and added.labels == plain.labels


def test_harmonys_own_system_message_is_info_not_advice_that_cannot_be_followed():
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    _, findings, _ = lint_conversation("gptoss", "tokenizer", chat)
    hits = by_code(findings, "default-system-injected")
    assert [f.severity for f in hits] == ["info"]
    assert "You are ChatGPT" in hits[0].message and "chat_template_kwargs" in hits[0].message


def test_the_tools_block_a_row_asked_for_is_no_default_system_prompt_nor_a_marker():
    tools = (
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    )
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "P"}}}
    chat = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "18C"},
        {"role": "assistant", "content": "18C."},
    ]
    _, findings, _ = lint_conversation("qwen3", "tokenizer", chat, tools=tools)
    assert by_code(findings, "dialect-mismatch") == []
    assert by_code(findings, "default-system-injected") == []
    _, plain, _ = lint_conversation("smollm2", "tokenizer", chat[:1] + [chat[3]])
    assert by_code(plain, "default-system-injected")  # a real default still is one
