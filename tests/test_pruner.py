"""ADSOPruner on real studies of the synthetic problem (conftest): the model rule, the planned
stop, the same-scale fallback for other samplers, and the minimum it never prunes before."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from conftest import DOMAINS, TARGET_OPTIMUM, TARGET_SCALE, make_objective, make_sampler, synthetic_loss
from optuna.trial import TrialState

import optuna_adso as adso
from optuna_adso.records import PRUNE_REASON as PRUNE_REASON_ATTR
from optuna_adso.study_model import StudyModel

HOPELESS = np.array([0.0, 0.0, 1.0])  # far from the target optimum (0.6, 0.3, 0.1)
DENSE_STEPS = tuple(range(50, 1001, 50))


def _enqueue(study: optuna.Study, weights: np.ndarray, scale: float) -> None:
    params = {f"mix/{d}": float(x) for d, x in zip(DOMAINS, weights)}
    study.enqueue_trial({**params, "model_size": scale})


@pytest.fixture(scope="module")
def warm_study_storage(tmp_path_factory):
    """An ADSO study after 14 trials, stored so that each test starts from a copy of it."""
    storage = f"sqlite:///{tmp_path_factory.mktemp('pruner') / 'warm.db'}"
    study = optuna.create_study(
        storage=storage, study_name="warm", sampler=make_sampler(seed=0), pruner=adso.ADSOPruner()
    )
    study.optimize(make_objective(), n_trials=14)
    return storage


def _fresh_copy(storage: str, name: str, pruner: adso.ADSOPruner) -> optuna.Study:
    optuna.copy_study(from_study_name="warm", from_storage=storage, to_storage=storage, to_study_name=name)
    return optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(seed=0), pruner=pruner)


def _reason(t: optuna.trial.FrozenTrial) -> dict:
    return json.loads(t.system_attrs[PRUNE_REASON_ATTR])


def test_prunes_a_hopeless_target_run_early_and_says_why(warm_study_storage):
    study = _fresh_copy(warm_study_storage, "hopeless", adso.ADSOPruner())
    _enqueue(study, HOPELESS, TARGET_SCALE)
    study.optimize(make_objective(report_steps=DENSE_STEPS), n_trials=1)
    t = study.trials[-1]
    assert t.state == TrialState.PRUNED
    # at the first report the model rule may judge: min_fraction (half) of the target step
    assert t.last_step == 500, t.last_step
    reason = _reason(t)
    assert reason["rule"] == "hopeless_at_target"
    assert reason["p_beats_best_at_target"] < 0.001
    assert reason["predicted_target_mean"] > reason["best_predicted_target_mean"]


def test_never_prunes_the_best_run(warm_study_storage):
    study = _fresh_copy(warm_study_storage, "best", adso.ADSOPruner())
    _enqueue(study, TARGET_OPTIMUM, TARGET_SCALE)
    study.optimize(make_objective(report_steps=DENSE_STEPS), n_trials=1)
    t = study.trials[-1]
    assert t.state == TrialState.COMPLETE, t.system_attrs.get(PRUNE_REASON_ATTR)
    assert t.value == pytest.approx(synthetic_loss(TARGET_OPTIMUM, TARGET_SCALE, 1000))


def test_never_prunes_before_the_minimum(warm_study_storage):
    study = _fresh_copy(warm_study_storage, "minimum", adso.ADSOPruner(min_steps=600))
    _enqueue(study, HOPELESS, TARGET_SCALE)
    study.optimize(make_objective(report_steps=DENSE_STEPS), n_trials=1)
    t = study.trials[-1]
    assert t.state == TrialState.PRUNED and t.last_step >= 600
    assert max(t.intermediate_values) == t.last_step


def test_a_small_scale_run_is_judged_through_the_model_not_raw_values(warm_study_storage):
    """At 1e7 parameters every value is far above any 1e9 value; a good mixture there must run on."""
    study = _fresh_copy(warm_study_storage, "small", adso.ADSOPruner())
    _enqueue(study, TARGET_OPTIMUM, 1e7)
    study.optimize(make_objective(report_steps=DENSE_STEPS), n_trials=1)
    t = study.trials[-1]
    big = [s for s in study.trials if s.params["model_size"] == TARGET_SCALE and s.intermediate_values]
    for step, value in t.intermediate_values.items():  # raw values: worse than the best big run's
        at_step = [s.intermediate_values[step] for s in big if step in s.intermediate_values]
        assert not at_step or value > min(at_step)
    assert any(100 in s.intermediate_values for s in big)
    assert t.state == TrialState.COMPLETE, t.system_attrs.get(PRUNE_REASON_ATTR)


def test_anchor_runs_are_not_judged_before_the_trust_test_can_decide():
    """With two complete target runs the held-out test has no verdict on the small scales, so a
    hopeless target run trains to the end; one more complete target run and it is stopped."""
    verdicts = {}
    for extra_target_run in (False, True):
        study = optuna.create_study(sampler=make_sampler(seed=0), pruner=adso.ADSOPruner())
        study.optimize(make_objective(), n_trials=5)
        if extra_target_run:
            _enqueue(study, np.array([0.5, 0.35, 0.15]), TARGET_SCALE)
            study.optimize(make_objective(), n_trials=1)
        n_anchor = StudyModel.of(study).complete_anchor_runs()
        _enqueue(study, HOPELESS, TARGET_SCALE)
        study.optimize(make_objective(report_steps=DENSE_STEPS), n_trials=1)
        verdicts[n_anchor] = study.trials[-1]
    assert sorted(verdicts) == [2, 3]
    assert verdicts[2].state == TrialState.COMPLETE and verdicts[2].last_step == 1000
    assert verdicts[3].state == TrialState.PRUNED
    assert _reason(verdicts[3])["rule"] == "hopeless_at_target"


def test_fallback_for_other_samplers_compares_only_runs_of_the_same_scale():
    """TPE with suggest_scale: small runs are never pruned for being worse than big ones."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), pruner=adso.ADSOPruner())
    study.optimize(make_objective(scales=(1e7, 1e9)), n_trials=24)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the fallback pruned nothing"
    for t in pruned:
        reason = _reason(t)
        assert reason["rule"] == "worse_than_same_scale_peers"
        peers = [
            s.intermediate_values[reason["step"]]
            for s in study.trials
            if s.number < t.number and s.params["model_size"] == t.params["model_size"]
            and reason["step"] in s.intermediate_values
        ]
        assert reason["value"] > np.percentile(peers, 25) - 1e-12
    small_best = min(
        (t for t in study.trials if t.params["model_size"] == 1e7 and 100 in t.intermediate_values),
        key=lambda t: t.intermediate_values[100],
    )
    assert small_best.state == TrialState.COMPLETE


def test_pruner_can_keep_to_planned_stops_only():
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=adso.ADSOPruner(improvement_probability=0.0, fallback_percentile=0.0),
    )
    study.optimize(make_objective(), n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_steps": -1}, "min_steps"),
        ({"planned_stops": True}, "ADSOSampler"),
        ({"min_steps": 1.5}, "min_steps"),
        ({"min_steps": True}, "min_steps"),
        ({"min_reports": -2}, "min_reports"),
        ({"improvement_probability": 0.7}, "improvement_probability"),
        ({"check_growth": 1.0}, "check_growth"),
        ({"min_savings": -0.1}, "min_savings"),
        ({"min_savings": True}, "min_savings"),
        ({"min_fraction": 1.0}, "min_fraction"),
        ({"fallback_percentile": 120}, "fallback_percentile"),
    ],
)
def test_pruner_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adso.ADSOPruner(**kwargs)
