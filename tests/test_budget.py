"""FlopsBudget on its own: a study stops once the compute it was given is spent."""

from __future__ import annotations

import optuna
import pytest
from conftest import make_objective, make_sampler

import optuna_adso as adso
from optuna_adso.recommendation import flops_spent
from optuna_adso.study_model import CostModelNotStored


@pytest.mark.parametrize("in_target_runs", [False, True])
def test_the_study_stops_at_the_budget_and_not_before(in_target_runs):
    sampler = make_sampler(seed=0, n_startup_trials=3, n_candidates=64)
    runs = 0.4
    budget = adso.FlopsBudget(runs if in_target_runs else runs * sampler.target_cost, in_target_runs=in_target_runs)
    study = optuna.create_study(sampler=sampler)
    study.optimize(make_objective(), n_trials=60, callbacks=[budget])
    assert len(study.trials) < 60
    assert budget.spent == flops_spent(study) >= runs * sampler.target_cost
    before_last = sum(sampler.study_model(study).trial_cost(t)[1] for t in study.trials[:-1])
    assert before_last < runs * sampler.target_cost  # the last trial is the one that crossed it
    assert "target runs" in repr(budget) if in_target_runs else "cost units" in repr(budget)


def test_nothing_is_spent_before_an_adso_trial():
    study = optuna.create_study()
    budget = adso.FlopsBudget(1.0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, callbacks=[budget])
    assert budget.spent == 0.0 and len(study.trials) == 2


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_a_bad_budget_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="budget"):
        adso.FlopsBudget(bad)


def test_in_target_runs_must_be_a_bool():
    with pytest.raises(ValueError, match="in_target_runs"):
        adso.FlopsBudget(1.0, in_target_runs="yes")


def test_a_budget_that_cannot_price_runs_says_so(tmp_path):
    sampler = adso.ADSOSampler(target={"model_size": 1e9, "step": 1000}, cost=lambda p, s: p["model_size"] * s,
                               seed=0, n_candidates=64)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    optuna.create_study(storage=url, study_name="b", sampler=sampler).optimize(make_objective(), n_trials=2)
    elsewhere = optuna.load_study(study_name="b", storage=url)
    with pytest.raises(CostModelNotStored, match="sampler="):
        adso.FlopsBudget(1.0)(elsewhere, elsewhere.trials[-1])
    given = adso.FlopsBudget(1e300, sampler=sampler)
    given(elsewhere, elsewhere.trials[-1])
    assert given.spent == flops_spent(elsewhere, sampler) > 0
