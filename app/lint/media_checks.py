"""Checks on images and audio: as many placeholders as images (or clips), and none trained.

Design concession: the counts come from the expansion itself (the rendering's meta), so they are
only known for tokenizers whose image tokens Maskscope recognises (app.chat.images).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.chat.images import family_for
from app.chat.tokens import Finding
from app.lint.context import LintContext, has_render_flags
from app.lint.registry import check


@dataclass(frozen=True)
class _Media:
    """How one kind of media is counted and named in a count-mismatch finding."""

    code: str
    key: str  # its counts in the rendering's meta: {"placeholders": n, key: m}
    noun: str  # what the messages hold
    lost: str  # what happens to the ones without a placeholder


IMAGES = _Media("image-count-mismatch", "images", "image", "seen")
AUDIO = _Media("audio-count-mismatch", "audio", "audio clip", "heard")


def _count_mismatch(ctx: LintContext, media: _Media) -> Iterator[Finding]:
    rendering = ctx.rendering
    counts = rendering.meta.get(media.key) if rendering is not None else None
    if not counts or counts["placeholders"] == counts[media.key]:
        return
    placeholders, held = counts["placeholders"], counts[media.key]
    kind = media.noun.split()[0]  # "image", "audio"
    yield ctx.finding(
        media.code,
        f"The messages hold {held} {media.noun}(s) but the template wrote {placeholders} {kind} "
        f"placeholder(s): the processor pairs placeholders with {media.noun}s in order, so "
        + (
            f"some {media.noun}s are never {media.lost} by the model."
            if placeholders < held
            else "it fails or pairs them wrongly."
        )
        + f" Use the model's own template (it writes one placeholder per {kind} part), or give "
        f"every {media.noun} as a content part of its message.",
    )


@check(
    "image-count-mismatch",
    "error",
    "The template writes a different number of image placeholders than the messages hold images.",
    scope="rendering",
    when=has_render_flags,
)
def image_count_mismatch(ctx: LintContext) -> Iterator[Finding]:
    yield from _count_mismatch(ctx, IMAGES)


@check(
    "audio-count-mismatch",
    "error",
    "The template writes a different number of audio placeholders than the messages hold clips.",
    scope="rendering",
    when=has_render_flags,
)
def audio_count_mismatch(ctx: LintContext) -> Iterator[Finding]:
    yield from _count_mismatch(ctx, AUDIO)


@check(
    "image-trained",
    "warning",
    "Image placeholder tokens are trained (pre-tokenized rows; renderings never train them).",
    scope="tokens",
    when=lambda ctx: _image_token_id(ctx) is not None,
)
def image_trained(ctx: LintContext) -> Iterator[Finding]:
    image_id = _image_token_id(ctx)
    if image_id is None:
        return
    ids, trained = ctx.view.ids, ctx.view.trained
    hit = [
        i for i, (tid, on) in enumerate(zip(ids, trained, strict=True)) if on and tid == image_id
    ]
    if hit:
        yield ctx.finding(
            "image-trained",
            f"{len(hit)} image placeholder token(s) have labels: their positions hold the vision "
            "encoder's output, which the model never generates, and a loss on them is noise. "
            "Set their labels to -100 (Maskscope's renderings never train them).",
            hit,
        )


def _image_token_id(ctx: LintContext) -> int | None:
    """The id of the tokenizer's image token, where its family is known (once per tokenizer)."""
    found: int | None = ctx.shared(("image-token-id",), lambda: _find_image_token_id(ctx))
    return found


def _find_image_token_id(ctx: LintContext) -> int | None:
    family = family_for(ctx.facts.added)
    if family is None:
        return None
    entry = ctx.facts.added.get(family.image_token)
    return entry[0] if entry else None
