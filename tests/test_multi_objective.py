"""Optuna multi-objective studies under ADSOSampler: one linear per-domain objective per direction,
each proposal a random weighting of them, and the predicted front from the same runs."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

import optuna_adso as adso
from optuna_adso import records

DOMAINS = ["a", "b", "c"]
EVAL = ["p", "q", "r"]
TARGET = {"n": 1e8, "step": 1000}
OBJECTIVES = [adso.DomainLoss("p"), adso.DomainLoss("q")]
# "p" learns from "a", "q" from "b": the front runs from a-heavy to b-heavy mixtures
TRANSFER = np.array([[1.0, 0.1, 0.2], [0.1, 1.0, 0.2], [0.3, 0.3, 1.0]])


def losses_at(w, n: float, step: float) -> np.ndarray:
    return 2.0 - np.log(np.asarray(w) @ TRANSFER.T + 0.05) + (n / 1e8) ** -0.2 + (step / 1000) ** -0.3


def objective(trial: optuna.Trial) -> tuple[float, float]:
    w = adso.suggest_mixture(trial, "mix", DOMAINS)
    n = adso.suggest_scale(trial, "n", [1e7, 1e8])
    weights = np.array([w[d] for d in DOMAINS])
    for step in (250, 500, 1000):
        losses = losses_at(weights, n, step)
        adso.report(trial, None, step, domains=dict(zip(EVAL, losses)))
    return float(losses[0]), float(losses[1])


@pytest.fixture(scope="module")
def mo_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = adso.ADSOSampler(TARGET, seed=0, objective=OBJECTIVES)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=10)
    return study


def test_a_two_objective_study_runs_and_proposes_weightings_of_both(mo_study):
    done = [t for t in mo_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 10 and all(len(t.values) == 2 for t in done)
    assert all(records.domain_values(t) for t in done)  # the per-domain values are what it models
    bases = [records.read_proposal(t).get("basis") for t in done]
    assert "per-domain" in bases  # past startup, proposals come from the per-domain model
    assert len(optuna_best := mo_study.best_trials) >= 1 and optuna_best[0].values is not None


def test_pareto_front_of_a_multi_objective_study_defaults_to_its_objectives(mo_study):
    front = adso.pareto_front(mo_study)
    assert len(front) >= 2
    means = np.array([p.means for p in front])
    assert np.all(np.diff(means[:, 0]) >= 0) and np.all(np.diff(means[:, 1]) <= 0)  # a trade-off
    ends = [np.array([front[i].mixture[d] for d in DOMAINS]) for i in (0, -1)]
    assert ends[0][0] > ends[-1][0] and ends[-1][1] > ends[0][1]  # from a-heavy to b-heavy
    with pytest.raises(ValueError, match="pareto_front"):
        adso.recommend(mo_study)
    assert adso.recommend(mo_study, objective="domain:p").objective == "domain(p)"


def test_multi_objective_misuse_fails_before_any_trial_runs():
    two = ["minimize", "minimize"]
    with pytest.raises(ValueError, match="one per-domain objective for each"):
        optuna.create_study(directions=two, sampler=adso.ADSOSampler(TARGET, seed=0)).ask()
    with pytest.raises(ValueError, match="one direction"):
        optuna.create_study(sampler=adso.ADSOSampler(TARGET, seed=0, objective=OBJECTIVES)).ask()
    with pytest.raises(ValueError, match="must be 'minimize'"):
        optuna.create_study(directions=["minimize", "maximize"],
                            sampler=adso.ADSOSampler(TARGET, seed=0, objective=OBJECTIVES)).ask()
    with pytest.raises(ValueError, match="must be linear"):
        adso.ADSOSampler(TARGET, objective=[adso.MeanLoss(), adso.WorstExcessLoss("uniform")])
    with pytest.raises(ValueError, match="at least two"):
        adso.ADSOSampler(TARGET, objective=[adso.MeanLoss()])


def test_reports_of_a_multi_objective_study_need_the_domains():
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=adso.ADSOSampler(TARGET, seed=0, objective=OBJECTIVES))
    trial = study.ask()
    with pytest.raises(ValueError, match="report each domain's loss"):
        adso.report(trial, 1.0, 10)
    adso.report(trial, None, 10, domains={"p": 2.0, "q": 3.0, "r": 1.0})
    assert records.domain_values(study.trials[0]) == {10: {"p": 2.0, "q": 3.0, "r": 1.0}}
