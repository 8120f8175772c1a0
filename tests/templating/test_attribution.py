"""Role attribution for Jinja templates, checked against transformers.

Ids must equal `apply_chat_template(tokenize=True)`; where a template has `{% generation %}`
tags the trained positions must equal `return_assistant_tokens_mask`; on templates without tags
each message's own content must be attributed to it.
"""

from __future__ import annotations

import pytest

from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.registry import get_dialect
from app.errors import TemplateError

CONVS = [
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ],
    [
        {"role": "user", "content": "  spaced  "},
        {"role": "assistant", "content": "\nok\n"},
        {"role": "user", "content": "写诗"},
        {"role": "assistant", "content": "春眠不觉晓 🌸"},
    ],
    [
        {"role": "user", "content": "assistant"},
        {"role": "assistant", "content": "user"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "a"},
    ],
    [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "code?"},
        {"role": "assistant", "content": "```py\nx = 1\n```"},
        {"role": "user", "content": "more"},
    ],
    [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "five"},
        {"role": "assistant", "content": "six"},
    ],
    # Contents that also spell the role headers, with whitespace that trimming templates drop.
    [
        {"role": "user", "content": "user\n"},
        {"role": "assistant", "content": " assistant "},
        {"role": "user", "content": "\nmodel"},
        {"role": "assistant", "content": "<think>"},
    ],
]

TAGGED_CHATML = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TAGGED_LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim }}"
    "{{ '<|eot_id|>' }}{% endgeneration %}{% else %}{{ message['content'] | trim + '<|eot_id|>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)

LLAMA2_HF = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

# Closes each turn when the next one opens: the end-of-turn token is emitted in the next
# message's loop iteration, and loop.last / loop.nextitem peek ahead.
CLOSE_LATE = (
    "{% for m in messages %}{% if not loop.first %}<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}{% if loop.last %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Index loop: no iteration over `messages` at all.
BY_INDEX = (
    "{% for i in range(messages | length) %}<|im_start|>{{ messages[i].role }}\n"
    "{{ messages[i].content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _msgs(conv):
    return [Message(m["role"], m["content"]) for m in conv]


def _check_contents(r, conv):
    """Every message's content (as rendered) is attributed to that message."""
    for span in r.spans:
        content = r.text[span.content_start : span.content_end]
        assert content.strip() == conv[span.message]["content"].strip(), (span, content)
        inside = [
            t
            for t in r.tokens
            if t.start >= span.content_start and t.end <= span.content_end and t.end > t.start
        ]
        assert all(t.message == span.message for t in inside), span


@pytest.mark.parametrize("name", ["smollm2", "qwen3", "llama3", "gemma3"])
def test_tokenizer_template_ids_equal_apply_chat_template(tokenizers, name):
    tok = tokenizers(name)
    for conv in CONVS:
        if name == "gemma3" and any(m["role"] == "system" for m in conv[1:]):
            continue
        for gen in (False, True):
            want = tok.apply_chat_template(
                conv, tokenize=True, return_dict=False, add_generation_prompt=gen
            )
            r = render(
                _msgs(conv), get_dialect("tokenizer"), tok, RenderSpec(add_generation_prompt=gen)
            )
            assert r.input_ids == list(want)
            assert "".join(t.text for t in r.tokens) == r.text
            _check_contents(r, conv)


@pytest.mark.parametrize("template", [TAGGED_CHATML, TAGGED_LLAMA3])
@pytest.mark.parametrize("name", ["qwen3", "llama3"])
def test_generation_tags_equal_assistant_masks(tokenizers, template, name):
    tok = tokenizers(name)
    for conv in CONVS:
        want = tok.apply_chat_template(
            conv,
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        r = render(_msgs(conv), get_dialect("custom"), tok, RenderSpec(template=template))
        assert r.input_ids == list(want["input_ids"])
        assert [int(t.trained) for t in r.tokens] == list(want["assistant_masks"])


@pytest.mark.parametrize(
    ("template", "name"),
    [(TAGGED_CHATML, "qwen3"), (TAGGED_CHATML, "smollm2"), (TAGGED_LLAMA3, "llama3")],
)
def test_untagged_template_trains_what_the_tagged_one_marks(tokenizers, template, name):
    """Attribution without tags agrees with transformers' mask on the tagged twin (for a
    tokenizer whose end-of-turn marker is a special token, as the template expects)."""
    tok = tokenizers(name)
    untagged = template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    for conv in CONVS:
        want = tok.apply_chat_template(
            conv,
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        r = render(_msgs(conv), get_dialect("custom"), tok, RenderSpec(template=untagged))
        assert [int(t.trained) for t in r.tokens] == list(want["assistant_masks"])


def test_llama2_hf_template_folds_system_and_matches(tokenizers):
    tok = tokenizers("llama2")
    conv = CONVS[0] + [{"role": "user", "content": "again"}, {"role": "assistant", "content": "ok"}]
    want = tok.apply_chat_template(conv, chat_template=LLAMA2_HF, tokenize=True, return_dict=False)
    r = render(_msgs(conv), get_dialect("custom"), tok, RenderSpec(template=LLAMA2_HF))
    assert r.input_ids == list(want)
    _check_contents(r, conv)
    system = "".join(t.text for t in r.tokens if t.role == "system")
    assert system.strip() == "Be brief."
    trained = [t.text for t in r.tokens if t.trained]
    assert "".join(trained) == " Hello! </s> ok </s>"


@pytest.mark.parametrize("template", [CLOSE_LATE, BY_INDEX])
def test_unusual_loops_still_attribute_contents(tokenizers, template):
    tok = tokenizers("qwen3")
    conv = CONVS[4]
    r = render(_msgs(conv), get_dialect("custom"), tok, RenderSpec(template=template))
    _check_contents(r, conv)
    trained = "".join(t.text for t in r.tokens if t.trained)
    assert trained == "two<|im_end|>four<|im_end|>six<|im_end|>"
    assert not any(t.trained and t.role != "assistant" for t in r.tokens)


def test_rewritten_content_is_reported(tokenizers):
    template = "{% for m in messages %}{{ m.role }}: {{ m.content[:2] }}|{% endfor %}"
    conv = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]
    r = render(
        _msgs(conv), get_dialect("custom"), tokenizers("qwen3"), RenderSpec(template=template)
    )
    assert "content-not-found" in [f.code for f in r.findings]


def test_template_errors_name_the_problem(tokenizers):
    tok = tokenizers("qwen3")
    conv = _msgs(CONVS[0])
    with pytest.raises(TemplateError) as err:
        render(
            conv,
            get_dialect("custom"),
            tok,
            RenderSpec(template="{{ raise_exception('no system') }}"),
        )
    assert "no system" in err.value.message
    with pytest.raises(TemplateError) as err:
        render(
            conv, get_dialect("custom"), tok, RenderSpec(template="{% for m in messages %}\n{{ m }")
        )
    assert "line 2" in err.value.message


def test_tojson_does_not_escape_html(tokenizers):
    template = "{% for m in messages %}{{ m | tojson }}{% endfor %}"
    conv = [Message("user", "<b>&'x'</b>")]
    r = render(
        conv, get_dialect("tokenizer"), _with_template(tokenizers("qwen3"), template), RenderSpec()
    )
    assert r.text == '{"role": "user", "content": "<b>&\'x\'</b>"}'


def _with_template(tok, template):
    import copy

    clone = copy.copy(tok)
    clone.chat_template = template
    return clone


def test_only_bundled_templates_render_in_process(tokenizers, settings, tmp_path):
    from app.dialects.jinja import trusted_template

    tok = tokenizers("qwen3")
    assert trusted_template("tokenizer", tok, settings)
    assert not trusted_template("custom", tok, settings)
    local = _with_template(tok, tok.chat_template)
    local.name_or_path = str(tmp_path / "qwen3")
    assert not trusted_template("tokenizer", local, settings)
    r = render(_msgs(CONVS[0]), get_dialect("tokenizer"), local, RenderSpec())  # through the worker
    assert r.input_ids == list(tok.apply_chat_template(CONVS[0], tokenize=True, return_dict=False))


def test_tool_calls_are_trained_as_assistant_output(tokenizers):
    from app.chat.messages import parse_row

    tok = tokenizers("qwen3")
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    for content in ("Let me check.", ""):
        rows = [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": content, "tool_calls": [call]},
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
        conv = parse_row({"messages": rows})
        r = render(conv, get_dialect("tokenizer"), tok, RenderSpec())
        assert r.input_ids == list(tok.apply_chat_template(rows, tokenize=True, return_dict=False))
        trained = "".join(t.text for t in r.tokens if t.trained)
        lead = f"{content}\n" if content else ""
        assert trained == (
            f'{lead}<tool_call>\n{{"name": "get_weather", "arguments": '
            '{"city": "Paris"}}\n</tool_call><|im_end|>'
            # Qwen3 writes an empty think block on the turn after the tool result and its
            # generation prompt does not: the model generates it.
            "<think>\n\n</think>\n\nSunny.<|im_end|>"
        )
        calls = "".join(t.text for t in r.tokens if t.part == "tool_call")
        assert calls.startswith("<tool_call>") and calls.endswith("</tool_call>")
        assert "<tool_response>\nsunny\n</tool_response>" in "".join(
            t.text for t in r.tokens if t.role == "tool"
        )
