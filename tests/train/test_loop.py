"""The loss: packed == one by one == transformers' own loss; exact gradient accumulation."""

from __future__ import annotations

import pytest
import torch

from app.train.distributed import Dist
from app.train.loop import (
    LoopConfig,
    accumulate,
    held_out_loss,
    lr_factor,
    model_inputs,
    split_held_out,
    summed_loss,
    train,
    trained_tokens,
)
from app.train.neftune import enable_neftune


def reference_sum(model, seqs) -> torch.Tensor:
    """transformers' mean loss per conversation times its trained-token count, summed."""
    total = torch.zeros(())
    for s in seqs:
        ids = torch.tensor([s["input_ids"]])
        out = model(input_ids=ids, labels=torch.tensor([s["labels"]]))
        total += out.loss * trained_tokens([s])
    return total


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("pack", [True, False])
def test_batched_loss_equals_conversations_one_by_one(attn, pack, make_model, make_examples):
    model = make_model(attn=attn)
    seqs = make_examples(6)
    with torch.no_grad():
        batched = summed_loss(model, model_inputs(seqs, pack, pad_id=0, device="cpu"))
        reference = reference_sum(model, seqs)
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-4)


def test_packing_without_position_ids_would_leak_across_conversations(make_model, make_examples):
    """Guard that the equality above is meaningful: dropping position_ids changes the loss."""
    model = make_model()
    seqs = make_examples(4)
    with torch.no_grad():
        batch = model_inputs(seqs, True, 0, "cpu")
        packed = summed_loss(model, dict(batch))
        batch.pop("position_ids")
        leaky = summed_loss(model, batch)
    assert abs(float(packed) - float(leaky)) > 1e-3


def _grads(model, config: LoopConfig, seqs) -> list[torch.Tensor]:
    model.train()
    accumulate(model, seqs, config, Dist())
    return [p.grad.clone() for p in model.parameters()]


def test_gradient_accumulation_matches_one_big_batch(make_model, make_examples):
    seqs = make_examples(8, seed=3)
    one = _grads(make_model(), LoopConfig(steps=1, batch_size=8), seqs)
    four = _grads(make_model(), LoopConfig(steps=1, batch_size=2, grad_accum=4), seqs)
    packed = _grads(make_model(), LoopConfig(steps=1, batch_size=4, grad_accum=2, pack=True), seqs)
    for a, b, c in zip(one, four, packed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-6)


def _run(model, config: LoopConfig, examples) -> list[float]:
    metrics = []
    train(model, examples, config, Dist(), emit=metrics.append, should_stop=lambda: False)
    return [m["loss"] for m in metrics]


def test_training_is_deterministic_and_learns(make_model, make_examples):
    examples = make_examples(4, seed=5)
    config = LoopConfig(steps=15, batch_size=4, learning_rate=2e-2, neftune_alpha=5.0, seed=1)
    first = _run(make_model(), config, examples)
    assert first == _run(make_model(), config, examples)
    assert first[-1] < 0.7 * first[0], first
    assert first != _run(make_model(), LoopConfig(**{**config.__dict__, "seed": 2}), examples)


def test_stop_request_ends_at_the_next_step(make_model, make_examples):
    metrics = []
    calls = iter([False, False, True])
    train(
        make_model(),
        make_examples(4),
        LoopConfig(steps=10, batch_size=2),
        Dist(),
        emit=metrics.append,
        should_stop=lambda: next(calls),
    )
    assert [m["step"] for m in metrics] == [1, 2]


def test_lr_schedule():
    assert [round(lr_factor(s, 4, 1), 3) for s in range(4)] == [0.5, 1.0, 0.667, 0.333]


@pytest.mark.parametrize("pack", [True, False])
def test_held_out_loss_is_transformers_loss_per_trained_token_without_noise(
    pack, make_model, make_examples
):
    model = make_model()
    held = make_examples(5, seed=3)
    with torch.no_grad():
        reference = float(reference_sum(model, held)) / trained_tokens(held)
    enable_neftune(model, 50.0, "paper", torch.Generator().manual_seed(0))
    model.train()
    config = LoopConfig(steps=1, batch_size=2, pack=pack)
    assert held_out_loss(model, held, config, Dist()) == pytest.approx(reference, rel=1e-5)
    assert model.training, "the model goes back to training mode"


def test_split_holds_out_a_fifth_at_most_the_same_rows_for_a_seed(make_examples):
    examples = make_examples(60)
    train_part, held = split_held_out(examples, 8, seed=0)
    assert (len(train_part), len(held)) == (52, 8)
    assert all(h not in train_part for h in held)
    assert split_held_out(examples, 8, seed=0) == (train_part, held)
    assert split_held_out(examples, 8, seed=1)[1] != held
    assert split_held_out(examples[:4], 8, seed=0) == (examples[:4], [])
    assert split_held_out(examples, 0, seed=0) == (examples, [])


def test_train_measures_held_out_loss_at_the_start_every_interval_and_the_end(
    make_model, make_examples
):
    model, seen = make_model(), []
    config = LoopConfig(steps=5, batch_size=2, eval_every=2, learning_rate=1e-2)
    train(
        model,
        make_examples(8),
        config,
        Dist(),
        emit=seen.append,
        should_stop=lambda: False,
        held_out=make_examples(3, seed=9),
    )
    evals = [m for m in seen if "eval_loss" in m]
    assert [m["step"] for m in evals] == [0, 2, 4, 5]
    assert evals[-1]["eval_loss"] != evals[0]["eval_loss"]


def test_held_out_loss_gives_way_to_a_stop_between_batches(make_model, make_examples):
    model, asked = make_model(), []

    def stop_after_one_batch() -> bool:
        asked.append(1)
        return len(asked) > 1

    config = LoopConfig(steps=1, batch_size=2)
    assert held_out_loss(model, make_examples(6), config, Dist(), stop_after_one_batch) is None
    assert len(asked) == 2, "stopped before the second of three batches"
