"""ADSOSampler + ADSOPruner + recommend on real Optuna studies of the synthetic problem."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
from conftest import (
    DOMAINS,
    SCALES,
    SMALL_OPTIMUM,
    TARGET_OPTIMUM,
    TARGET_SCALE,
    TARGET_STEP,
    make_objective,
    make_sampler,
    mixture_params,
    synthetic_loss,
)
from optuna.trial import TrialState

import optuna_adso as adso
from optuna_adso.records import PROPOSAL as PROPOSAL_ATTR
from optuna_adso.records import PRUNE_REASON as PRUNE_REASON_ATTR
from optuna_adso.study_model import read_study
from optuna_adso.space import collect_observations

TOKENS_PER_STEP = 1024


def _flops(scale: float, step: float) -> float:
    return 6.0 * scale * TOKENS_PER_STEP * step


def _observations(study: optuna.Study):
    data = read_study(study)
    return collect_observations(
        study.get_trials(deepcopy=False),
        data.spec,
        data.scale,
        target_scale=TARGET_SCALE,
        target_step=TARGET_STEP,
        maximize=False,
    )


@pytest.fixture(scope="module")
def full_study():
    study = optuna.create_study(sampler=make_sampler(seed=0, planned_stops=True), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=30)
    return study, adso.recommend(study)


# --- a full study -------------------------------------------------------------------------


def test_full_study_recommends_the_target_optimum_not_the_small_scale_one(full_study):
    study, rec = full_study
    assert len(study.trials) == 30
    w = np.array([rec.mixture[d] for d in DOMAINS])
    assert list(rec.mixture) == list(DOMAINS)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    assert np.abs(w - TARGET_OPTIMUM).sum() < 0.15, rec.mixture
    assert np.abs(w - SMALL_OPTIMUM).sum() > 0.5
    assert math.isfinite(rec.mean) and math.isfinite(rec.std) and rec.std >= 0
    # the predicted value at the target is the true value there, up to model error
    assert rec.mean == pytest.approx(synthetic_loss(w, TARGET_SCALE, TARGET_STEP), abs=0.05)
    assert rec.target == {"step": TARGET_STEP, "model_size": TARGET_SCALE}
    assert rec.n_trials == 30


def test_full_study_is_cost_aware_and_accounts_flops(full_study):
    study, rec = full_study
    expected = sum(_flops(t.params["model_size"], t.last_step) for t in study.trials)
    assert rec.flops_spent == pytest.approx(expected, rel=1e-9)
    # cheaper than running every trial at the target: small scales and early stops help (in this
    # world small scales mislead, so most of the spending rightly goes to the target)
    assert rec.flops_spent < 0.8 * len(study.trials) * _flops(TARGET_SCALE, TARGET_STEP)
    cheap = [t for t in study.trials if t.params["model_size"] < TARGET_SCALE or t.last_step < TARGET_STEP]
    assert len(cheap) >= 6  # how many is the model's trade-off, and moves between machines (9 to 10+ seen)


def test_pruned_trials_partial_curves_are_observations(full_study):
    study, rec = full_study
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    # how many runs stop early is the sampler's cost trade-off; some must, to test their use
    assert len(pruned) >= 3
    obs = _observations(study)
    n_reports = sum(len(t.intermediate_values) for t in study.trials)
    assert len(obs) == n_reports == rec.n_observations
    pruned_numbers = {t.number for t in pruned}
    assert pruned_numbers <= set(obs.trial_numbers.tolist())
    # every report of a pruned trial is in, at its own scale and step
    t = pruned[-1]
    rows = obs.trial_numbers == t.number
    assert sorted(np.round(10 ** obs.log_step[rows]).astype(int)) == sorted(t.intermediate_values)
    np.testing.assert_allclose(10 ** obs.log_scale[rows], t.params["model_size"])
    assert np.all(np.isfinite(obs.values))


def _planned_stop(t: optuna.trial.FrozenTrial) -> float:
    return json.loads(t.system_attrs[PROPOSAL_ATTR])["stop_step"]


def test_pruner_stops_runs_at_the_planned_step(full_study):
    study, _ = full_study
    for t in study.trials:
        planned = _planned_stop(t)
        assert planned in (100, 250, 500, 1000)
        if t.state == TrialState.PRUNED:
            reason = json.loads(t.system_attrs[PRUNE_REASON_ATTR])
            if reason["rule"] == "planned_stop":
                assert t.last_step == planned
            else:  # the model judged the rest of the run not worth its cost
                assert reason["rule"] == "hopeless_at_target" and t.last_step < planned
        assert t.last_step <= planned
        if planned < TARGET_STEP:  # an early stop was planned: the pruner carried it out
            assert t.state == TrialState.PRUNED
    # model-based trials record their proposal (fidelity, score, predicted target value)
    info = json.loads(study.trials[-1].system_attrs[PROPOSAL_ATTR])
    assert info["scale"] == study.trials[-1].params["model_size"]
    assert math.isfinite(info["target_mean"]) and info["score"] > 0


def test_the_default_pruner_leaves_every_run_planned_to_its_full_length():
    """Planned partial runs are opt-in (``planned_stops=True``): by default the sampler proposes
    full-length runs and the pruner stops one only when the model judges it hopeless."""
    study = optuna.create_study(sampler=make_sampler(seed=0), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=8)
    assert all(_planned_stop(t) == TARGET_STEP for t in study.trials)
    assert all(t.state == TrialState.COMPLETE or PRUNE_REASON_ATTR in t.system_attrs for t in study.trials)


def test_runs_planned_to_the_full_target_step_complete(full_study):
    """A run whose planned stop is the whole run must end COMPLETE (its value is the final loss);
    pruning it at its last report makes study.best_trial and dashboards see no finished runs."""
    study, _ = full_study
    full = [t for t in study.trials if _planned_stop(t) >= TARGET_STEP]
    assert full, "the study planned no full-length run"
    hopeless = [t for t in full if PRUNE_REASON_ATTR in t.system_attrs]
    assert all(json.loads(t.system_attrs[PRUNE_REASON_ATTR])["rule"] == "hopeless_at_target" for t in hopeless)
    full = [t for t in full if t not in hopeless]
    assert full and all(t.state == TrialState.COMPLETE for t in full), [
        (t.number, t.state.name) for t in full
    ]


def test_mixture_params_are_weights_and_distinct(full_study):
    study, _ = full_study
    params = np.array([mixture_params(t) for t in study.trials])
    np.testing.assert_allclose(params.sum(axis=1), 1.0, atol=1e-12)
    for t in study.trials:
        np.testing.assert_allclose(mixture_params(t), [t.user_attrs["mix"][d] for d in DOMAINS], atol=1e-12)


# --- recommend early and at an extrapolated target ---------------------------------------


def test_recommend_before_any_target_scale_run():
    scales = (1e7, 1e8, 3e8)  # the target, 1e9, is never run: extrapolation
    study = optuna.create_study(sampler=make_sampler(seed=0), pruner=adso.ADSOPruner())
    study.optimize(make_objective(scales=scales), n_trials=3)
    assert all(t.params["model_size"] < TARGET_SCALE for t in study.trials)
    rec = adso.recommend(study)
    w = np.array([rec.mixture[d] for d in DOMAINS])
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    assert math.isfinite(rec.mean) and math.isfinite(rec.std) and rec.std > 0
    assert rec.flops_spent > 0
    expected = sum(_flops(t.params["model_size"], t.last_step) for t in study.trials)
    assert rec.flops_spent == pytest.approx(expected, rel=1e-9)
    assert "web=" in str(rec)


def test_recommend_needs_a_mixture():
    study = optuna.create_study(sampler=make_sampler())
    with pytest.raises(ValueError, match="suggest_mixture"):
        adso.recommend(study)


# --- NaN / inf --------------------------------------------------------------------------


def test_nan_reports_and_nan_results_are_skipped_with_a_warning():
    study = optuna.create_study(sampler=make_sampler(seed=0))
    objective = make_objective(nan_steps=(250,), return_nan=lambda n: n in (1, 3))
    with pytest.warns(UserWarning, match="NaN, infinite"):
        study.optimize(objective, n_trials=5)
    states = [t.state for t in study.trials]
    assert len(states) == 5
    assert states[1] == states[3] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) == 3
    # model-based trials ran after the NaNs
    assert json.loads(study.trials[4].system_attrs[PROPOSAL_ATTR])["score"] > 0
    obs = _observations(study)
    assert np.all(np.isfinite(obs.values)) and np.all(np.isfinite(obs.inputs))
    assert obs.n_ignored_nonfinite == 5  # one NaN report per trial, failed ones included
    assert len(obs) == 5 * 3
    rec = adso.recommend(study)
    assert math.isfinite(rec.mean) and math.isfinite(rec.std)
    assert abs(sum(rec.mixture.values()) - 1) < 1e-9


def test_all_nan_study_keeps_going():
    study = optuna.create_study(sampler=make_sampler(seed=0))
    objective = make_objective(nan_steps=(100, 250, 500, 1000), return_nan=lambda n: True)
    with pytest.warns(UserWarning):
        study.optimize(objective, n_trials=5)
    assert len(study.trials) == 5
    assert all(t.state == TrialState.FAIL for t in study.trials)
    for t in study.trials:
        assert abs(mixture_params(t).sum() - 1) < 1e-12
    rec = adso.recommend(study)  # no model: falls back, says so, does not crash
    assert rec.notes and abs(sum(rec.mixture.values()) - 1) < 1e-9


# --- reproducibility ---------------------------------------------------------------------


def _params(seed: int, n: int) -> list[dict]:
    study = optuna.create_study(sampler=make_sampler(seed=seed, planned_stops=True), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=n)
    return [t.params for t in study.trials]


def test_same_seed_same_params_including_model_based_trials(full_study):
    study, _ = full_study  # seed 0 as well, run in another study object
    a = [t.params for t in study.trials[:8]]
    b = _params(0, 8)
    assert a == b
    # after 3 startup trials the model proposes; these are not startup repeats
    assert len({tuple(sorted(p.items())) for p in a}) == 8
    assert json.loads(study.trials[7].system_attrs[PROPOSAL_ATTR])["score"] > 0
    c = _params(1, 2)
    assert c[0] == a[0]  # every study starts from the uniform mixture
    assert c[1] != a[1]  # then the seed picks the space-filling draws


def test_a_seeded_study_is_the_same_study_in_memory_and_in_sqlite(tmp_path):
    """Everything the sampler knows comes from storage, hyperparameters included (JSON in SQLite):
    a seed's study, pruner and recommendation must not depend on which storage holds it."""

    def run(storage) -> tuple[list[dict], list[str], list[str], dict]:
        study = optuna.create_study(storage=storage, sampler=make_sampler(seed=3), pruner=adso.ADSOPruner())
        study.optimize(make_objective(), n_trials=12)
        bases = [json.loads(t.system_attrs[PROPOSAL_ATTR])["basis"] for t in study.trials]
        return [t.params for t in study.trials], [t.state.name for t in study.trials], bases, adso.recommend(study).mixture

    in_memory = run(None)
    assert in_memory[2][-1] != "startup"  # model-based proposals are among those compared
    assert run(f"sqlite:///{tmp_path / 'study.db'}") == in_memory


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_startup_runs_start_from_uniform_and_spread_over_the_simplex(seed):
    """Independent draws cluster mid-simplex; the startup design must show the model how much
    mixtures differ, so each run goes where no other run is, but for the uniform mixture, which
    opens the study and is the first run at the anchor (the top scale) too."""
    study = optuna.create_study(sampler=make_sampler(seed=seed, n_startup_trials=5))
    study.optimize(make_objective(), n_trials=5)
    w = np.array([[t.params[f"mix/{d}"] for d in DOMAINS] for t in study.trials])
    scales = [t.params["model_size"] for t in study.trials]
    assert scales[:3] == sorted(SCALES)  # one run per scale, smallest first
    np.testing.assert_allclose(w[0], 1 / 3)
    np.testing.assert_allclose(w[2], 1 / 3)  # the anchor's first run: the safe default
    spread = [0, 1, 3, 4]  # the uniform runs and the draws
    gaps = [np.linalg.norm(w[i] - w[j]) for i in spread for j in spread if j < i]
    assert min(gaps) > 0.3, np.round(w, 3)  # iid Dirichlet draws: about 0.2 apart at the closest
    for t, row in zip(study.trials, w):  # the run, its proposal and its parameters agree
        np.testing.assert_allclose(json.loads(t.system_attrs[PROPOSAL_ATTR])["weights"], row, atol=1e-7)


def _system_attrs(study: optuna.Study, trial: optuna.Trial) -> dict:
    return study._storage.get_trial(trial._trial_id).system_attrs


def test_concurrent_proposals_do_not_duplicate_each_other():
    """Two workers whose proposals overlap in time (as with n_jobs=2 or several processes): the
    second must know of the first, which is RUNNING but has no parameters stored yet."""
    study = optuna.create_study(sampler=make_sampler(seed=0), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=3)
    a, b = study.ask(), study.ask()
    pa, pb = a.relative_params, b.relative_params  # both proposed before either stores params
    wa = np.array([pa[f"mix/{d}"] for d in DOMAINS])
    wb = np.array([pb[f"mix/{d}"] for d in DOMAINS])
    stop_a = json.loads(_system_attrs(study, a)[PROPOSAL_ATTR])["stop_step"]
    stop_b = json.loads(_system_attrs(study, b)[PROPOSAL_ATTR])["stop_step"]
    same_fidelity = pa["model_size"] == pb["model_size"] and stop_a == stop_b
    assert not (same_fidelity and np.abs(wa - wb).sum() < 0.05), (wa, wb, pa["model_size"])


# --- storage, options and other pruners ---------------------------------------


def test_maximize_direction_recommends_the_maximum():
    def objective(trial):
        w = adso.suggest_mixture(trial, "mix", list(DOMAINS))
        x = np.array([w[d] for d in DOMAINS])
        return -float(np.sum((x - TARGET_OPTIMUM) ** 2))

    study = optuna.create_study(
        sampler=adso.ADSOSampler(target={"step": 1}, seed=0), direction="maximize"
    )
    study.optimize(objective, n_trials=8)
    rec = adso.recommend(study)
    w = np.array([rec.mixture[d] for d in DOMAINS])
    assert np.abs(w - TARGET_OPTIMUM).sum() < 0.2, rec.mixture
    assert rec.mean <= 1e-2 and rec.mean > -0.1  # reported in the study's own orientation


def test_runs_under_hyperband_pruner():
    study = optuna.create_study(
        sampler=make_sampler(seed=0), pruner=optuna.pruners.HyperbandPruner(min_resource=100, max_resource=1000)
    )
    study.optimize(make_objective(), n_trials=4)
    assert len(study.trials) == 4
    # the model saw the whole study: later proposals have a finite predicted target value
    info = json.loads(study.trials[-1].system_attrs[PROPOSAL_ATTR])
    assert info["score"] > 0 and math.isfinite(info["target_mean"])
    rec = adso.recommend(study, sampler=make_sampler(seed=0))
    assert math.isfinite(rec.mean)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"target": {"model_size": 1e9}}, ValueError, "'step'"),
        ({"target": {"model_size": 1e9, "step": -5}}, ValueError, r"target\['step'\]"),
        ({"target": {"model_size": 0, "step": 10}}, ValueError, r"target\['model_size'\]"),
        ({"target": {"a": 1e9, "b": 1e8, "step": 10}}, ValueError, "several parameters"),
        ({"target": [("step", 10)]}, TypeError, "target"),
        ({"target": {"step": 10}, "cost": 3.0}, TypeError, "cost"),
        ({"target": {"step": 10}, "method": "kg"}, ValueError, "method"),
        ({"target": {"step": 10}, "n_startup_trials": 0}, ValueError, "n_startup_trials"),
        ({"target": {"step": 10}, "max_points": 5}, ValueError, "max_points"),
        ({"target": {"step": 10}, "stop_fractions": (0.1, 0.5)}, ValueError, "stop_fractions"),
        ({"target": {"step": 10}, "stop_fractions": (0.0, 1.0)}, ValueError, "stop_fractions"),
    ],
)
def test_sampler_arguments_are_validated(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        adso.ADSOSampler(**kwargs)


# --- bad declarations against the sampler's target: error before any work ---------------


def _calls_and_error(sampler, objective_kwargs, exc, match):
    calls: list[int] = []
    study = optuna.create_study(sampler=sampler, pruner=adso.ADSOPruner())
    with pytest.raises(exc, match=match):
        study.optimize(make_objective(calls=calls, **objective_kwargs), n_trials=1)
    assert calls == []


def test_unknown_target_parameter():
    sampler = adso.ADSOSampler(target={"size": 1e9, "step": TARGET_STEP}, seed=0)
    _calls_and_error(sampler, {}, ValueError, r"unknown target parameter 'size'.*'model_size'")


def test_target_below_every_proxy_scale():
    sampler = adso.ADSOSampler(target={"model_size": 1e6, "step": TARGET_STEP}, seed=0)
    _calls_and_error(sampler, {}, ValueError, r"target\['model_size'\].*below")


def test_scale_declared_but_target_has_none():
    sampler = adso.ADSOSampler(target={"step": TARGET_STEP}, seed=0)
    _calls_and_error(sampler, {}, ValueError, "model_size")


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, "cheap"])
def test_bad_cost_values(value):
    sampler = adso.ADSOSampler(
        target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, cost=lambda p, s: value, seed=0
    )
    exc = TypeError if isinstance(value, str) else ValueError
    _calls_and_error(sampler, {}, exc, r"cost\(")


def test_negative_cost_at_a_proxy_scale_only():
    def cost(params, step):
        return -1.0 if params["model_size"] < 5e7 else params["model_size"] * step

    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, cost=cost, seed=0)
    _calls_and_error(sampler, {}, ValueError, r"cost\(\{'model_size': 10000000.0\}")


def test_scale_choices_are_floats_in_trial_params():
    study = optuna.create_study(sampler=make_sampler())
    study.optimize(make_objective(scales=[int(s) for s in SCALES]), n_trials=2)
    assert {type(t.params["model_size"]) for t in study.trials} == {float}


def test_a_retried_trial_keeps_its_mixture_and_its_plan():
    """RetryFailedTrialCallback re-creates a failed trial with its params and system attrs: the
    sampler must run that mixture (not propose another) and keep the original's planned stop."""
    from optuna.storages import RetryFailedTrialCallback

    study = optuna.create_study(sampler=make_sampler(seed=0), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=6)
    failed = study.ask()
    objective = make_objective()
    weights = adso.suggest_mixture(failed, "mix", list(DOMAINS))
    adso.suggest_scale(failed, "model_size", list(SCALES))
    study.tell(failed, state=TrialState.FAIL)
    original = study.trials[failed.number]
    RetryFailedTrialCallback(max_retry=1)(study, original)
    study.optimize(objective, n_trials=1)
    retry = study.trials[-1]
    assert retry.system_attrs["failed_trial"] == failed.number
    np.testing.assert_allclose(mixture_params(retry), [weights[d] for d in DOMAINS])
    assert retry.params["model_size"] == original.params["model_size"]
    assert retry.system_attrs.get("adso:stop_step") == original.system_attrs.get("adso:stop_step")


def test_workers_starting_at_once_do_not_both_run_the_uniform_mixture():
    """Trial 0 takes the uniform mixture first; a trial that starts before trial 0 has written
    anything must not take it too (under load four workers once ran it twice)."""
    sampler = adso.ADSOSampler(target={"step": 10}, seed=0)
    study = optuna.create_study(sampler=sampler)
    first, second = study.ask(), study.ask()  # both running, neither has suggested yet
    w_second = adso.suggest_mixture(second, "mix", ["a", "b", "c"])
    assert not np.allclose(list(w_second.values()), 1 / 3)
    w_first = adso.suggest_mixture(first, "mix", ["a", "b", "c"])
    assert not np.allclose(list(w_first.values()), list(w_second.values()))
