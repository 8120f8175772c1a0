"""What a job's curves and samples say: progress per arm, held-out loss and answer length per arm,
and one sentence computed from them (the job page's verdict on NEFTune).

Example: summarize(spec, metrics, samples)["sentence"]
         -> "NEFTune's held-out loss ended 0.04 below the baseline's (2.31 vs 2.35) at step 20."

Design concession: computed from the stored spec, metrics and samples every time a job is read,
not stored: a few hundred points, and a job read by an older version still gets its summary.
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from app.train.spec import arms_of

LABELS = {"neftune": "NEFTune", "baseline": "the baseline", "plain": "the model"}


def arm_names(spec: dict[str, Any]) -> list[str]:
    """Example: {"neftune_alpha": 5, "compare_baseline": True} -> ["neftune", "baseline"]"""
    alpha = float(spec.get("neftune_alpha", 5.0) or 0.0)
    return [name for name, _ in arms_of(alpha, bool(spec.get("compare_baseline")))]


def arm_progress(spec: dict[str, Any], step: int) -> list[dict[str, Any]]:
    """Steps done per arm, from the job's overall step (arms train one after the other).

    Example: 8 steps, with a baseline, step 11 -> [{"arm": "neftune", "step": 8, "steps": 8},
             {"arm": "baseline", "step": 3, "steps": 8}]
    """
    steps = int(spec.get("steps", 0) or 0)
    return [
        {"arm": arm, "step": max(0, min(steps, step - index * steps)), "steps": steps}
        for index, arm in enumerate(arm_names(spec))
    ]


def _mean_tokens(samples: list[dict[str, Any]], key: str) -> float | None:
    counts = [s[f"{key}_tokens"] for s in samples if f"{key}_tokens" in s]
    return round(fmean(counts), 1) if counts else None


def arm_summaries(
    spec: dict[str, Any], metrics: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per arm: first and last held-out loss (with its step), last training loss, mean answer
    length in tokens before and after."""
    out = []
    for index, arm in enumerate(arm_names(spec)):
        evals = [m for m in metrics if m["arm"] == arm and m.get("eval_loss") is not None]
        train = [m for m in metrics if m["arm"] == arm and m.get("loss") is not None]
        key = "after" if index == 0 else f"after_{arm}"
        out.append(
            {
                "arm": arm,
                "first_eval_loss": evals[0]["eval_loss"] if evals else None,
                "last_eval_loss": evals[-1]["eval_loss"] if evals else None,
                "last_eval_step": evals[-1]["step"] if evals else None,
                "last_train_loss": train[-1]["loss"] if train else None,
                "answer_tokens_before": _mean_tokens(samples, "before"),
                "answer_tokens_after": _mean_tokens(samples, key),
            }
        )
    return out


def _loss_sentence(arms: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> str:
    evaluated = [a for a in arms if a["last_eval_loss"] is not None]
    if not evaluated:
        return (
            "No held-out loss: the data has too few conversations to hold any out (a fifth at "
            "most, up to eval_examples)."
        )
    if len(arms) == 2 and len(evaluated) == 2:
        first, second = arms
        # compare at the last step both arms reached, so a stopped arm is not compared early
        step = min(first["last_eval_step"], second["last_eval_step"])
        a, b = (_eval_at(metrics, arm["arm"], step) for arm in arms)
        diff = a - b
        where = "equal to" if abs(diff) < 0.005 else ("below" if diff < 0 else "above")
        amount = "" if where.startswith("equal") else f"{abs(diff):.2f} "
        return (
            f"NEFTune's held-out loss ended {amount}{where} the baseline's "
            f"({a:.2f} vs {b:.2f}) at step {step}."
        )
    arm = evaluated[0]
    name = LABELS.get(arm["arm"], arm["arm"])
    return (
        f"The held-out loss of {name} went from {arm['first_eval_loss']:.2f} to "
        f"{arm['last_eval_loss']:.2f} by step {arm['last_eval_step']}"
        + (" (no baseline to compare with)." if arm["arm"] == "neftune" else ".")
    )


def _eval_at(metrics: list[dict[str, Any]], arm: str, step: int) -> float:
    points = [m for m in metrics if m["arm"] == arm and m.get("eval_loss") is not None]
    return float(next(m["eval_loss"] for m in reversed(points) if m["step"] <= step))


def _length_sentence(arms: list[dict[str, Any]]) -> str:
    before = arms[0]["answer_tokens_before"] if arms else None
    after = [
        (a["arm"], a["answer_tokens_after"]) for a in arms if a["answer_tokens_after"] is not None
    ]
    if before is None or not after:
        return ""
    parts = [f"{t:g} tokens after {LABELS.get(arm, arm)}" for arm, t in after]
    return f" Answers average {before:g} tokens before training, {' and '.join(parts)}."


def summarize(
    spec: dict[str, Any], metrics: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> dict[str, Any]:
    """{"arms": [...per arm...], "sentence": "..."}: what the job page and the API say."""
    arms = arm_summaries(spec, metrics, samples)
    return {"arms": arms, "sentence": _loss_sentence(arms, metrics) + _length_sentence(arms)}
