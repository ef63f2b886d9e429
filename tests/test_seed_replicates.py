"""Seed replicates: where a study's runs share one seed, the sampler repeats its incumbent with a
new seed, and ``predict``/``recommend`` add the scatter that measured (optuna_adso.seed_replicates)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.seed_replicates import REPLICATES_AFTER, pooled_scatter, run_seed, runs_share_a_seed, shared_luck
from optuna_adso.study_model import StudyModel

DOMAINS = ["a", "b", "c"]
LUCK = 0.15  # sd of a seed's luck: as large as the gaps between good mixtures


def true_effect(w: np.ndarray) -> np.ndarray:
    """The mixture's own effect at the target, what recommend must find (optimum near a = 0.7)."""
    return -1.0 * np.exp(-8.0 * ((w[:, 0] - 0.7) ** 2 + (w[:, 1] - 0.2) ** 2))


def seed_luck(w: np.ndarray, seed: int) -> np.ndarray:
    """One seed's luck: a smooth function of the mixture (random features drawn from the seed),
    shared by nearby mixtures and by every scale, of sd ``LUCK`` over seeds."""
    rng = np.random.default_rng([1234, seed])
    omega, phase = 3.0 * rng.standard_normal((24, 3)), rng.uniform(0, 2 * np.pi, 24)
    return LUCK * math.sqrt(2.0 / 24) * np.cos(w @ omega.T + phase).sum(axis=1)


def make_objective(*, record: str):
    """Full runs at 1e7 (cheap, unrelated effect) and 1e9 (the target) reporting at 50 and 100
    steps.  ``record``: "shared" trains every run with seed 0 unless the sampler asks for a
    replicate (``trial_seed``); "ignoring" trains every run with seed 0 whatever the sampler
    asks; "own" gives every trial a seed of its own."""

    def objective(trial: optuna.Trial) -> float:
        mix = adso.suggest_mixture(trial, "mix", DOMAINS)
        size = adso.suggest_scale(trial, "model_size", [1e7, 1e9])
        if record == "shared":
            seed = adso.trial_seed(trial, 0)
        elif record == "ignoring":  # records one seed but never asks trial_seed for a replicate's
            seed = 0
            trial.set_user_attr("seed", seed)
        else:
            seed = run_seed(0, trial.number)
            trial.set_user_attr("seed", seed)
        w = np.array([[mix[d] for d in DOMAINS]])
        effect = true_effect(w)[0] if size >= 1e9 else 0.3 * math.sin(9.0 * w[0, 2])
        value = math.nan
        for step in (50, 100):
            value = float(3.0 * (size / 1e7) ** -0.1 * (step / 100) ** -0.2 + effect + seed_luck(w, seed)[0])
            trial.report(value, step)
        return value

    return objective


def run_study(record: str, n_trials: int) -> optuna.Study:
    sampler = adso.ADSOSampler(target={"model_size": 1e9, "step": 100}, seed=0, n_startup_trials=2, n_candidates=128)
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(make_objective(record=record), n_trials=n_trials)
    return study


def replicates(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if records.replicate_of(t.system_attrs) is not None]


def test_pooled_scatter_is_the_within_mixture_variance():
    s = pooled_scatter([[1.0, 3.0], [2.0, 2.0, 5.0], [7.0], [float("nan"), 4.0]])
    assert s is not None
    assert s.variance == pytest.approx(8.0 / 3.0) and s.dof == 3 and s.n_mixtures == 2
    assert pooled_scatter([[1.0], [2.0]]) is None


def test_trial_seed_is_the_study_seed_unless_a_replicate_and_is_recorded():
    study = optuna.create_study()
    trial = study.ask()
    assert adso.trial_seed(trial, 5) == 5
    assert records.run_seed_of(study.trials[0]) == 5
    records.write_replicate_of(study, trial, 0)
    assert adso.trial_seed(trial, 5) == run_seed(5, trial.number) != 5
    with pytest.raises(ValueError, match="seed must be an int"):
        adso.trial_seed(trial, "0")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def shared_seed_study() -> optuna.Study:
    return run_study("shared", n_trials=20)


def test_runs_sharing_one_seed_get_a_replicate_of_a_tried_mixture_with_a_new_seed(shared_seed_study):
    study = shared_seed_study
    model = StudyModel.of(study)
    assert runs_share_a_seed(model)
    reps = replicates(study)
    complete_at_top = [t for t in study.get_trials() if t.params.get("model_size") == 1e9]
    assert 1 <= len(reps) <= sum(1 for n in REPLICATES_AFTER if len(complete_at_top) >= n)
    for rep in reps:
        original = study.trials[records.replicate_of(rep.system_attrs)]
        assert original.params == rep.params  # the same mixture at the same (top) scale
        assert rep.params["model_size"] == 1e9
        assert rep.user_attrs["seed"] != original.user_attrs["seed"] == 0
        assert records.read_proposal(rep)["basis"] == "seed-replicate"
    # they measure the luck and nothing else: the model's observations leave them out
    assert not set(model.observations().trial_numbers.tolist()) & {rep.number for rep in reps}


def test_replicates_measure_the_luck_and_the_intervals_carry_it(shared_seed_study):
    study = shared_seed_study
    luck = shared_luck(StudyModel.of(study))
    assert luck is not None and 0.3 * LUCK <= luck.std <= 3.0 * LUCK  # two degrees of freedom
    rec = adso.recommend(study)
    assert any("share one seed" in note for note in rec.notes), rec.notes
    # the luck is added to the expected value's std (the GP took it for signal) and floors one run's scatter
    assert rec.std >= luck.std and rec.noise_std >= luck.std
    w = np.array([[rec.mixture[d] for d in DOMAINS]])
    expected = 3.0 * 100 ** -0.1 + float(true_effect(w)[0])
    lo, hi = rec.interval(0.9)
    assert lo <= expected <= hi, (lo, hi, expected, rec.mean, rec.std)
    new_runs = expected + np.array([seed_luck(w, s)[0] for s in range(100, 300)])
    lo, hi = rec.interval(0.9, new_run=True)
    # One study's coverage is a draw: the luck is measured from one or two replicates, one or two
    # degrees of freedom.  This study's two measure 0.4x the true luck (sampler seeds 1 and 2 give
    # the same: the replicates' trial numbers, hence their seeds, coincide) and its one-run 90%
    # interval holds 68% of new runs; an earlier trajectory's one replicate measured 1.0x and held
    # 98%.  The GP's own std at the recommendation is 0.003: without the luck the interval is a sliver.
    assert np.mean((lo <= new_runs) & (new_runs <= hi)) >= 0.6
    (pred,) = adso.predict(study, rec.mixture)  # predict adds the same, at the target
    assert pred.std >= luck.std and pred.noise_std >= luck.std
    assert pred.interval(0.9)[0] <= expected <= pred.interval(0.9)[1]
    (cheap,) = adso.predict(study, rec.mixture, {"model_size": 1e7, "step": 100})
    assert cheap.std < luck.std  # measured at the anchor: other fidelities are left as they were


def test_runs_with_seeds_of_their_own_get_no_replicate():
    """Independent luck is noise the GP models; repeating a mixture would only spend a run."""
    study = run_study("own", n_trials=10)
    assert not runs_share_a_seed(StudyModel.of(study))
    assert replicates(study) == []
    assert not any("share one seed" in note for note in adso.recommend(study).notes)


def test_the_pruner_lets_a_seed_replicate_run_to_the_end():
    """A replicate of the incumbent with worse luck looks hopeless; stopped, it measures nothing."""
    study = optuna.create_study()
    for _ in range(5):
        t = study.ask()
        t.report(1.0, 10)
        study.tell(t, 1.0)
    trial = study.ask()
    trial.report(9.0, 10)  # far worse than every peer at the same step: the fallback rule would stop it
    pruner = adso.ADSOPruner()
    assert pruner.prune(study, study.trials[-1])
    records.write_replicate_of(study, trial, 0)
    assert not pruner.prune(study, study.trials[-1])


def test_an_objective_that_ignores_replicates_gets_one_and_is_told_how_to_take_part():
    """A replicate that ran with the study's seed repeated a run: no more are scheduled, and
    recommend says what the objective must call."""
    study = run_study("ignoring", n_trials=20)
    assert len(replicates(study)) == 1
    notes = adso.recommend(study).notes
    assert any("trial_seed" in note for note in notes), notes
