"""Proxy scales: the paper's ladder, exact parameter counts, both architectures."""

from __future__ import annotations

import pytest
import torch

from optuna_adso.pretrain import SCALES, Scale, get_scale


def test_ladder_counts_are_exact_and_near_their_names():
    nominal = {"20M": 20e6, "60M": 60e6, "150M": 150e6, "300M": 300e6, "500M": 500e6, "700M": 700e6, "1B": 1e9}
    counts = {name: SCALES[name].n_params(32_000, 2048) for name in nominal}
    assert list(counts.values()) == sorted(counts.values())
    for name, n in counts.items():
        assert 0.6 * nominal[name] < n < 1.5 * nominal[name], (name, n)
    assert (SCALES["20M"].d_model, SCALES["20M"].n_layers, SCALES["20M"].n_heads) == (256, 8, 8)
    assert (SCALES["1B"].d_model, SCALES["1B"].n_layers) == (2048, 16)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_count_matches_the_instantiated_model(arch):
    scale = get_scale("tiny-64", arch=arch)
    model = scale.build(vocab_size=300, seq_len=32)
    assert scale.n_params(300, 32) == sum(p.numel() for p in model.parameters())
    x = torch.randint(0, 300, (2, 32))
    assert torch.isfinite(model(input_ids=x, labels=x).loss)


def test_explicit_configs_and_bad_shapes():
    s = get_scale({"name": "mine", "d_model": 48, "n_layers": 1, "n_heads": 3, "d_ff": 100})
    assert s.ffn_width == 100 and s.n_params(100, 16) > 0
    with pytest.raises(ValueError, match="divisible by n_heads"):
        Scale("bad", 50, 2, 3)
    with pytest.raises(ValueError, match="arch must be one of"):
        Scale("bad", 64, 2, 2, arch="mamba")
    with pytest.raises(ValueError, match="not a valid Scale"):
        get_scale({"d_model": 64, "layers": 2})
