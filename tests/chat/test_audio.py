"""Audio placeholders expand as transformers' processors expand them (Qwen2-Audio's processor run
on real Whisper features, Gemma 3n's full audio sequence), are part `audio`, never trained, and
the lint says when placeholders and clips disagree. No bundled tokenizer has audio tokens, so a
bundled one gets the family's real token strings added (from its tokenizer config)."""

from __future__ import annotations

import copy
import functools
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from transformers import WhisperFeatureExtractor
from transformers.processing_utils import ProcessorMixin

from app.chat.images import AUDIO_FAMILIES, MediaSize, expand_images, family_for, qwen2_audio_tokens
from app.errors import InputError
from tests.helpers.lint import by_code, lint_conversation
from tests.helpers.tokenizers import bundled
from tests.zoo.templates import template_source

BY_NAME = {f.name: f for f in AUDIO_FAMILIES}
# Qwen2-Audio-7B-Instruct's added tokens; Gemma 3n's audio tokens (its tokenizer config).
QWEN2_AUDIO_TOKENS = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
GEMMA3N_AUDIO_TOKENS = ["<audio_soft_token>", "<start_of_audio>", "<end_of_audio>"]
# Qwen2-Audio's own template writes each audio part so.
QWEN2_AUDIO_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}"
    "{% if p.type == 'audio' %}Audio {{ loop.index }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif p.type == 'text' %}{{ p.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@functools.cache
def _with_tokens(name: str, tokens: tuple[str, ...]):
    tokenizer = copy.deepcopy(bundled(name))
    tokenizer.add_special_tokens({"additional_special_tokens": list(tokens)})
    return tokenizer


def with_tokens(name: str, tokens: list[str]):
    """A copy of a bundled tokenizer with `tokens` added as special tokens (copied once: the
    shared bundled tokenizer stays as it is)."""
    return _with_tokens(name, tuple(tokens))


def clip(seconds: float, text: str = "What is said?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "audio", "duration_s": seconds}, {"type": "text", "text": text}],
        },
        {"role": "assistant", "content": "Hello."},
    ]


def render_with(tokenizer, template: str, messages: list[dict], **options):
    """(rendering, findings) under a pasted template."""
    rendering, findings, _ = lint_conversation(
        tokenizer, "custom", messages, template=template, **options
    )
    return rendering, findings


@pytest.mark.parametrize("seconds", [0.5, 1.0, 3.0, 7.3, 29.99, 30.0, 45.0])
def test_qwen2_audio_counts_follow_the_processor(seconds):
    from transformers.models.qwen2_audio.processing_qwen2_audio import Qwen2AudioProcessor

    tokenizer = with_tokens("qwen3", QWEN2_AUDIO_TOKENS)
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(sampling_rate=16_000), tokenizer=tokenizer
    )
    samples = np.zeros(round(seconds * 16_000), dtype=np.float32)
    out = processor(text="<|audio_bos|><|AUDIO|><|audio_eos|>", audio=samples, sampling_rate=16_000)
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    want = sum(1 for i in out["input_ids"][0] if i == audio_id)
    assert qwen2_audio_tokens(MediaSize(duration_s=seconds)) == want


def test_gemma3n_expansion_is_the_processors_full_audio_sequence():
    from transformers.models.gemma3n.processing_gemma3n import Gemma3nProcessor

    names = dict(zip(("audio_token", "boa_token", "eoa_token"), GEMMA3N_AUDIO_TOKENS, strict=True))
    stub = SimpleNamespace(
        **names,
        audio_token_id=1,
        image_token_id=2,
        image_token="<image_soft_token>",
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
    )
    with mock.patch.object(ProcessorMixin, "__init__", lambda self, *a, **k: None):
        processor = Gemma3nProcessor(feature_extractor=None, image_processor=None, tokenizer=stub)
    out = expand_images("<audio_soft_token>", BY_NAME["gemma3n-audio"], [MediaSize()])
    assert out.text == processor.full_audio_sequence


def test_the_audio_family_is_recognised_by_its_tokens():
    assert family_for(bundled("qwen3").get_vocab(), "audio") is None
    qwen = with_tokens("qwen3", QWEN2_AUDIO_TOKENS)
    assert family_for(qwen.get_vocab(), "audio") is BY_NAME["qwen2-audio"]
    gemma = with_tokens("gemma3", GEMMA3N_AUDIO_TOKENS)
    assert family_for(gemma.get_vocab(), "audio") is BY_NAME["gemma3n-audio"]


def test_gemma3n_audio_renders_as_the_processor_writes_it_and_is_never_trained():
    tokenizer = with_tokens("gemma3", GEMMA3N_AUDIO_TOKENS)
    source = template_source("axolotl/gemma3n")
    messages = clip(4.0)
    for train_on in ("assistant", "all"):
        rendering, findings = render_with(tokenizer, source, messages, train_on=train_on)
        audio = [t for t in rendering.tokens if t.part == "audio"]
        assert sum(t.text == "<audio_soft_token>" for t in audio) == 188
        assert all(t.role == "user" for t in audio)
        # Under train_on=all only the newline token that merges into the turn header is trained
        # (it straddles the edge); no audio token ever is.
        assert not any(t.trained for t in audio if t.text in GEMMA3N_AUDIO_TOKENS)
        if train_on == "assistant":
            assert not any(t.trained for t in audio)
        assert by_code(findings, "audio-count-mismatch") == []
    # Reference: transformers renders the template, the processor expands the placeholder.
    text = tokenizer.apply_chat_template(messages, chat_template=source, tokenize=False)
    assert rendering.text == text.replace(
        "<audio_soft_token>",
        "\n\n<start_of_audio>" + "<audio_soft_token>" * 188 + "<end_of_audio>\n\n",
    )
    assert "".join(t.text for t in rendering.tokens) == rendering.text


def test_qwen2_audio_renders_one_pad_per_encoder_position():
    tokenizer = with_tokens("qwen3", QWEN2_AUDIO_TOKENS)
    rendering, findings = render_with(tokenizer, QWEN2_AUDIO_TEMPLATE, clip(3.0))
    audio = [t for t in rendering.tokens if t.part == "audio"]
    assert [t.text for t in audio] == ["<|AUDIO|>"] * 75
    assert not any(t.trained for t in audio)
    assert "".join(t.text for t in rendering.tokens if t.trained) == "Hello.<|im_end|>"
    assert by_code(findings, "audio-count-mismatch") == []


def test_a_template_that_drops_the_clip_is_an_audio_count_mismatch():
    tokenizer = with_tokens("qwen3", QWEN2_AUDIO_TOKENS)
    text_only = QWEN2_AUDIO_TEMPLATE.replace(
        "Audio {{ loop.index }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n", ""
    )
    _, findings = render_with(tokenizer, text_only, clip(3.0))
    hits = by_code(findings, "audio-count-mismatch")
    assert hits and "1 audio clip(s) but the template wrote 0" in hits[0].message


def test_qwen2_audio_needs_the_clip_length():
    tokenizer = with_tokens("qwen3", QWEN2_AUDIO_TOKENS)
    messages = clip(3.0)
    del messages[0]["content"][0]["duration_s"]
    with pytest.raises(InputError, match="duration_s"):
        render_with(tokenizer, QWEN2_AUDIO_TEMPLATE, messages)


def test_the_188_audio_tokens_show_as_one_chip_with_their_count():
    from app.views.chips import chips_html

    tokenizer = with_tokens("gemma3", GEMMA3N_AUDIO_TOKENS)
    rendering, _ = render_with(tokenizer, template_source("axolotl/gemma3n"), clip(2.0))
    html = str(chips_html(rendering, tokenizer))
    assert html.count('data-rep="188"') == 1
    assert html.count(" ih") == 187  # the repeats stay in place, hidden until the chip opens
