"""Image placeholders expand as transformers' processors expand them (their own code as the
reference: torchvision is not installed here, so the pieces that need no image are used alone)."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from unittest import mock

import pytest
import transformers
from transformers.processing_utils import ProcessorMixin

from app.chat.images import (
    FAMILIES,
    QWEN3_VL,
    MediaSize,
    expand_images,
    family_for,
    qwen_vl_tokens,
    smart_resize,
)
from app.errors import InputError
from tests.helpers.tokenizers import bundled

MODELS = Path(transformers.__file__).parent / "models"
BY_NAME = {f.name: f for f in FAMILIES}


def _transformers_smart_resize():
    """transformers' own `smart_resize` (Qwen2-VL), compiled alone from its source file."""
    source = (MODELS / "qwen2_vl" / "image_processing_qwen2_vl.py").read_text()
    node = next(
        n
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and n.name == "smart_resize"
    )
    namespace: dict = {"math": math}
    exec(compile(ast.Module([node], []), "smart_resize", "exec"), namespace)
    return namespace["smart_resize"]


@pytest.mark.parametrize(
    ("width", "height"), [(640, 480), (1920, 1080), (28, 28), (4000, 3000), (100, 1000), (13, 57)]
)
def test_qwen_vl_counts_follow_the_processor(width, height):
    reference = _transformers_smart_resize()
    h_bar, w_bar = reference(
        height, width, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280
    )
    assert smart_resize(height, width) == (h_bar, w_bar)
    # Qwen2VLProcessor: grid_t * grid_h * grid_w // merge_size**2, one frame for an image.
    assert qwen_vl_tokens(MediaSize(width, height)) == (h_bar // 14) * (w_bar // 14) // 4


@pytest.mark.parametrize(
    ("width", "height"), [(640, 480), (1920, 1080), (32, 32), (8000, 6000), (100, 1000), (13, 57)]
)
def test_qwen3_vl_counts_follow_the_processor_with_its_published_sizes(width, height):
    # Qwen3-VL's preprocessor config: patch_size 16, merge_size 2, and size
    # {"shortest_edge": 65536, "longest_edge": 16777216}, which Qwen2VLImageProcessor passes to
    # smart_resize as min_pixels / max_pixels with factor patch_size * merge_size.
    reference = _transformers_smart_resize()
    h_bar, w_bar = reference(height, width, factor=32, min_pixels=65_536, max_pixels=16_777_216)
    assert qwen_vl_tokens(MediaSize(width, height), grid=QWEN3_VL) == (
        (h_bar // 16) * (w_bar // 16) // 4
    )


def test_the_grids_give_the_documented_counts():
    assert qwen_vl_tokens(MediaSize(640, 480)) == 391
    assert qwen_vl_tokens(MediaSize(640, 480), grid=QWEN3_VL) == 300


def test_gemma3_expansion_is_the_processors_full_image_sequence():
    from transformers.models.gemma3.processing_gemma3 import Gemma3Processor

    with mock.patch.object(ProcessorMixin, "__init__", lambda self, *a, **k: None):
        processor = Gemma3Processor(image_processor=None, tokenizer=bundled("gemma3"))
    out = expand_images("<start_of_image>", BY_NAME["gemma3"], [MediaSize()])
    assert out.text == processor.full_image_sequence
    assert out.text.count("<image_soft_token>") == 256


def test_offsets_after_an_image_move_by_its_expansion():
    llava = BY_NAME["llava"]
    out = expand_images("a<image>bc<image>d", llava, [MediaSize(), MediaSize()])
    assert out.text == "a" + "<image>" * 576 + "bc" + "<image>" * 576 + "d"
    assert out.images == [(1, 1 + 576 * 7), (3 + 576 * 7, 3 + 2 * 576 * 7)]
    assert out.text[out.position(8)] == "b"  # old "b" at 8
    assert out.position(0) == 0 and out.position(1) == 1


def test_the_family_is_recognised_by_its_image_tokens():
    gemma = bundled("gemma3")
    assert family_for(set(gemma.get_vocab())) is BY_NAME["gemma3"]
    # Qwen3's vocabulary (shared by Qwen3-VL) has <think>; without it, the image tokens alone
    # are Qwen2.5-VL's.
    qwen = set(bundled("qwen3").get_vocab())
    assert family_for(qwen) is BY_NAME["qwen3-vl"]
    assert family_for(qwen - {"<think>"}) is BY_NAME["qwen-vl"]
    assert family_for(set(bundled("llama3").get_vocab())) is None


def test_qwen_vl_needs_the_image_size_and_says_which_field():
    with pytest.raises(InputError, match="width and height"):
        qwen_vl_tokens(MediaSize(None, 480))
