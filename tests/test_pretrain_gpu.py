"""The pre-training objective on a CUDA GPU, with the defaults a GPU user gets.

bf16-mixed precision, ``torch.compile`` and SDPA attention are chosen automatically on GPU; these
tests train the paper's smallest proxy scales through them in real Optuna studies. They skip where
no GPU is visible (CI); run them on one with ``pytest tests/test_pretrain_gpu.py``.
"""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from conftest import PruneAtStep, pretrain_study

import optuna_adso as adso
from optuna_adso.pretrain import PretrainObjective
from optuna_adso.pretrain.corpus import build_corpus

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

STEPS, EVERY, BATCH, SEQ = 30, 10, 8, 256


@pytest.fixture(scope="module")
def objective(tmp_path_factory) -> PretrainObjective:
    root = tmp_path_factory.mktemp("pretrain-gpu")
    domains = build_corpus(root)
    return PretrainObjective(
        domains, ["20M", "60M"], steps=STEPS, eval_every=EVERY, batch_size=BATCH, seq_len=SEQ,
        vocab_size=2048, max_val_blocks=8, lr=1e-3, cache_dir=root,
    ).prepare()


def test_gpu_defaults_are_bf16_compile_and_a_study_learns_at_both_scales(objective):
    assert objective.precision == "bf16-mixed" and objective.compile and objective.nan_check_every == 10
    study = pretrain_study(objective, "60M")
    study.optimize(objective, n_trials=2)
    assert sorted(objective.scale_choices().values()) == sorted(t.params["model_size"] for t in study.trials)
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE, t.user_attrs.get("failure_reason")
        assert sorted(t.intermediate_values) == list(range(EVERY, STEPS + 1, EVERY))
        curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        assert curve[-1] < curve[0] < math.log(objective.tokenizer.vocab_size) + 0.5  # it learns
        losses = t.user_attrs["val_losses"]
        assert sorted(losses) == sorted(objective.names) and all(math.isfinite(v) for v in losses.values())
        assert t.user_attrs["tokens_seen"] == STEPS * BATCH * SEQ
    assert set(adso.recommend(study).mixture) == set(objective.names)


def test_pruning_stops_a_compiled_bf16_run_at_the_reported_step(objective):
    study = pretrain_study(objective, "60M", PruneAtStep(EVERY))
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert max(t.intermediate_values) == EVERY and t.user_attrs["tokens_seen"] == EVERY * BATCH * SEQ


def test_a_diverging_gpu_run_fails_with_its_reason_and_frees_the_device(objective):
    study = pretrain_study(objective, "60M")
    lr = objective.lr
    objective.lr = 1e9
    try:
        study.optimize(objective, n_trials=1)
    finally:
        objective.lr = lr
    failed = study.trials[0]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert "DivergenceError" in failed.user_attrs["failure_reason"]
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() < 256 * 2**20  # the dead run's model and optimizer are gone


def test_a_ddp_spawn_trial_on_the_gpu_reports_from_rank_zero_and_stops_where_planned(objective, tmp_path):
    """The several-GPUs-per-trial path (spawned ranks, NCCL), on the one GPU there is."""
    ddp = PretrainObjective(
        objective.domains, ["20M", "60M"], steps=STEPS, eval_every=EVERY, batch_size=BATCH, seq_len=SEQ,
        vocab_size=2048, max_val_blocks=8, lr=1e-3, cache_dir=objective.cache_dir, devices=1,
        strategy="ddp_spawn",
    )
    study = pretrain_study(ddp, "60M", adso.ADSOPruner(), planned_stops=True,
                           storage=f"sqlite:///{tmp_path / 'ddp.db'}", study_name="ddp")
    study.optimize(ddp, n_trials=1)
    t = study.trials[0]
    planned = t.system_attrs["adso:stop_step"]
    assert t.state == optuna.trial.TrialState.PRUNED, t.user_attrs.get("failure_reason")
    assert max(t.intermediate_values) == planned < STEPS
    assert t.user_attrs["tokens_seen"] == planned * BATCH * SEQ
    assert sorted(t.user_attrs["val_losses"]) == sorted(ddp.names)
