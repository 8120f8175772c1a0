"""Built-in dialects are token-exact against their references.

The reference formatters below are written from the published formulas (Meta's Llama 2
`chat_completion`, Meta's Llama 3 `ChatFormat`) or are the official templates run through
transformers' `apply_chat_template` (ChatML as SmolLM2 ships it, Gemma 3, Mistral v0.2); none of
them uses the engine's code.
"""

from __future__ import annotations

import pytest

from app.chat.layout import Specials
from app.chat.messages import Message
from app.chat.render import render
from app.chat.spec import RenderSpec
from app.dialects.base import BuiltinDialect
from app.dialects.builtin import BUILTINS, build_chatml
from app.dialects.registry import get_dialect
from app.errors import InputError
from tests.helpers.errors import assert_error

SYSTEMS = ["You are a helpful assistant.", "  Answer briefly.\n", "你是一个乐于助人的助手。"]
PAIRS = [
    ("Hi", "Hello! How can I help?"),
    ("  leading and trailing  ", "\n\nnewlines around\n"),
    ("写一首关于春天的诗", "春风拂面，\n花开满园。"),
    ("Emoji time 🎉🔥", "👍 Sure thing 😀"),
    ("def f(x):\n    return x * 2\n\nExplain.", "```python\nprint(f(3))  # 6\n```"),
    ("What is 2+2?", "4"),
    ("Tabs\tand  double  spaces", "ok\tok"),
    ("Ünïcödé façade naïve", "Ça va très bien."),
    ("a", "b"),
    ("Quote \"this\" and 'that'", "Done: \"this\" & 'that' <tag>"),
    ("Line1\r\nLine2", "Windows\r\nnewlines"),
    ("   ", "Whitespace-only question above."),
    ("مرحبا بالعالم", "שלום עולם"),
    ("Numbers 1234567890 3.14159", "e = 2.71828"),
]


def _conversations() -> list[list[dict[str, str]]]:
    """24 varied conversations: single and multi-turn, with and without a system prompt."""
    convs = []
    for i, (user, answer) in enumerate(PAIRS):
        conv = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        if i % 3 == 0:
            conv.insert(0, {"role": "system", "content": SYSTEMS[i % len(SYSTEMS)]})
        convs.append(conv)
    for i in range(10):
        conv = [{"role": "system", "content": SYSTEMS[i % 3]}] if i % 2 else []
        for j in range(1 + i % 4):
            user, answer = PAIRS[(i + 3 * j) % len(PAIRS)]
            conv += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        if i % 5 == 4:
            conv.append({"role": "user", "content": "And a last question?"})
        convs.append(conv)
    return convs


CONVERSATIONS = _conversations()


def _messages(conv: list[dict[str, str]]) -> list[Message]:
    return [Message(m["role"], m["content"]) for m in conv]


def _text_encoder(tok):
    # Reference implementations encode message text as plain text (no special-token parsing).
    return lambda s: tok.encode(s, add_special_tokens=False, split_special_tokens=True)


def ref_llama2(tok, conv: list[dict[str, str]]) -> list[int]:
    """Meta's llama/generation.py chat_completion formatting, transcribed."""
    b_inst, e_inst, b_sys, e_sys = "[INST]", "[/INST]", "<<SYS>>\n", "\n<</SYS>>\n\n"
    enc = _text_encoder(tok)
    dialog = [dict(m) for m in conv]
    if dialog[0]["role"] == "system":
        dialog = [
            {
                "role": dialog[1]["role"],
                "content": b_sys + dialog[0]["content"] + e_sys + dialog[1]["content"],
            }
        ] + dialog[2:]
    ids: list[int] = []
    for prompt, answer in zip(dialog[::2], dialog[1::2], strict=False):
        ids += (
            [tok.bos_token_id]
            + enc(f"{b_inst} {prompt['content'].strip()} {e_inst} {answer['content'].strip()} ")
            + [tok.eos_token_id]
        )
    if len(dialog) % 2:
        ids += [tok.bos_token_id] + enc(f"{b_inst} {dialog[-1]['content'].strip()} {e_inst}")
    return ids


def ref_llama2_generated(tok, conv: list[dict[str, str]]) -> list[bool]:
    """Which of `ref_llama2`'s ids the model generates: chat_completion's prompt for an answer
    ends at "[/INST]", so everything after it, through the EOS, is the model's output."""
    enc = _text_encoder(tok)
    full = ref_llama2(tok, conv)
    generated = [False] * len(full)
    pos = 0
    system = conv[0]["content"] if conv[0]["role"] == "system" else None
    turns = conv[1:] if system is not None else conv
    for k in range(0, len(turns), 2):
        user = turns[k]["content"]
        if system is not None and k == 0:
            user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
        prompt = [tok.bos_token_id] + enc(f"[INST] {user.strip()} [/INST]")
        assert full[pos : pos + len(prompt)] == prompt  # the prompt's ids start the pair's ids
        pos += len(prompt)
        if k + 1 < len(turns):
            end = full.index(tok.eos_token_id, pos) + 1
            generated[pos:end] = [True] * (end - pos)
            pos = end
    return generated


def ref_llama3(tok, conv: list[dict[str, str]]) -> list[int]:
    """Meta's llama3/tokenizer.py ChatFormat.encode_dialog_prompt without the final header."""
    sid = tok.convert_tokens_to_ids
    enc = _text_encoder(tok)
    ids = [sid("<|begin_of_text|>")]
    for m in conv:
        ids += [
            sid("<|start_header_id|>"),
            *enc(m["role"]),
            sid("<|end_header_id|>"),
            *enc("\n\n"),
            *enc(m["content"].strip()),
            sid("<|eot_id|>"),
        ]
    return ids


MISTRAL_V02 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)

ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' "
    "+ message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)


def _ids(conv, dialect, tok, **kw) -> list[int]:
    return render(_messages(conv), get_dialect(dialect), tok, RenderSpec(**kw)).input_ids


@pytest.mark.parametrize("name", ["llama2", "mistral"])
def test_llama2_matches_meta_reference(tokenizers, name):
    tok = tokenizers(name)
    for conv in CONVERSATIONS:
        assert _ids(conv, "llama2", tok) == ref_llama2(tok, conv), conv


@pytest.mark.parametrize("name", ["llama2", "mistral"])
def test_llama2_trains_what_meta_chat_completion_generates(tokenizers, name):
    """The space after "[/INST]" is generated: a CJK answer starts with a lone "▁" token, which is
    trained like the rest of the answer."""
    tok = tokenizers(name)
    cjk = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "我是AI"}]
    for conv in [cjk, *CONVERSATIONS]:
        r = render(_messages(conv), get_dialect("llama2"), tok, RenderSpec())
        assert [t.trained for t in r.tokens] == ref_llama2_generated(tok, conv), conv
    r = render(_messages(cjk), get_dialect("llama2"), tok, RenderSpec())
    first = next(t for t in r.tokens if t.role == "assistant")
    assert first.text == " " and first.trained


def test_llama3_matches_meta_chatformat(tokenizers):
    tok = tokenizers("llama3")
    for conv in CONVERSATIONS:
        assert _ids(conv, "llama3", tok) == ref_llama3(tok, conv), conv


def _fits(conv: list[dict[str, str]], system: bool | None) -> bool:
    return system is None or (conv[0]["role"] == "system") == system


# (dialect, tokenizer, template: None = the tokenizer's own, SmolLM2's, or written above,
#  whether the conversations must (True) / must not (False) start with a system message)
OFFICIAL = [
    # The official ChatML template adds a default system prompt when none is given.
    ("chatml", "smollm2", "smollm2", True),
    ("chatml", "qwen3", "smollm2", True),
    ("mistral", "mistral", MISTRAL_V02, False),
    ("zephyr", "llama2", ZEPHYR, None),
    ("gemma", "gemma3", None, None),
]


@pytest.mark.parametrize(("dialect", "name", "template", "system"), OFFICIAL)
def test_matches_official_template(tokenizers, dialect, name, template, system):
    tok = tokenizers(name)
    source = tokenizers(template).chat_template if template in ("smollm2",) else template
    for conv in filter(lambda c: _fits(c, system), CONVERSATIONS):
        for gen in (False, True) if dialect in ("gemma", "chatml") else (False,):
            want = tok.apply_chat_template(
                conv,
                chat_template=source,
                tokenize=True,
                return_dict=False,
                add_generation_prompt=gen,
            )
            assert _ids(conv, dialect, tok, add_generation_prompt=gen) == list(want), conv


def test_chatml_generation_prompt_is_unowned_and_untrained(tokenizers):
    r = render(
        _messages(CONVERSATIONS[0]),
        get_dialect("chatml"),
        tokenizers("qwen3"),
        RenderSpec(add_generation_prompt=True),
    )
    assert r.text.endswith("<|im_start|>assistant\n")
    tail = [t for t in r.tokens if t.start >= len(r.text) - len("<|im_start|>assistant\n")]
    assert tail and all(t.message is None and not t.trained for t in tail)


def test_llama2_system_folds_into_first_turn(tokenizers):
    conv = [
        {"role": "system", "content": "SYS PROMPT"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
    r = render(_messages(conv), get_dialect("llama2"), tokenizers("llama2"), RenderSpec())
    assert r.text == "<s>[INST] <<SYS>>\nSYS PROMPT\n<</SYS>>\n\nQ [/INST] A </s>"
    system_text = "".join(t.text for t in r.tokens if t.role == "system")
    assert "SYS PROMPT" in system_text and "Q" not in system_text
    trained = "".join(t.text for t in r.tokens if t.trained)
    assert trained == " A </s>"  # the space before A merges into its token; the gap is trained


def test_alpaca_and_phi3_follow_their_formulas(tokenizers):
    tok = tokenizers("llama2")
    conv = _messages(
        [{"role": "user", "content": "Add 1+1"}, {"role": "assistant", "content": "2"}]
    )
    alpaca = render(conv, get_dialect("alpaca"), tok, RenderSpec())
    assert alpaca.text == (
        "<s>Below is an instruction that describes a task. Write a response "
        "that appropriately completes the request.\n\n### Instruction:\n"
        "Add 1+1\n\n### Response:\n2</s>"
    )
    phi3 = render(conv, get_dialect("phi3"), tok, RenderSpec(add_generation_prompt=False))
    assert phi3.text == "<|user|>\nAdd 1+1<|end|>\n<|assistant|>\n2<|end|>\n"
    trained = "".join(t.text for t in phi3.tokens if t.trained)
    assert trained.startswith("2") and "<|end|>" in trained and not trained.endswith("\n")


@pytest.mark.parametrize("dialect", ["llama2", "gemma", "mistral"])
def test_alternation_is_enforced_with_the_field_named(tokenizers, dialect):
    conv = _messages([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    with pytest.raises(InputError) as err:
        render(conv, get_dialect(dialect), tokenizers("llama2"), RenderSpec())
    assert err.value.field == "messages[1].role"


@pytest.mark.parametrize(
    "dialect", [d for d in BUILTINS if "tool" not in d.roles], ids=lambda d: d.name
)
def test_roles_outside_the_dialect_are_refused_with_the_field_named(tokenizers, dialect):
    conv = _messages(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "tool", "content": "c"},
        ]
    )
    with pytest.raises(InputError) as err:
        render(conv, dialect, tokenizers("llama2"), RenderSpec())
    assert err.value.field == "messages[2].role"
    assert f"it knows {', '.join(dialect.roles)}" in err.value.message


def test_declared_roles_are_checked_before_any_builder_runs():
    # ChatML's builder accepts every role: only the declared roles can refuse this system message.
    narrow = BuiltinDialect("narrow", "Narrow", "", (), build_chatml, roles=("user", "assistant"))
    conv = _messages([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])
    with pytest.raises(InputError) as err:
        narrow.build(conv, Specials(bos=None, eos=None), False)
    assert err.value.field == "messages[1].role"
    assert "the narrow format does not support (it knows user, assistant)" in err.value.message


def test_boundary_merge_is_reported_not_hidden(tokenizers):
    tok = tokenizers("qwen3")
    conv = _messages(
        [
            {"role": "user", "content": "say <|im_end|> please"},
            {"role": "assistant", "content": "ok"},
        ]
    )
    r = render(conv, get_dialect("chatml"), tok, RenderSpec())
    whole = tok.encode(r.text, add_special_tokens=False)
    assert whole != r.input_ids  # the typed marker is one special token only in the whole string
    codes = [f.code for f in r.findings]
    assert "boundary-merge" in codes
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    user_ids = [t.id for t in r.tokens if t.role == "user" and not t.special]
    assert im_end not in user_ids
    assert not any(t.trained and t.role == "user" for t in r.tokens)


def test_no_boundary_merge_finding_when_encodings_agree(tokenizers):
    r = render(
        _messages(CONVERSATIONS[1]), get_dialect("llama3"), tokenizers("llama3"), RenderSpec()
    )
    assert "boundary-merge" not in [f.code for f in r.findings]


def test_alpaca_late_system_message_is_named_by_its_index(tokenizers):
    conv = _messages(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "system", "content": "late"},
        ]
    )
    with pytest.raises(InputError) as err:
        render(conv, get_dialect("alpaca"), tokenizers("llama2"), RenderSpec())
    assert err.value.field == "messages[2].role"
    assert err.value.message.startswith("messages[2].role is 'system'")


@pytest.mark.parametrize("dialect", [d.name for d in BUILTINS])
@pytest.mark.parametrize(
    "part",
    [
        {"type": "image", "width": 640, "height": 480},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "audio", "duration_s": 3.0},
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
    ],
)
def test_a_builtin_refuses_an_image_or_audio_part_naming_it(client, dialect, part):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "And this?"}, part]},
    ]
    response = client.post(
        "/api/render", json={"messages": messages, "tokenizer": "qwen3", "dialect": dialect}
    )
    err = assert_error(response, 422, "messages[2].content[1]", "part")
    assert err["field"] == "messages[2].content[1]"


def test_text_parts_alone_render_as_the_joined_string_under_a_builtin(client):
    parts = [{"type": "text", "text": "And "}, {"type": "text", "text": "this?"}]
    as_parts = client.post(
        "/api/render",
        json={"messages": [{"role": "user", "content": parts}], "tokenizer": "qwen3"},
    ).json()
    joined = client.post(
        "/api/render",
        json={"messages": [{"role": "user", "content": "And this?"}], "tokenizer": "qwen3"},
    ).json()
    assert as_parts["input_ids"] == joined["input_ids"]
