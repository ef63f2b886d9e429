"""The baselines in their strongest configurations: parametrizations, settings, transfer methods."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import optuna
import pytest

from benchmarks.problems import Problem, synthetic_world
from benchmarks.runner import (
    ADSO_METHODS,
    ALIASES,
    BASELINE_FAMILIES,
    BASELINES,
    METHOD_CONFIG,
    METHODS,
    SUITE_METHODS,
    TRANSFER_METHODS,
    Trace,
    _make_sampler_and_pruner,
    canonical,
    flops_to_reach,
    flops_to_stay,
    run_study,
    suggest_mixture_floats,
)
from benchmarks.transfer import extrapolate, run_transfer


@pytest.fixture(scope="module")
def world() -> Problem:
    return synthetic_world(seed=0, k=3, n_scales=3)


@pytest.fixture(scope="module")
def beyond() -> Problem:
    """A small world with its target beyond the runnable scales, three of which remain."""
    p = synthetic_world(seed=0, k=3, n_scales=4)
    p = dataclasses.replace(p, scales=p.scales[:-1]) if p.target_runnable else p
    assert not p.target_runnable and len(p.scales) >= 3
    return p


def _linear() -> Problem:
    """Noiseless, linear in the weights: the optimum is the vertex of the first domain."""
    c = np.array([1.0, 2.0, 3.0])
    return Problem(
        name="linear", domains=["a", "b", "c"], scales=[1.0], report_steps=[1, 2], target_scale=1.0,
        target_step=2, maximize=False, noise_std=0.0, loss_fn=lambda w, s, t: w @ c,
        cost_fn=lambda s, t: s * t,
    )


def _mixtures(storage: optuna.storages.BaseStorage) -> list[dict[str, float]]:
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t.user_attrs["mix"] for t in study.get_trials()]


def _valid(mixture: dict[str, float] | np.ndarray, k: int) -> bool:
    w = np.array(list(mixture.values()) if isinstance(mixture, dict) else mixture, dtype=float)
    return len(w) == k and bool(np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-9)


# --- names -----------------------------------------------------------------------------------


def test_method_names_families_aliases_and_config() -> None:
    for family, (floats, dirichlet) in BASELINE_FAMILIES.items():
        assert (floats, dirichlet) == (f"{family}-floats", f"{family}-dirichlet")
        assert ALIASES[family] == dirichlet and canonical(family) == dirichlet
        assert {family, floats, dirichlet} <= set(BASELINES)
    assert set(BASELINE_FAMILIES) == {"random", "sobol", "tpe", "tpe-hyperband", "gp"}
    assert TRANSFER_METHODS == ("regmix", "scaling-law")
    assert set(METHODS) == set(BASELINES) | set(TRANSFER_METHODS) | set(ADSO_METHODS)
    assert len(METHODS) == len(set(METHODS))
    assert not set(ALIASES) & set(SUITE_METHODS)  # a suite runs each study once
    for m in SUITE_METHODS:
        assert isinstance(METHOD_CONFIG[m], str) and METHOD_CONFIG[m] and "\n" not in METHOD_CONFIG[m]


def test_aliases_run_the_dirichlet_variants(world: Problem) -> None:
    for alias in ("random", "tpe-hyperband"):  # Hyperband's brackets hash the study name
        a = run_study(world, alias, seed=0, budget=2)
        b = run_study(world, ALIASES[alias], seed=0, budget=2)
        assert a.method == alias and b.method == ALIASES[alias]
        np.testing.assert_array_equal(a.regret, b.regret)
        np.testing.assert_array_equal(a.flops, b.flops)
        assert a.final_mixture == b.final_mixture


# --- parametrizations ------------------------------------------------------------------------


def test_floats_normalize_reach_faces_and_all_zero_is_uniform() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    domains = ["a", "b", "c"]
    study.enqueue_trial({"mix/a": 0.0, "mix/b": 0.5, "mix/c": 1.5 / 3})
    study.enqueue_trial({"mix/a": 0.0, "mix/b": 0.0, "mix/c": 0.0})
    study.enqueue_trial({"mix/a": 0.0, "mix/b": 0.0, "mix/c": 0.7})
    out = []
    study.optimize(lambda t: (out.append(suggest_mixture_floats(t, "mix", domains)), 0.0)[1], n_trials=4)
    assert out[0] == pytest.approx({"a": 0.0, "b": 0.5, "c": 0.5}) and out[0]["a"] == 0.0  # a face
    assert out[1] == pytest.approx({d: 1 / 3 for d in domains})
    assert out[2] == {"a": 0.0, "b": 0.0, "c": 1.0}  # a vertex
    for t, mix in zip(study.trials, out):
        assert t.user_attrs["mix"] == mix and _valid(mix, 3)
        assert set(t.params) == {f"mix/{d}" for d in domains}


def test_gp_floats_reaches_a_face_where_the_optimum_sits() -> None:
    storage = optuna.storages.InMemoryStorage()
    trace = run_study(_linear(), "gp-floats", seed=0, budget=14, storage=storage)
    mixtures = _mixtures(storage)
    assert all(_valid(m, 3) for m in mixtures)
    assert any(min(m.values()) == 0.0 for m in mixtures[10:])  # after the random start-up trials
    assert trace.final_regret < 0.05


@pytest.mark.parametrize("method", ["random-dirichlet", "sobol-dirichlet", "random-floats", "sobol-floats"])
def test_every_parametrization_records_valid_mixtures(world: Problem, method: str) -> None:
    storage = optuna.storages.InMemoryStorage()
    trace = run_study(world, method, seed=1, budget=4, storage=storage)
    mixtures = _mixtures(storage)
    assert len(mixtures) == trace.n_trials == 4
    assert all(_valid(m, world.k) for m in mixtures)
    assert _valid(trace.final_mixture, world.k)
    assert np.all(trace.trial_scale == world.top_scale)


# --- strongest settings ----------------------------------------------------------------------


def test_gp_is_deterministic_exactly_on_noiseless_problems(world: Problem) -> None:
    assert world.noisy
    quiet = dataclasses.replace(world, noise_std=0.0, run_noise_std=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("gp", "gp-floats", "gp-dirichlet"):
            noisy_sampler, _ = _make_sampler_and_pruner(world, method, 0)
            quiet_sampler, _ = _make_sampler_and_pruner(quiet, method, 0)
            assert isinstance(noisy_sampler, optuna.samplers.GPSampler)
            assert noisy_sampler._deterministic is False and quiet_sampler._deterministic is True


def test_tpe_is_multivariate_and_hyperband_is_bohb_style(world: Problem) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("tpe", "tpe-floats", "tpe-dirichlet", "tpe-hyperband", "tpe-hyperband-floats"):
            sampler, pruner = _make_sampler_and_pruner(world, method, 0)
            assert isinstance(sampler, optuna.samplers.TPESampler)
            assert sampler._multivariate is True and sampler._group is False
            if "hyperband" in method:
                assert isinstance(pruner, optuna.pruners.HyperbandPruner)
                assert pruner._min_resource == world.report_steps[0]
                assert pruner._max_resource == world.target_step
                assert pruner._reduction_factor == 3
            else:
                assert isinstance(pruner, optuna.pruners.NopPruner)
        sobol, _ = _make_sampler_and_pruner(world, "sobol-floats", 0)
        assert isinstance(sobol, optuna.samplers.QMCSampler) and sobol._scramble


# --- sustained hits --------------------------------------------------------------------------


def test_flops_to_stay_needs_the_whole_suffix_under_the_level() -> None:
    t = Trace("m", "p", 0, 5.0, flops=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
              regret=np.array([0.5, 0.04, 0.2, 0.03, 0.02]))
    assert flops_to_reach(t, 0.05) == 2.0  # first touch
    assert flops_to_stay(t, 0.05) == 4.0  # dipped, rose, then stayed from the 4th
    assert flops_to_stay(t, 0.025) == 5.0
    assert math.isinf(flops_to_stay(t, 0.01))
    assert flops_to_stay(t, 1.0) == 1.0  # always under: the first FLOPs
    rises = Trace("m", "p", 0, 3.0, flops=np.array([1.0, 2.0, 3.0]), regret=np.array([0.01, 0.02, 0.3]))
    assert flops_to_reach(rises, 0.05) == 1.0 and math.isinf(flops_to_stay(rises, 0.05))
    assert math.isinf(flops_to_stay(Trace("m", "p", 0, 1.0, flops=np.zeros(0), regret=np.zeros(0)), 0.5))


# --- transfer baselines ----------------------------------------------------------------------


def _check_transfer(trace: Trace, problem: Problem, budget: float, method: str) -> None:
    n = trace.n_trials
    assert n >= 2 and trace.method == method and trace.problem == problem.name
    assert np.all(np.diff(trace.flops) > 0)
    assert trace.flops[-1] >= budget * (1 - 1e-9) and trace.flops[-2] < budget  # stops once spent
    for arr in (trace.regret, trace.trial_scale, trace.trial_steps, trace.sampler_seconds,
                trace.sampler_cpu_seconds, trace.trial_regret):
        assert len(arr) == n and np.all(np.isfinite(arr))
    assert len(trace.best_observed_regret) == (n if problem.noisy else 0)
    assert trace.trial_state == ["COMPLETE"] * n and np.all(trace.trial_steps == problem.target_step)
    assert _valid(trace.final_mixture, problem.k)
    assert trace.regret[-1] == pytest.approx(problem.regret(trace.final_mixture))
    assert set(trace.trial_scale) <= set(problem.scales)
    paid = np.diff(np.concatenate([[0.0], trace.flops])) * problem.budget_unit
    expected = [problem.cost(s, problem.target_step) for s in trace.trial_scale]
    np.testing.assert_allclose(paid, expected, rtol=1e-9)
    assert Trace.from_dict(trace.to_dict()).to_dict() == trace.to_dict()


@pytest.mark.parametrize("which", ["runnable", "beyond"])
def test_regmix_trace_is_valid_and_runs_the_smallest_scale(world: Problem, beyond: Problem, which: str) -> None:
    problem = world if which == "runnable" else beyond
    trace = run_study(problem, "regmix", seed=0, budget=3)
    _check_transfer(trace, problem, 3, "regmix")
    assert np.all(trace.trial_scale == min(problem.scales))
    assert np.all(trace.regret[:7] == pytest.approx(1.0))  # uniform before the first fit (8 runs)
    assert trace.n_trials >= 8 and not np.allclose(list(trace.final_mixture.values()), 1 / 3)
    again = run_study(problem, "regmix", seed=0, budget=3)
    np.testing.assert_array_equal(trace.regret, again.regret)


@pytest.mark.parametrize("which", ["runnable", "beyond"])
def test_scaling_law_trace_is_valid_and_runs_the_largest_scales_cheapest_first(
    world: Problem, beyond: Problem, which: str
) -> None:
    problem = world if which == "runnable" else beyond
    trace = run_study(problem, "scaling-law", seed=0, budget=6)
    _check_transfer(trace, problem, 6, "scaling-law")
    top3 = sorted(problem.scales)[-3:]
    n = trace.n_trials
    np.testing.assert_array_equal(trace.trial_scale, np.resize(top3, n))
    per = len(top3)
    assert np.all(trace.regret[: per - 1] == pytest.approx(1.0))  # no law fitted yet: uniform


def test_transfer_respects_max_trials_and_rejects_bad_input(world: Problem) -> None:
    for method in TRANSFER_METHODS:
        trace = run_study(world, method, seed=0, budget=100, max_trials=5)
        assert trace.n_trials == 5 and trace.flops[-1] < 100
    with pytest.raises(ValueError, match="unknown transfer method"):
        run_transfer(world, "nope", seed=0)
    with pytest.raises(ValueError, match="budget"):
        run_study(world, "regmix", seed=0, budget=0)


def test_scaling_law_extrapolation_recovers_a_clean_law() -> None:
    scales = np.array([1e7, 3e7, 9e7])
    law = lambda n: 2.0 + 1.5 * (n / 9e7) ** -0.3  # noqa: E731
    assert extrapolate(scales, law(scales), 2.7e8) == pytest.approx(law(2.7e8), rel=1e-4)
    assert extrapolate(scales[:2], law(scales[:2]), 2.7e8) == law(scales[1])  # too few: the largest
    assert math.isnan(extrapolate(scales, np.array([1.0, math.nan, 2.0]), 2.7e8))
