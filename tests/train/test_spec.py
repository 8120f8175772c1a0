"""JobSpec: its one conversion to the engine's RenderSpec."""

from __future__ import annotations

from app.chat.spec import RenderSpec
from app.train.spec import JobSpec


def test_render_spec_carries_the_fields_that_shape_the_labels():
    spec = JobSpec(model="smollm2", dialect="chatml", train_on="last_assistant", max_length=64)
    assert spec.render_spec() == RenderSpec(
        tokenizer="smollm2", dialect="chatml", train_on="last_assistant", max_length=64
    )


def test_render_spec_tokenizer_is_the_jobs_own_when_given():
    assert JobSpec(model="smollm2", tokenizer="qwen3").render_spec().tokenizer == "qwen3"
