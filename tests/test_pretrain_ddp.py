"""Several processes per trial: DDP (spawned ranks, gloo on CPU) through the same objective.

Rank 0 reopens the trial from the shared storage, reports by step, and its prune decision reaches
every rank; the parent process then reads the outcome back from storage.
"""

from __future__ import annotations

import optuna
import pytest
import torch
from conftest import pretrain_study

import optuna_adso as adso
from optuna_adso.pretrain import PretrainObjective
from optuna_adso.pretrain.corpus import build_corpus

STEPS, BATCH, SEQ, RANKS = 8, 4, 32, 2


@pytest.mark.timeout(300)
def test_ddp_spawn_trial_reports_from_rank_zero_and_prunes_every_rank(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        objective = PretrainObjective(
            build_corpus(tmp_path, max_chars_per_domain=40_000), ["tiny-32", "tiny-64"], steps=STEPS,
            eval_every=3, batch_size=BATCH, seq_len=SEQ, vocab_size=512, max_val_blocks=4, cache_dir=tmp_path,
            accelerator="cpu", devices=RANKS, strategy="ddp_spawn",  # planned stops off the eval grid
        )
        study = pretrain_study(objective, "tiny-64", adso.ADSOPruner(), planned_stops=True,
                               storage=f"sqlite:///{tmp_path / 'ddp.db'}", study_name="ddp")
        study.optimize(objective, n_trials=1)
    finally:
        torch.set_num_threads(threads)
    t = study.trials[0]
    planned = t.system_attrs["adso:stop_step"]
    assert t.state == optuna.trial.TrialState.PRUNED, t.user_attrs.get("failure_reason")
    assert max(t.intermediate_values) == planned < STEPS and planned % 3 != 0  # validated right there
    assert objective.tokens_per_step == BATCH * SEQ * RANKS
    assert t.user_attrs["tokens_seen"] == planned * BATCH * SEQ * RANKS  # both ranks trained
    assert sorted(t.user_attrs["val_losses"]) == sorted(objective.names)


def test_spawned_ranks_need_a_storage_they_can_reach(tmp_path):
    objective = PretrainObjective(
        build_corpus(tmp_path, max_chars_per_domain=40_000), ["tiny-32"], steps=4, batch_size=BATCH,
        seq_len=SEQ, vocab_size=512, cache_dir=tmp_path, accelerator="cpu", devices=RANKS, strategy="ddp_spawn",
    )
    study = optuna.create_study()
    with pytest.raises(ValueError, match="needs a storage they can reach"):
        study.optimize(objective, n_trials=1)
