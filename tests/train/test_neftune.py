"""NEFTune: exact per-sequence bounds, no noise on padding, packing, transformers' hook."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.integrations.neftune import neftune_post_forward_hook

from app.train.neftune import add_neftune_noise, enable_neftune, token_lengths

D = 512


def _noise(**kwargs) -> torch.Tensor:
    shape = kwargs.pop("shape")
    zeros = torch.zeros(shape)
    return add_neftune_noise(
        zeros, kwargs.pop("alpha", 5.0), generator=torch.Generator().manual_seed(0), **kwargs
    )


def _bound(alpha: float, length: int, dim: int = D) -> float:
    return alpha / math.sqrt(length * dim)


def test_token_lengths_examples():
    assert token_lengths((1, 5), position_ids=torch.tensor([[0, 1, 2, 0, 1]])).tolist() == [
        [3, 3, 3, 2, 2]
    ]
    assert token_lengths((1, 3), attention_mask=torch.tensor([[1, 1, 0]])).tolist() == [[2, 2, 0]]


def test_paper_mode_uses_each_sequences_own_length_and_spares_padding():
    lengths = [7, 3, 10]
    mask = torch.tensor([[1] * n + [0] * (10 - n) for n in lengths])
    noise = _noise(shape=(3, 10, D), attention_mask=mask)
    for row, n in enumerate(lengths):
        real = noise[row, :n].abs()
        assert real.max() <= _bound(5.0, n) + 1e-7
        # with n*D uniform draws the maximum sits within 0.1% of the bound
        assert real.max() >= 0.999 * _bound(5.0, n)
        assert torch.count_nonzero(noise[row, n:]) == 0


def test_paper_mode_left_padding():
    mask = torch.tensor([[0, 0, 1, 1]])
    noise = _noise(shape=(1, 4, D), attention_mask=mask)
    assert torch.count_nonzero(noise[0, :2]) == 0
    assert noise[0, 2:].abs().max() <= _bound(5.0, 2) + 1e-7


def test_packed_segments_get_their_own_length():
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 0, 1, 2, 3, 4, 5, 6]])
    noise = _noise(shape=(1, 14, D), position_ids=positions)
    for start, end in [(0, 5), (5, 7), (7, 14)]:
        segment = noise[0, start:end].abs()
        assert 0.999 * _bound(5.0, end - start) <= segment.max() <= _bound(5.0, end - start) + 1e-7


def test_hf_mode_scales_by_padded_length_and_noises_everything():
    mask = torch.tensor([[1, 1, 0, 0]])
    noise = _noise(shape=(1, 4, D), attention_mask=mask, mode="hf")
    assert noise.abs().max() <= _bound(5.0, 4) + 1e-7
    assert torch.count_nonzero(noise[0, 2:]) == 2 * D


def test_hf_mode_matches_transformers_hook():
    """Same draws as transformers' own hook: the same distribution, value for value."""
    embedding = torch.nn.Embedding(50, 64)
    embedding.neftune_noise_alpha = 10.0
    embedding.train()
    ids = torch.randint(0, 50, (3, 17), generator=torch.Generator().manual_seed(1))
    clean = embedding(ids).detach()
    torch.manual_seed(123)
    reference = neftune_post_forward_hook(embedding, (ids,), clean) - clean
    torch.manual_seed(123)
    ours = add_neftune_noise(clean, 10.0, mode="hf") - clean
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    assert abs(ours.std().item() - _bound(10.0, 17, 64) / math.sqrt(3)) < 0.01


def test_paper_mode_is_larger_than_hf_under_packing():
    """The flaw paper mode fixes: a packed row of 4 segments shrinks hf noise by sqrt(4)."""
    positions = torch.arange(16).remainder(4).unsqueeze(0)
    paper = _noise(shape=(1, 16, D), position_ids=positions)
    hf = _noise(shape=(1, 16, D), position_ids=positions, mode="hf")
    assert paper.abs().max() / hf.abs().max() == pytest.approx(2.0, rel=1e-3)


def test_generator_makes_noise_reproducible_and_modes_are_checked():
    a = _noise(shape=(2, 5, 8))
    b = _noise(shape=(2, 5, 8))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="mode"):
        _noise(shape=(1, 2, 8), mode="other")


def _tiny_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def _capture_embeddings(model):
    seen = []
    model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    return seen


def test_hook_noises_only_in_training_and_remove_restores():
    model = _tiny_model()
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    clean = model.get_input_embeddings()(ids).detach()
    handle = enable_neftune(model, 5.0, "paper")
    seen = _capture_embeddings(model)
    model.eval()
    model(input_ids=ids, attention_mask=mask)
    assert torch.equal(seen[-1], clean)
    model.train()
    model(input_ids=ids, attention_mask=mask)
    noise = seen[-1] - clean
    assert noise[0].abs().max() <= _bound(5.0, 6, 32) + 1e-6
    assert noise[1, :3].abs().max() <= _bound(5.0, 3, 32) + 1e-6
    assert noise[1, :3].abs().max() > _bound(5.0, 6, 32)
    assert torch.count_nonzero(noise[1, 3:]) == 0
    handle.remove()
    model(input_ids=ids, attention_mask=mask)
    assert torch.equal(seen[-1], clean)


def test_hook_reads_packed_position_ids():
    model = _tiny_model()
    ids = torch.randint(0, 64, (1, 8), generator=torch.Generator().manual_seed(3))
    positions = torch.tensor([[0, 1, 0, 1, 2, 3, 4, 5]])
    clean = model.get_input_embeddings()(ids).detach()
    enable_neftune(model, 5.0, "paper")
    seen = _capture_embeddings(model)
    model.train()
    model(input_ids=ids, position_ids=positions)
    noise = seen[-1] - clean
    assert noise[0, :2].abs().max() > _bound(5.0, 6, 32)
    assert noise[0, 2:].abs().max() <= _bound(5.0, 6, 32) + 1e-6
