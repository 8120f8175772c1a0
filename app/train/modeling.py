"""Loading and saving the model a job fine-tunes.

CUDA: fp32 master weights with bf16 autocast; CPU: fp32. Weights load only from safetensors and
remote code is never trusted. Design concession: the saved tokenizer keeps its own chat template;
built-in dialects are Python formatters with no Jinja to save, so a job trained with one of them
saves the tokenizer's template (the same format for the matching family, e.g. ChatML on SmolLM2).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from app.chat.tokenizer import Tokenizer
from app.settings import Settings
from app.tokenizers.registry import load_tokenizer
from app.train.distributed import Dist
from app.train.spec import JobSpec

log = logging.getLogger(__name__)

# End-of-turn markers of the common chat formats, used as extra stop tokens when sampling.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")


def load_model(path: str, dist: Dist) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch.float32,
        attn_implementation="sdpa",
        trust_remote_code=False,
        use_safetensors=True,
    )
    return model.to(dist.device)


def load_training_tokenizer(spec: JobSpec, settings: Settings) -> Any:
    """The job's tokenizer: `tokenizer` when given, else the model's own (same registry rules)."""
    return load_tokenizer(spec.render_spec().tokenizer, settings)


def stop_token_ids(tokenizer: Tokenizer) -> list[int]:
    """eos plus whichever end-of-turn markers this vocabulary has. Example: ChatML -> [2, 2]"""
    ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in END_OF_TURN if t in vocab and vocab[t] not in ids]
    return ids or [0]


def save_model(model: torch.nn.Module, tokenizer: Tokenizer, spec: JobSpec, out: Path) -> list[str]:
    """Write safetensors weights, config and tokenizer (with chat template); return file names."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if not tokenizer.chat_template:
        log.warning("the tokenizer has no chat template; the saved model will have none either")
    elif spec.dialect != "tokenizer":
        log.warning(
            "trained with the %s dialect; the saved chat template is the tokenizer's own",
            spec.dialect,
        )
    tokenizer.save_pretrained(out)
    return sorted(p.name for p in out.iterdir() if p.is_file())
