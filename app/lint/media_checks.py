"""Checks on images and audio: as many placeholders as images (or clips), and none trained.

Design concession: the counts come from the expansion itself (the rendering's meta), so they are
only known for tokenizers whose image tokens Maskscope recognises (app.chat.images).
"""

from __future__ import annotations

from collections.abc import Iterator

from app.chat.images import family_for
from app.chat.tokens import Finding
from app.lint.context import LintContext
from app.lint.registry import check


@check(
    "image-count-mismatch",
    "error",
    "The template writes a different number of image placeholders than the messages hold images.",
    scope="rendering",
)
def image_count_mismatch(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    counts = rendering.meta.get("images") if rendering is not None else None
    if not counts or counts["placeholders"] == counts["images"]:
        return
    placeholders, images = counts["placeholders"], counts["images"]
    yield ctx.finding(
        "image-count-mismatch",
        f"The messages hold {images} image(s) but the template wrote {placeholders} image "
        "placeholder(s): the processor pairs placeholders with images in order, so "
        + (
            "some images are never seen by the model."
            if placeholders < images
            else "it fails or pairs them wrongly."
        )
        + " Use the model's own template (it writes one placeholder per image part), or give "
        "every image as a content part of its message.",
    )


@check(
    "audio-count-mismatch",
    "error",
    "The template writes a different number of audio placeholders than the messages hold clips.",
    scope="rendering",
)
def audio_count_mismatch(ctx: LintContext) -> Iterator[Finding]:
    rendering = ctx.rendering
    counts = rendering.meta.get("audio") if rendering is not None else None
    if not counts or counts["placeholders"] == counts["audio"]:
        return
    placeholders, clips = counts["placeholders"], counts["audio"]
    yield ctx.finding(
        "audio-count-mismatch",
        f"The messages hold {clips} audio clip(s) but the template wrote {placeholders} audio "
        "placeholder(s): the processor pairs placeholders with clips in order, so "
        + (
            "some clips are never heard by the model."
            if placeholders < clips
            else "it fails or pairs them wrongly."
        )
        + " Use the model's own template (it writes one placeholder per audio part), or give "
        "every clip as a content part of its message.",
    )


@check(
    "image-trained",
    "warning",
    "Image placeholder tokens are trained (pre-tokenized rows; renderings never train them).",
    scope="tokens",
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
    """The id of the tokenizer's image token, where its family is known."""
    family = family_for(ctx.facts.added)
    if family is None:
        return None
    entry = ctx.facts.added.get(family.image_token)
    return entry[0] if entry else None
