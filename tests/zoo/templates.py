"""Which bundled tokenizer each zoo template is rendered with, and the template sources.

Each template gets the bundled tokenizer of its model family where there is one. For the others
the closest bundled one stands in: its vocabulary differs, so the template's special strings are
ordinary text to it, which still tests the text and every character boundary (a marker split into
several tokens must be trained as a whole).

Example: TOKENIZER_FOR["trl/phi3"] -> "llama2"; template_source("trl/qwen3") -> "{%- if tools %}..."
"""

from __future__ import annotations

import functools

import pytest

from app.assets.zoo import zoo_names, zoo_templates
from app.settings import Settings
from tests.helpers.assets import in_ci


def _each(tokenizer: str, names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), tokenizer)


TOKENIZER_FOR: dict[str, str] = {
    # ChatML and its relatives (Qwen, LFM2, Nemotron, GLM's role tokens): Qwen3's tokenizer has
    # <|im_start|>/<|im_end|> as special tokens.
    **_each(
        "qwen3",
        "trl/qwen2_5 trl/qwen2_5_training trl/qwen2_5_vl trl/qwen2_5_vl_training trl/qwen3 "
        "trl/qwen3_training trl/qwen3_5_nothink trl/qwen3_5_nothink_training trl/qwen3_5_think "
        "trl/qwen3_5_think_training trl/qwen3_6 trl/qwen3_6_training trl/qwen3_8 "
        "trl/qwen3_8_training trl/qwen3_instruct_2507 trl/qwen3_instruct_2507_training "
        "trl/qwen3_vl trl/qwen3_vl_training trl/glm4moe trl/glm4moe_training trl/lfm2 "
        "trl/lfm2_training trl/lfm2_v2 trl/lfm2_v2_training trl/lfm2_2_5 trl/lfm2_2_5_v2 "
        "trl/lfm2_2_5_vl trl/nemotron_3_5_lightning trl/nemotron_3_5_lightning_training "
        "trl/nemotron_3_nano trl/nemotron_3_nano_training trl/nemotron_3_super "
        "trl/nemotron_3_super_training trl/nemotron_3_ultra trl/nemotron_3_ultra_training "
        "axolotl/qwen2_vl axolotl/qwen3 axolotl/qwen3_5 axolotl/qwen_25 axolotl/nemotron_h "
        "axolotl/falcon_h1",
    ),
    # SmolLM2 is the official ChatML model; SmolVLM is built on it.
    **_each("smollm2", "axolotl/chatml trl/smolvlm trl/smolvlm_training"),
    # Llama 3.x, and models built on it (Idefics3 is Llama 3.1 with a vision encoder).
    **_each(
        "llama3",
        "trl/llama3 trl/llama3_1 trl/llama3_2 trl/llama3_training axolotl/llama3 "
        "axolotl/llama3_2_vision axolotl/llama4 trl/idefics3 trl/idefics3_training",
    ),
    **_each(
        "gemma3",
        "trl/gemma trl/gemma_training trl/gemma3 trl/gemma3_training trl/gemma4 trl/gemma4_v2 "
        "trl/gemma4_v3 trl/gemma4_v4 trl/gemma4_v5 trl/diffusion_gemma "
        "trl/diffusion_gemma_training axolotl/gemma axolotl/gemma3 axolotl/gemma3n "
        "axolotl/gemma4 axolotl/gemma4_unified",
    ),
    # [INST] formats: Mistral's own, and LLaVA-NeXT (on Mistral-7B). Jamba's SentencePiece
    # vocabulary is closest to Mistral's among the bundled ones.
    **_each(
        "mistral",
        "axolotl/mistral_v1 axolotl/mistral_v2v3 axolotl/mistral_v3_tekken "
        "axolotl/mistral_v7_tekken axolotl/pixtral trl/llava_next trl/llava_next_training "
        "axolotl/jamba",
    ),
    # Phi-3's vocabulary is Llama 2's; Alpaca, LLaVA 1.5 (Vicuna) and Metharme (Pygmalion) are
    # fine-tunes of LLaMA.
    **_each(
        "llama2",
        "trl/phi3 trl/phi3_training trl/phi3_5 trl/phi3_5_training axolotl/phi_3 axolotl/phi_35 "
        "axolotl/alpaca axolotl/llava axolotl/metharme",
    ),
    **_each(
        "deepseek_v3",
        "trl/deepseekv3 trl/deepseekv3_training trl/deepseek_r1_distill "
        "trl/deepseek_r1_distill_training axolotl/deepseek_v2 axolotl/deepseek_v3",
    ),
    # Muse Glimmer's <|start|>/<|message|> framing is harmony's, which the gpt-oss tokenizer knows.
    **_each("gptoss", "trl/gptoss trl/gptoss_training trl/muse_glimmer trl/muse_glimmer_training"),
    # No bundled tokenizer of their own: Cohere/Command A, EXAONE and Phi-4 use byte-level BPE
    # vocabularies, which Qwen3's byte-level tokenizer stands in for.
    **_each(
        "qwen3",
        "trl/cohere trl/cohere_training trl/cohere2 trl/cohere2_training axolotl/cohere "
        "axolotl/aya axolotl/command_a axolotl/command_a_rag axolotl/command_a_tool_use "
        "axolotl/exaone axolotl/exaone4 axolotl/phi_4",
    ),
}


def tokenizer_for(name: str) -> str:
    return TOKENIZER_FOR[name]


@functools.cache
def template_source(name: str) -> str:
    """The zoo template's Jinja source (skips the test, or fails it in CI, when not fetched)."""
    path = zoo_templates(Settings.from_env().assets_dir).get(name)
    if path is None:
        asset = "templates-" + name.split("/", 1)[0]
        message = f"{asset} is not fetched or does not verify: run `maskscope assets fetch {asset}`"
        if in_ci():
            pytest.fail(f"{message}; CI runs every real-asset test", pytrace=False)
        pytest.skip(message)
    return path.read_text(encoding="utf-8")


ALL_TEMPLATES: list[str] = zoo_names()
