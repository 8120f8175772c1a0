"""Score a rendering with a causal LM: the use case behind POST /api/score, `maskscope score`
and the playground's loss view; and rank a dataset's rows by their mean trained loss.

The ids scored are the very ids `render` gives the mask view (`render_messages`), so the loss
sits on the same chips. The model is a bundled name, `job:<id>` (a finished job's saved model),
a folder under the tokenizer_roots setting or a Hub id; with a job's model, `compare_base` also
scores the model the job started from, so the view can show before vs after.

Example: score_messages([{"role": "user", ...}, ...], RenderSpec(), "smollm2", settings, store)
         -> Scored(rendered=..., scores=TokenScores(logprobs=[None, -2.1, ...], ...), ...)

Design concession: the render and its lints run before the device is taken, so a bad request is
refused without waiting for the model; the model-backed lints run after scoring, on the scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pydantic import Field

from app.chat.messages import Conversation, parse_messages, parse_row
from app.chat.spec import RenderSpec, row_spec
from app.chat.tokens import Finding
from app.errors import InputError, LimitError, MaskscopeError
from app.inspect.reader import JsonlReader
from app.lint import context_for_rendering, run_checks
from app.lint.context import ModelView
from app.score import models
from app.score.scoring import Stop, TokenScores, mean_trained_loss, score_ids, stops
from app.service.render import (
    Rendered,
    lint_rendered,
    render_conversation,
    rendering_columns_json,
    rendering_json,
)
from app.service.requests import RenderAnswerRequest
from app.settings import Settings
from app.train.store import JobStore

_MODEL = (
    "The causal LM that scores: a bundled name (smollm2), 'job:<id>' for a finished job's "
    "model, a folder under tokenizer_roots, or a Hub id."
)


class ScoreRequest(RenderAnswerRequest):
    """The body of POST /api/score: the render body (and its answer `format`) plus the model
    (DESIGN.md §3.2)."""

    model: str = Field("smollm2", min_length=1, max_length=400, description=_MODEL)
    compare_base: bool = Field(
        False,
        description="With a job's model: also score with the model the job fine-tuned "
        "(per-token before vs after).",
    )


@dataclass(frozen=True)
class Scored:
    """A rendering, its lints, and what the model (and, for before/after, the base) made of it."""

    rendered: Rendered
    lints: list[Finding]
    scores: TokenScores
    stops: list[Stop]
    model: str
    base: TokenScores | None = None
    base_model: str | None = None

    @property
    def mean_trained_loss(self) -> float | None:
        return mean_trained_loss(self.scores, self.rendered.rendering.labels)


@dataclass(frozen=True)
class Target:
    """What to load for a model reference, and the base model of a job's model."""

    load: str
    base: str | None = None


def model_target(ref: str, settings: Settings, store: JobStore) -> Target:
    """`job:<id>` -> the job's saved model (and the model it started from); anything else as a
    fine-tune job resolves it. Example: "job:3f2a" -> Target(".../jobs/3f2a/model", "smollm2")
    """
    if not ref.startswith(models.JOB_PREFIX):
        return Target(models.resolve(ref, settings))
    job_id = ref.removeprefix(models.JOB_PREFIX)
    folder = models.job_model_folder(job_id, settings)
    job = store.get(job_id, metrics=False)
    if job.status != "succeeded" or not (folder / "config.json").is_file():
        raise InputError(
            f"Job {job_id} has no saved model to score (it is {job.status}); choose a "
            "succeeded job. Change the 'model' field.",
            field="model",
        )
    base = job.spec.get("model")
    return Target(str(folder), base if isinstance(base, str) else None)


def score_messages(
    messages: list[dict[str, Any]],
    spec: RenderSpec,
    model: str,
    settings: Settings,
    store: JobStore,
    *,
    compare_base: bool = False,
) -> Scored:
    """Render (with lints) and score one conversation given as message dicts."""
    return score_conversation(
        parse_messages(messages), spec, model, settings, store, compare_base=compare_base
    )


def score_conversation(
    conversation: Conversation,
    spec: RenderSpec,
    model: str,
    settings: Settings,
    store: JobStore,
    *,
    compare_base: bool = False,
    lint: bool = True,
) -> Scored:
    """Render an already parsed conversation and score it; `lint=False` skips every lint."""
    target = model_target(model, settings, store)
    rendered = render_conversation(conversation, spec, settings, columns=True)
    _check_length(len(rendered.rendering.input_ids), settings)
    lints = lint_rendered(rendered, settings) if lint else []
    base_load = models.resolve(target.base, settings) if compare_base and target.base else None
    with models.device_turn(settings):
        scores = _score(target.load, rendered, settings)
        base = _score(base_load, rendered, settings) if base_load is not None else None
    found = stops(rendered.rendering, scores)
    if lint:
        lints = lints + model_lints(rendered, scores, found, settings)
    base_model = target.base if base is not None else None
    return Scored(rendered, lints, scores, found, model, base, base_model)


def _check_length(tokens: int, settings: Settings) -> None:
    if tokens > settings.max_score_tokens:
        raise LimitError(
            f"The rendering has {tokens:,} tokens, over the {settings.max_score_tokens:,} one "
            "scoring request may run through the model; it is limited by the max_score_tokens "
            "setting (or cut it with max_length).",
            field="messages",
            setting="max_score_tokens",
        )


def _score(target: str, rendered: Rendered, settings: Settings) -> TokenScores:
    model = models.load(target, settings)
    ids = rendered.rendering.input_ids
    size = models.vocab_size(model)
    if ids and max(ids) >= size:
        raise InputError(
            f"Token id {max(ids)} is outside the model's vocabulary of {size:,}: the tokenizer "
            f"{rendered.spec.tokenizer!r} does not belong to this model. Change the 'tokenizer' "
            "or the 'model' field.",
            field="tokenizer",
        )
    return score_ids(model, ids)


def model_lints(
    rendered: Rendered, scores: TokenScores, found: list[Stop], settings: Settings
) -> list[Finding]:
    """The checks of scope "model" (does not stop, extreme token loss) on these scores."""
    ctx = context_for_rendering(
        rendered.rendering,
        conversation=rendered.conversation,
        tokenizer=rendered.tokenizer,
        dialect=rendered.dialect,
        spec=rendered.spec,
        settings=settings,
    )
    ctx.model = ModelView(
        logprobs=scores.logprobs,
        stops=[(s.token, s.message, s.probability) for s in found],
        min_stop_probability=settings.lint_min_stop_probability,
        max_token_loss=settings.lint_max_token_loss,
    )
    return run_checks(ctx, ("model",))


def scored_json(scored: Scored, columns: bool = False) -> dict[str, Any]:
    """The render response plus, per token, `logprob` and `entropy` (and `base_logprob` with
    before/after), and in `stats` the mean trained loss and the end-of-turn probabilities.
    `columns`: the columnar render shape, the scores as the arrays `logprobs`, `entropies`
    (and `base_logprobs`) beside the token columns."""
    rendering = scored.rendered.rendering
    base = scored.base.logprobs if scored.base is not None else None
    if columns:
        body = rendering_columns_json(rendering, scored.lints)
        body["logprobs"] = list(scored.scores.logprobs)
        body["entropies"] = list(scored.scores.entropies)
        if base is not None:
            body["base_logprobs"] = list(base)
    else:
        body = rendering_json(rendering, scored.lints)
        for i, token in enumerate(body["tokens"]):
            token["logprob"] = scored.scores.logprobs[i]
            token["entropy"] = scored.scores.entropies[i]
            if base is not None:
                token["base_logprob"] = base[i]
    stats = body["stats"]
    stats["model"] = scored.model
    stats["mean_trained_loss"] = scored.mean_trained_loss
    stats["end_of_turn"] = [s.to_json() for s in scored.stops]
    if scored.base is not None:
        stats["base_model"] = scored.base_model
        stats["base_mean_trained_loss"] = mean_trained_loss(
            scored.base, scored.rendered.rendering.labels
        )
    return body


@dataclass
class RankedRow:
    """One dataset row's mean trained loss (None when nothing was trained), or its error."""

    line: int
    loss: float | None = None
    tokens: int = 0
    trained: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "mean_trained_loss": self.loss,
            "tokens": self.tokens,
            "trained": self.trained,
            "error": self.error,
        }


@dataclass
class Ranking:
    """Rows ranked by mean trained loss, highest first, with a histogram of the losses."""

    rows: list[RankedRow]
    errors: list[RankedRow]
    histogram: list[dict[str, float]] = field(default_factory=list)
    truncated: bool = False

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        return {
            "rows": [r.to_json() for r in self.rows[:top]],
            "errors": [r.to_json() for r in self.errors],
            "histogram": self.histogram,
            "scored": len(self.rows),
            "truncated": self.truncated,
        }


def dataset_rows(stream: BinaryIO, settings: Settings) -> Iterator[tuple[int, Any]]:
    """(line, row object) per non-blank JSONL line, or (line, error sentence) for a bad line."""
    reader = JsonlReader(
        stream, max_rows=settings.max_upload_rows, max_line_bytes=settings.max_line_bytes
    )
    for raw in reader:
        error = (raw.error or "unreadable").removeprefix(f"line {raw.line}: ")
        yield raw.line, raw.row if raw.row is not None else error


def rank_rows(
    rows: Iterable[tuple[int, Any]],
    spec: RenderSpec,
    model: str,
    settings: Settings,
    store: JobStore,
    progress: Callable[[int], None] = lambda done: None,
) -> Ranking:
    """Score each (line, row) without lints, at most max_score_rows of them, highest mean
    trained loss first; a row that cannot be parsed, rendered or scored is an error with its
    line, never the end of the run (a bad model or a busy device still ends it)."""
    ranked, errors, truncated = [], [], False
    model_target(model, settings, store)  # a bad model is refused before any row
    for done, (line, row) in enumerate(rows):
        if done >= settings.max_score_rows:
            truncated = True
            break
        progress(done + 1)
        if isinstance(row, str):
            errors.append(RankedRow(line, error=row))
            continue
        try:
            scored = score_conversation(
                parse_row(row), row_spec(spec, row), model, settings, store, lint=False
            )
        except MaskscopeError as exc:
            if exc.field == "model" or exc.status == 429:
                raise
            errors.append(RankedRow(line, error=exc.message))
            continue
        rendering = scored.rendered.rendering
        ranked.append(
            RankedRow(
                line, scored.mean_trained_loss, len(rendering.input_ids), rendering.trained_count
            )
        )
    ranked.sort(key=lambda r: -1.0 if r.loss is None else r.loss, reverse=True)
    losses = [r.loss for r in ranked if r.loss is not None]
    return Ranking(ranked, errors, histogram(losses), truncated)


def histogram(values: list[float], bins: int = 10) -> list[dict[str, float]]:
    """Equal-width bins over the values. Example: [0.5, 1.0, 2.0], 2 -> [{lo 0.5, hi 1.25,
    count 2}, {lo 1.25, hi 2.0, count 1}]"""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - lo) / width))] += 1
    return [
        {"lo": lo + k * width, "hi": lo + (k + 1) * width, "count": counts[k]} for k in range(bins)
    ]
