"""RenderSpec: what to render and how to mask, as one typed value every surface converts to once.

The JSON API, the editor pages, the CLI, dataset inspection, template workers and fine-tune jobs
each turn their own input into a RenderSpec in one place; the engine, the lints and the trainer
read only this. Fields for new request options (tools, template kwargs, reasoning and tool-call
masking) are added here and nowhere else.

Example: RenderSpec(tokenizer="llama3", dialect="llama3", train_on="last_assistant")
         -> everything but the last assistant answer (and its <|eot_id|>) gets label -100

Design concession: `tokenizer` and `dialect` are references (names, folders, Hub ids), resolved
by the layers that own them (app.tokenizers, app.dialects); the engine itself takes the resolved
objects, so it never looks a name up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TrainOn = Literal["assistant", "last_assistant", "all"]
TRAIN_ON: tuple[TrainOn, ...] = get_args(TrainOn)
DEFAULT_TOKENIZER = "smollm2"
DEFAULT_DIALECT = "chatml"


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What to render (tokenizer, dialect, template) and how to mask it.

    `template`: the Jinja source when `dialect` is "custom". `max_length`: cut the rendering at
    this many tokens (None: keep all). `train_on_eot`: train the marker that closes a trained turn.
    `add_special_tokens`: tokenize the rendered text as `tokenizer(text)` does by default, adding
    the tokenizer's own BOS (and EOS, where it adds one) around it: the common pipeline
    "apply_chat_template(tokenize=False), then tokenizer(text)", which doubles the BOS of
    templates that write `bos_token` (Llama 3, Gemma).
    """

    tokenizer: str = DEFAULT_TOKENIZER
    dialect: str = DEFAULT_DIALECT
    template: str | None = None
    train_on: TrainOn = "assistant"
    train_on_eot: bool = True
    add_generation_prompt: bool = False
    max_length: int | None = None
    add_special_tokens: bool = False
