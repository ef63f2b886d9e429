"""recommend() and flops_spent() on their own: what a study answers at any point of its life."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import (
    DOMAINS,
    REPORT_STEPS,
    SCALES,
    TARGET_SCALE,
    TARGET_STEP,
    make_objective,
    make_sampler,
    synthetic_loss,
)

import optuna_adso as adso
from optuna_adso.recommendation import flops_spent
from optuna_adso.study_model import CostModelNotStored


def _study(tmp_path, n_trials: int, sampler=None) -> optuna.Study:
    # NopPruner: every run reports all its steps (Optuna's default MedianPruner may stop one,
    # depending on where the sampler's proposals land)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="r",
                                sampler=sampler or make_sampler(seed=0, n_startup_trials=3, n_candidates=64),
                                pruner=optuna.pruners.NopPruner())
    study.optimize(make_objective(), n_trials=n_trials)
    return study


def test_before_any_model_it_returns_the_latest_mixture_and_says_so(tmp_path):
    study = optuna.create_study(sampler=make_sampler())
    # one report only: too few observations for a model
    study.optimize(make_objective(report_steps=(TARGET_STEP,)), n_trials=1)
    rec = adso.recommend(study)
    assert math.isnan(rec.mean) and rec.notes and "no model yet" in rec.notes[0]
    assert rec.mixture == pytest.approx(study.trials[0].user_attrs["mix"])


def test_the_answer_is_for_the_target_and_the_same_in_any_process(tmp_path):
    study = _study(tmp_path, 8)
    rec = adso.recommend(study)
    assert rec.target == {"step": TARGET_STEP, "model_size": TARGET_SCALE}
    assert set(rec.mixture) == set(DOMAINS) and sum(rec.mixture.values()) == pytest.approx(1.0)
    assert rec.n_trials == 8 and rec.n_observations == 8 * len(REPORT_STEPS)
    assert math.isfinite(rec.mean) and rec.std > 0
    # a process that never built the sampler reads the same settings from storage
    reloaded = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path / 'r.db'}")
    again = adso.recommend(reloaded)
    assert again.mixture == rec.mixture and again.mean == rec.mean and again.flops_spent == rec.flops_spent
    assert "recommended mixture" in str(rec)


def test_flops_spent_pays_each_run_up_to_its_last_report(tmp_path):
    sampler = make_sampler(seed=0, n_startup_trials=2, n_candidates=64)
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        adso.suggest_mixture(trial, "mix", list(DOMAINS))
        adso.suggest_scale(trial, "model_size", list(SCALES))
        trial.report(1.0, 100)
        if trial.number == 1:
            raise optuna.TrialPruned()  # paid for 100 steps only
        return 1.0  # complete, last report at step 100: paid up to there too

    study.optimize(objective, n_trials=3)
    expected = sum(sampler.run_cost(t.params["model_size"], 100) for t in study.trials)
    assert flops_spent(study) == pytest.approx(expected)
    assert flops_spent(study, sampler) == pytest.approx(expected)
    assert adso.recommend(study).flops_spent == pytest.approx(expected)


def test_a_callable_cost_needs_the_sampler_handed_over(tmp_path):
    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP},
                               cost=lambda params, step: params["model_size"] * step, seed=0, n_candidates=64)
    study = _study(tmp_path, 5, sampler)
    reloaded = optuna.load_study(study_name="r", storage=f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(CostModelNotStored, match="sampler="):
        adso.recommend(reloaded)
    assert adso.recommend(reloaded, sampler=sampler).flops_spent == adso.recommend(study).flops_spent


def test_a_maximized_study_is_answered_in_its_own_units(tmp_path):
    study = optuna.create_study(sampler=make_sampler(seed=0, n_startup_trials=3, n_candidates=64),
                                direction="maximize")

    def objective(trial):
        w = adso.suggest_mixture(trial, "mix", list(DOMAINS))
        size = adso.suggest_scale(trial, "model_size", list(SCALES))
        value = 0.0
        for step in REPORT_STEPS:
            value = -synthetic_loss([w[d] for d in DOMAINS], size, step)  # a score: higher is better
            trial.report(value, step)
        return value

    study.optimize(objective, n_trials=8)
    rec = adso.recommend(study)
    values = [t.value for t in study.trials]
    assert rec.mean < 0 and rec.mean == pytest.approx(np.max(values), abs=1.0)


def _mixture_gp(weights: np.ndarray, values: np.ndarray):
    from optuna_adso.surrogate import MultiFidelitySurrogate, target_inputs

    return MultiFidelitySurrogate("mixture").fit(target_inputs(weights), values, n_weights=weights.shape[1])


def test_an_untried_optimum_the_model_is_unsure_of_loses_to_the_best_tried_mixture():
    from optuna_adso.recommendation import keep_tried_unless_sure

    rng = np.random.default_rng(0)
    tried = rng.dirichlet(np.ones(3), size=6)
    values = tried @ np.array([1.0, 2.0, 3.0])  # best toward domain 0, which no run went near
    gp = _mixture_gp(tried, values)
    far = np.array([1.0, 0.0, 0.0])
    w, mean, std, note = keep_tried_unless_sure(gp, far, tried)
    best = tried[np.argmin(values)]
    assert w == pytest.approx(best) and note and "kept the best tried mixture" in note
    best_mean, best_var = gp.predict_target(best[None])
    assert (mean, std) == pytest.approx((float(best_mean[0]), math.sqrt(float(best_var[0]))))


def test_an_untried_optimum_the_model_is_sure_of_is_recommended():
    from optuna_adso.recommendation import keep_tried_unless_sure

    # dense runs on both sides of the optimum (0.5, 0.5, 0), none at it
    a = np.linspace(0.05, 0.95, 19)
    a = a[np.abs(a - 0.5) > 0.02]
    tried = np.column_stack([a, 1.0 - a, np.zeros_like(a)])
    tried = np.vstack([tried, [[1 / 3, 1 / 3, 1 / 3], [0.2, 0.2, 0.6], [0.1, 0.3, 0.6]]])
    values = 10.0 * (tried[:, 0] - 0.5) ** 2 + 3.0 * tried[:, 2]
    gp = _mixture_gp(tried, values)
    optimum = np.array([0.5, 0.5, 0.0])
    w, _, _, note = keep_tried_unless_sure(gp, optimum, tried, margin=0.5)
    assert note is None and w == pytest.approx(optimum)
    # a tried mixture is returned as it is, whatever the margin
    w, _, _, note = keep_tried_unless_sure(gp, tried[3], tried, margin=100.0)
    assert note is None and w == pytest.approx(tried[3])



def test_leave_top_scale_out_measures_extrapolation_on_arrays():
    from optuna_adso.extrapolation import leave_top_scale_out
    from optuna_adso.surrogate import MultiFidelitySurrogate

    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), 60)
    z_scale = np.repeat([-1.0, -0.6, -0.3], 20)
    x = np.column_stack([w, z_scale, np.zeros(60)])
    y = (w[:, 0] - 0.4) ** 2 - 0.5 * z_scale
    gp = MultiFidelitySurrogate().fit(x, y, n_weights=3)
    below, top = np.arange(40), np.arange(40, 60)
    honest = leave_top_scale_out(gp, x, y, below, top)
    assert honest is not None and honest.n_runs == 20 and honest.rank_correlation > 0.8
    # Values at the top scale that break the trend are caught: larger errors, a wider target.
    broken = y.copy()
    broken[top] += 0.5 * np.sign(w[top, 0] - 0.4)
    bad = leave_top_scale_out(gp, x, broken, below, top)
    assert bad.rmse > 3 * honest.rmse and bad.inflation >= honest.inflation >= 1.0
    assert leave_top_scale_out(gp, x, y, below, top[:1]) is None  # one held-out run says nothing


def _beyond_study(n_trials: int = 12) -> tuple[optuna.Study, object, list[str], list[float], int]:
    """A study of a simulated world whose target (4x its largest scale) cannot be run."""
    from optuna_adso.simulated import SimulatedWorld

    world = SimulatedWorld(seed=6, k=3, target_factor=4.0)
    domains, scales, step = ["a", "b", "c"], world.scales[:3], 4000

    def objective(trial):
        w = adso.suggest_mixture(trial, "mix", domains)
        n = adso.suggest_scale(trial, "n", scales)
        for s in range(1000, step + 1, 1000):
            value = float(world.loss(np.array([w[d] for d in domains]), n, s))
            trial.report(value, s)
        return value

    sampler = adso.ADSOSampler({"n": 4 * scales[-1], "step": step}, cost=lambda p, s: world.cost(p["n"], s), seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study, world, domains, scales, step


def test_a_target_beyond_the_runs_reports_how_far_and_how_well_scale_extrapolates():
    study, world, domains, scales, step = _beyond_study()
    rec = adso.recommend(study)
    assert rec.beyond_data == pytest.approx(4.0)
    assert rec.extrapolation is not None and rec.extrapolation.n_runs >= 2
    assert any(n.startswith("leave-top-scale-out") for n in rec.notes)
    lo, hi = rec.interval(0.9)
    assert lo < rec.mean < hi
    # the extrapolation, widened by the leave-top-scale-out errors, covers the truth at the target
    truth = float(world.loss(np.array([rec.mixture[d] for d in domains]), 4 * scales[-1], step))
    assert lo <= truth <= hi, (lo, truth, hi)


def test_scale_fan_reaches_the_target_with_intervals_that_widen_beyond_the_runs():
    from optuna_adso.simulated import SimulatedWorld
    from optuna_adso.visualization import plot_scale_fan

    world = SimulatedWorld(seed=6, k=3, target_factor=4.0)
    domains, scales = ["a", "b", "c"], world.scales[:3]

    def objective(trial):
        w = adso.suggest_mixture(trial, "mix", domains)
        n = adso.suggest_scale(trial, "n", scales)
        for s in (1000, 2000):
            value = float(world.loss(np.array([w[d] for d in domains]), n, s))
            trial.report(value, s)
        return value

    study = optuna.create_study(sampler=adso.ADSOSampler({"n": 4 * scales[-1], "step": 2000}, seed=0))
    study.optimize(objective, n_trials=8)
    fig = plot_scale_fan(study, top=2, n_scales=8)
    lines = [t for t in fig.data if t.mode == "lines"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(lines) == 2 and len(bands) == 2
    assert lines[0].x[-1] == pytest.approx(4 * scales[-1])
    width = np.array(bands[0].y[:8]) - np.array(bands[0].y[8:])[::-1]
    assert width[-1] > width[np.argmin(np.abs(np.log(np.array(lines[0].x) / scales[-1])))]  # wider at the target


def test_beyond_the_runs_the_scaling_law_gp_states_the_values():
    """The search's GP (a straight line in log scale) picks the mixture; the GP with a power law
    with a floor, re-fitted by the sampler on the search's schedule and stored under its own key,
    states its value and every prediction of a study whose target cannot be run."""
    from optuna_adso import records
    from optuna_adso.study_model import StudyModel

    study, _, domains, _, _ = _beyond_study()
    model = StudyModel.of(study)
    assert records.latest_gp_state(study.trials, model.state_kind + records.STATED_SUFFIX) is not None
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(study.trials), maxiter=0)
    stated = model.fit_stated(fitted, now=len(study.trials), maxiter=0)
    assert stated.surrogate.kind == "coregionalized-scaling-law" and not stated.refitted  # stored, not re-fitted
    rec = adso.recommend(study)
    w = np.array([[rec.mixture[d] for d in domains]])
    stated_mean = float(stated.surrogate.predict_target(w)[0][0])
    line_mean = float(fitted.surrogate.predict_target(w)[0][0])
    assert rec.mean == pytest.approx(stated_mean, abs=1e-9)
    assert adso.predict(study, rec.mixture)[0].mean == pytest.approx(stated_mean, abs=1e-9)
    assert abs(stated_mean - line_mean) > 1e-6  # two models, not one under two names


def test_where_the_scaling_law_cannot_be_fitted_the_search_gp_states_every_value(monkeypatch):
    """recommend (with a note), predict and the scale fan all fall back to the search's GP; the
    fan used to fail with "no model to plot yet" while the other two answered."""
    from optuna_adso.study_model import StudyModel
    from optuna_adso.surrogate import SurrogateFitError
    from optuna_adso.visualization import plot_scale_fan

    study, _, domains, _, _ = _beyond_study()

    def no_scaling_law(self, fitted, *, now, maxiter=None):
        raise SurrogateFitError("refused by the test")

    monkeypatch.setattr(StudyModel, "fit_stated", no_scaling_law)
    rec = adso.recommend(study)
    assert any("scaling-law GP could not be fitted (refused by the test)" in n for n in rec.notes)
    model = StudyModel.of(study)
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(study.trials), maxiter=0)
    w = np.array([[rec.mixture[d] for d in domains]])
    line_mean = float(fitted.surrogate.predict_target(w)[0][0])
    assert rec.mean == pytest.approx(line_mean, abs=1e-9)
    assert adso.predict(study, rec.mixture)[0].mean == pytest.approx(line_mean, abs=1e-9)
    lines = [t for t in plot_scale_fan(study, top=1, n_scales=4).data if t.mode == "lines"]
    assert len(lines) == 1 and lines[0].x[-1] > max(StudyModel.of(study).scale_choices)


def test_a_runnable_target_is_stated_by_the_search_gp(tmp_path):
    from optuna_adso import records
    from optuna_adso.study_model import StudyModel

    study = _study(tmp_path, 8)
    model = StudyModel.of(study)
    assert records.latest_gp_state(study.trials, model.state_kind + records.STATED_SUFFIX) is None
    fitted = model.fit_surrogate(np.random.default_rng([0, model.n_own_trials]), now=len(study.trials), maxiter=0)
    w = {d: 1.0 / len(DOMAINS) for d in DOMAINS}
    assert adso.predict(study, w)[0].mean == pytest.approx(float(fitted.surrogate.predict_target(np.full((1, 3), 1 / 3))[0][0]))
