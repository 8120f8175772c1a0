"""What a fine-tune job asks for, checked before anything is stored.

The shape (types, ranges, NaN) is checked by pydantic, so the web layer turns a bad body into one
422; the limits that depend on settings (steps, length, dialect, model) by `check_spec`, which
raises the core's own errors naming the setting to change.

Everything a job will read is bounded here, at submit time: each sample prompt in tokens (so a
job never spends minutes answering one huge prompt) and a Hub model id must be in the local HF
cache or reachable now (offline, it is a 424 at once, not a job that fails later).

Design concession: a model reference is either a bundled asset name, a local directory under the
allowed roots, or a Hub id; no remote code is ever trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.chat.spec import RenderSpec, TrainOn, freeze_kwargs, freeze_tools
from app.chat.tokenizer import Tokenizer
from app.dialects.registry import dialect_names
from app.errors import InputError, LimitError, UnavailableError
from app.settings import Settings
from app.tokenizers import hub, paths
from app.tokenizers.registry import bundled_names, load_tokenizer
from app.train.data import prompt_ids


class DataSpec(BaseModel):
    """Either inline conversations (rows in any format the engine parses) or a bundled dataset."""

    model_config = ConfigDict(extra="forbid")
    conversations: list[Any] | None = None
    dataset: Literal["demo"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DataSpec:
        if (self.conversations is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'conversations' or 'dataset'")
        if self.conversations is not None and not self.conversations:
            raise ValueError("'conversations' is empty")
        return self


class JobSpec(BaseModel):
    """A fine-tune job. Example: {"model": "smollm2", "data": {"dataset": "demo"}, "steps": 20}"""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("smollm2", min_length=1, max_length=400)
    tokenizer: str | None = Field(None, max_length=400)
    dialect: str = Field("tokenizer", min_length=1, max_length=100)
    train_on: TrainOn = "assistant"
    data: DataSpec = Field(default_factory=lambda: DataSpec(dataset="demo"))
    steps: int = Field(30, ge=1)
    batch_size: int = Field(4, ge=1, le=1024)
    grad_accum: int = Field(1, ge=1, le=1024)
    max_length: int = Field(256, ge=8)
    learning_rate: float = Field(5e-5, gt=0, le=1.0, allow_inf_nan=False)
    warmup_steps: int | None = Field(None, ge=0)
    neftune_alpha: float = Field(5.0, ge=0, le=1000, allow_inf_nan=False)
    neftune_mode: Literal["paper", "hf"] = "paper"
    compare_baseline: bool = False
    pack: bool = False
    seed: int = Field(0, ge=0, le=2**31 - 1)
    sample_prompts: list[str] | None = Field(None, max_length=16)
    max_new_tokens: int = Field(48, ge=1, le=512)
    eval_examples: int = Field(8, ge=0, le=256)
    eval_every: int | None = Field(None, ge=1)
    # What the template sees besides the messages, and what of a turn is trained (as in
    # POST /api/render); a row's own tools / chat_template_kwargs columns win for that row.
    tools: list[dict[str, Any]] | None = Field(None, max_length=256)
    chat_template_kwargs: dict[str, Any] | None = None
    train_reasoning: bool = True
    train_tool_calls: bool = True

    @property
    def arms(self) -> list[tuple[str, float]]:
        """(arm name, alpha) in the order they train."""
        return arms_of(self.neftune_alpha, self.compare_baseline)

    @property
    def eval_interval(self) -> int:
        """Steps between held-out evaluations: `eval_every`, else about ten points per arm."""
        return self.eval_every or max(1, self.steps // 10)

    @property
    def total_steps(self) -> int:
        """Optimizer steps over all arms: what progress counts to."""
        return self.steps * len(self.arms)

    def render_spec(self) -> RenderSpec:
        """What the engine renders the training data with: the labels the browser shows.

        Example: JobSpec(model="smollm2", dialect="chatml").render_spec()
                 -> RenderSpec(tokenizer="smollm2", dialect="chatml", train_on="assistant", ...)
        """
        return RenderSpec(
            tokenizer=self.tokenizer or self.model,
            dialect=self.dialect,
            train_on=self.train_on,
            max_length=self.max_length,
            tools=freeze_tools(self.tools),
            chat_template_kwargs=freeze_kwargs(self.chat_template_kwargs),
            train_reasoning=self.train_reasoning,
            train_tool_calls=self.train_tool_calls,
        )


def arms_of(alpha: float, compare_baseline: bool) -> list[tuple[str, float]]:
    """Example: arms_of(5.0, True) -> [("neftune", 5.0), ("baseline", 0.0)]"""
    main = ("neftune", alpha) if alpha > 0 else ("plain", 0.0)
    return [main, ("baseline", 0.0)] if compare_baseline and alpha > 0 else [main]


def check_spec(spec: JobSpec, settings: Settings) -> None:
    """Settings-dependent checks; raise before anything is stored."""
    if spec.steps > settings.max_train_steps:
        raise LimitError(
            f"steps={spec.steps} is over the limit of {settings.max_train_steps}; "
            "it is limited by the max_train_steps setting.",
            field="steps",
            setting="max_train_steps",
        )
    if spec.max_length > settings.max_train_length:
        raise LimitError(
            f"max_length={spec.max_length} is over the limit of "
            f"{settings.max_train_length}; it is limited by the max_train_length "
            "setting.",
            field="max_length",
            setting="max_train_length",
        )
    rows = spec.data.conversations or []
    if len(rows) > settings.max_train_conversations:
        raise LimitError(
            f"{len(rows)} conversations is over the limit of "
            f"{settings.max_train_conversations}; it is limited by the "
            "max_train_conversations setting.",
            field="data.conversations",
            setting="max_train_conversations",
        )
    _check_dialect(spec.dialect)
    model = resolve_model(spec.model, settings)
    if hub.is_hub_id(model) and model == spec.model:
        _check_hub_model(model)
    tokenizer = load_tokenizer(spec.render_spec().tokenizer, settings)
    sample_prompt_ids(spec.sample_prompts or [], spec, tokenizer, settings)


def sample_prompt_ids(
    prompts: list[str], spec: JobSpec, tokenizer: Tokenizer, settings: Settings
) -> list[list[int]]:
    """Each prompt as the model sees it (with the assistant header); one over the bound: refused.

    Example: ["Hi?"] -> [[1, 9690, ...]]; a 30k-token prompt -> LimitError naming
    max_sample_prompt_tokens.
    """
    render_spec, limit = spec.render_spec(), settings.max_sample_prompt_tokens
    out = []
    for index, prompt in enumerate(prompts):
        ids = prompt_ids(prompt, render_spec, tokenizer)
        if len(ids) > limit:
            raise LimitError(
                f"sample_prompts[{index}] is {len(ids)} tokens, over the limit of {limit}; "
                "it is limited by the max_sample_prompt_tokens setting.",
                field=f"sample_prompts[{index}]",
                setting="max_sample_prompt_tokens",
            )
        out.append(ids)
    return out


def _check_hub_model(ref: str) -> None:
    """A Hub model must be loadable now: in the local HF cache, or on a reachable Hub."""
    # Imported here: only a Hub id needs the Hub client.
    from huggingface_hub import HfApi, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(ref, "config.json"), str):
        return
    try:
        files = [s.rfilename for s in HfApi().model_info(ref, timeout=hub.TIMEOUT_S).siblings or []]
    except Exception as exc:  # any failure of the Hub client (DNS, HTTP, 404) means not loadable
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UnavailableError(
            f"The Hub model {ref} is not in the local HF cache and the Hub is not reachable "
            f"({reason}); use a bundled model or a folder under the tokenizer_roots setting. "
            "Change the 'model' field.",
            field="model",
        ) from exc
    if not any(name.endswith(".safetensors") for name in files):
        raise InputError(
            f"The Hub model {ref} has no safetensors weights (pickle weights are refused). "
            "Change the 'model' field.",
            field="model",
        )


def _check_dialect(dialect: str) -> None:
    # a job has no field for a pasted template, so "custom" cannot be trained on
    known = set(dialect_names()) - {"custom"}
    if dialect not in known:
        raise InputError(
            f"Unknown dialect {dialect!r}; choose one of {sorted(known)}. "
            "Change the 'dialect' field.",
            field="dialect",
        )


def resolve_model(ref: str, settings: Settings) -> str:
    """A bundled name -> its asset folder; a folder under the allowed roots -> itself; a Hub id.

    Example: "smollm2" -> "~/.cache/maskscope/assets/smollm2"
    """
    if ref in bundled_names():
        bundled = settings.assets_dir / ref
        if (bundled / "config.json").is_file():
            return str(bundled)
        raise UnavailableError(
            f"No model weights for {ref!r} in {bundled}: of the bundled "
            "assets only smollm2 has a model (fetch it with `maskscope "
            "assets fetch`). Change the 'model' field.",
            field="model",
        )
    try:
        folder = paths.resolve_local(
            ref, settings.tokenizer_roots, must_exist=paths.looks_like_path(ref)
        )
    except InputError as exc:
        exc.field = "model"
        raise
    if folder is not None:
        return _model_folder(folder)
    if hub.is_hub_id(ref):
        if not settings.allow_hub:
            raise UnavailableError(
                "Hub ids are disabled by the allow_hub setting.", field="model", setting="allow_hub"
            )
        return ref
    raise InputError(
        f"Unknown model {ref!r}: give a bundled name, a folder under the "
        "tokenizer_roots setting, or a Hub id. Change the 'model' field.",
        field="model",
        setting="tokenizer_roots",
    )


def _model_folder(folder: Path) -> str:
    if not (folder / "config.json").is_file():
        raise InputError(
            f"The folder {folder.name!r} holds no config.json. Change the 'model' field.",
            field="model",
        )
    if not any(folder.glob("*.safetensors")):
        raise InputError(
            f"The folder {folder.name!r} holds no safetensors weights (pickle "
            "weights are refused). Change the 'model' field.",
            field="model",
        )
    return str(folder)
