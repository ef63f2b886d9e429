"""The pre-training objective end to end on CPU: the same Lightning path a GPU user takes.

Tiny Llama models train a few steps on real local files (the offline corpus); the tests check
what a study relies on: step-wise reports, per-domain losses and costs in user attributes,
pruning that stops the run, and a diverging run that fails cleanly while the study goes on.
"""

from __future__ import annotations

import math

import lightning as L
import optuna
import pytest
import torch
from conftest import PruneAtStep, pretrain_study

import optuna_adso as adso
from optuna_adso.pretrain import PretrainObjective
from optuna_adso.pretrain.corpus import build_corpus
from optuna_adso.pretrain.objective import run_seed

STEPS, EVERY, BATCH, SEQ = 8, 2, 4, 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads cost more than they give on a shared machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def objective(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    domains = build_corpus(root, max_chars_per_domain=40_000)
    return PretrainObjective(
        domains, ["tiny-32", "tiny-64"], steps=STEPS, eval_every=EVERY, batch_size=BATCH, seq_len=SEQ,
        vocab_size=512, max_val_blocks=4, lr=3e-3, cache_dir=root, accelerator="cpu",
    ).prepare()


def test_a_study_trains_reports_by_step_and_records_per_domain_losses(objective):
    study = pretrain_study(objective, "tiny-64")
    study.optimize(objective, n_trials=2)
    choices = objective.scale_choices()
    assert sorted(choices.values()) == sorted({t.params["model_size"] for t in study.trials})  # one per scale
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert sorted(t.intermediate_values) == list(range(EVERY, STEPS + 1, EVERY))
        curve = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        assert curve[-1] < curve[0] < math.log(objective.tokenizer.vocab_size) + 0.5  # it learns
        losses = t.user_attrs["val_losses"]
        assert sorted(losses) == sorted(objective.names) and all(math.isfinite(v) for v in losses.values())
        assert t.value == pytest.approx(sum(losses.values()) / len(losses))  # default target: the mean
        assert t.user_attrs["n_params"] == t.params["model_size"] == choices[t.user_attrs["scale"]]
        assert t.user_attrs["tokens_seen"] == STEPS * BATCH * SEQ == STEPS * objective.cost().tokens_per_step
        assert t.user_attrs["flops"] == pytest.approx(6 * t.params["model_size"] * STEPS * BATCH * SEQ)
        assert t.user_attrs["wall_seconds"] > 0
        assert [p["step"] for p in t.user_attrs["val_curve"]] == sorted(t.intermediate_values)
        assert sum(t.user_attrs["mix"].values()) == pytest.approx(1.0)
    rec = adso.recommend(study)
    assert set(rec.mixture) == set(objective.names)


def test_pruning_stops_the_run_at_the_reported_step(objective):
    study = pretrain_study(objective, "tiny-64", PruneAtStep(4))
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert max(t.intermediate_values) == 4 and t.user_attrs["last_step"] == 4
    assert t.user_attrs["tokens_seen"] == 4 * BATCH * SEQ  # training really stopped there


def test_adso_planned_stops_end_training_exactly_there(objective):
    """ADSOSampler(planned_stops=True) under ADSOPruner stops runs at the sampler's planned step; training ends and reports right there."""
    odd = PretrainObjective(objective.domains, ["tiny-32", "tiny-64"], steps=STEPS, eval_every=3,
                            batch_size=BATCH, seq_len=SEQ, vocab_size=512, max_val_blocks=4,
                            cache_dir=objective.cache_dir, accelerator="cpu")
    study = pretrain_study(odd, "tiny-64", adso.ADSOPruner(), planned_stops=True)
    study.optimize(odd, n_trials=2)
    for t in study.trials:
        planned = t.system_attrs["adso:stop_step"]
        assert planned is not None and planned < STEPS and planned % 3 != 0  # startup runs stop early
        assert t.state == optuna.trial.TrialState.PRUNED
        assert max(t.intermediate_values) == planned
        assert t.user_attrs["tokens_seen"] == planned * BATCH * SEQ


def test_a_named_target_set_and_a_run_without_optuna(objective):
    weights = {"code": 0.7, "docs": 0.1, "docstrings": 0.1, "licenses": 0.1}
    objective.target_weights = {"code": 3.0, "docs": 1.0}
    try:
        result = objective.train(weights, "tiny-32", steps=4)  # stopped early, schedule unchanged
    finally:
        objective.target_weights = dict.fromkeys(objective.names, 1.0)
    assert result.pruned_at is None and result.history[-1]["step"] == 4
    expected = (3 * result.val_losses["code"] + result.val_losses["docs"]) / 4
    assert result.objective == pytest.approx(expected)


def test_a_seed_per_trial_or_one_seed_for_every_run(objective):
    """With ``seed_per_trial``, runs' luck (data order, initialization) is independent across
    trials and the same trial number gives the same run; by default every run shares the
    objective's one seed (common random numbers), as a run without a trial does."""
    weights = {"code": 0.4, "docs": 0.2, "docstrings": 0.2, "licenses": 0.2}
    params = {f"mix/{d}": w for d, w in weights.items()} | {"model_size": objective.n_params("tiny-32")}

    def study_of(n_trials: int) -> optuna.Study:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(n_trials):
            study.enqueue_trial(params)
        study.optimize(objective, n_trials=n_trials)
        return study

    objective.seed_per_trial = True
    try:
        first, second = study_of(2).trials
        again = study_of(1).trials[0]  # trial 0 again
    finally:
        objective.seed_per_trial = False
    assert first.user_attrs["seed"] == run_seed(objective.seed, 0) != second.user_attrs["seed"]
    assert second.user_attrs["seed"] == run_seed(objective.seed, 1)
    assert first.value != second.value  # the same mixture, another run
    assert again.value == pytest.approx(first.value, rel=1e-6)
    shared = study_of(2).trials  # the default: one seed
    assert [t.user_attrs["seed"] for t in shared] == [objective.seed] * 2
    alone = objective.train(shared[0].user_attrs["mix"], "tiny-32").objective
    assert shared[0].value == pytest.approx(shared[1].value, rel=1e-6) == pytest.approx(alone, rel=1e-6)


def test_a_diverging_run_fails_with_its_reason_and_the_study_goes_on(objective):
    study = pretrain_study(objective, "tiny-64")
    lr = objective.lr
    objective.lr = 1e9
    try:
        study.optimize(objective, n_trials=1)
    finally:
        objective.lr = lr
    study.optimize(objective, n_trials=1)
    failed, ok = study.trials
    assert failed.state == optuna.trial.TrialState.FAIL
    assert "DivergenceError" in failed.user_attrs["failure_reason"]
    assert "loss became non-finite" in failed.user_attrs["failure_reason"]
    assert ok.state == optuna.trial.TrialState.COMPLETE and math.isfinite(ok.value)


class CountSteps(L.Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1


def test_user_trainer_callbacks_run_beside_ours_and_direction_is_checked(objective):
    counter = CountSteps()
    objective.trainer_kwargs = {"callbacks": [counter]}
    try:
        result = objective.train(dict.fromkeys(objective.names, 0.25), "tiny-32", steps=2)
    finally:
        objective.trainer_kwargs = {}
    assert counter.batches == 2 and result.history[-1]["step"] == 2
    with pytest.raises(ValueError, match="direction='minimize'"):
        optuna.create_study(direction="maximize").optimize(objective, n_trials=1, catch=())


class RunOutOfMemory(L.Callback):
    """Stands in for a GPU: raises what CUDA raises when an allocation fails."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_fails_the_trial_with_its_reason_and_the_study_goes_on(objective):
    study = pretrain_study(objective, "tiny-64")
    objective.trainer_kwargs = {"callbacks": [RunOutOfMemory()]}
    try:
        study.optimize(objective, n_trials=1)
    finally:
        objective.trainer_kwargs = {}
    study.optimize(objective, n_trials=1)
    failed, ok = study.trials
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["failure_reason"].startswith("OutOfMemoryError: CUDA out of memory")
    assert ok.state == optuna.trial.TrialState.COMPLETE


class GradNorms(L.Callback):
    """The gradient norm each step leaves behind, after clipping and the optimizer step."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_a_fused_optimizer_under_bf16_mixed_precision_trains_with_gradient_clipping(algorithm):
    """What a GPU run does (fused AdamW, bf16-mixed, clipping), on CPU: Lightning alone refuses it."""
    from optuna_adso.pretrain.module import CausalLMModule
    from optuna_adso.pretrain.scales import get_scale

    module = CausalLMModule(get_scale("tiny-32"), 256, 16, ["a"], {"a": 1.0}, total_steps=3, fused=True)
    ids = torch.randint(0, 256, (12, 16))
    loader = torch.utils.data.DataLoader([{"input_ids": row} for row in ids], batch_size=4)
    norms, clip = GradNorms(), 1e-3
    trainer = L.Trainer(accelerator="cpu", precision="bf16-mixed", max_steps=3, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=clip, gradient_clip_algorithm=algorithm, callbacks=[norms])
    trainer.fit(module, train_dataloaders=loader)
    assert trainer.optimizers[0].defaults["fused"] and trainer.global_step == 3
    n_params = sum(p.numel() for p in module.parameters())
    bound = clip * (1 + 1e-3) if algorithm == "norm" else clip * n_params**0.5
    assert len(norms.norms) == 3 and all(0 < n <= bound for n in norms.norms)
