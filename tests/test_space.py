"""suggest_mixture / suggest_scale under ADSO and other samplers; the simplex helpers; bad input."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import DOMAINS, make_objective, make_sampler

import optuna_adso as adso
from optuna_adso.simplex import normalize_rows, project_to_bounded_simplex, sample_simplex
from optuna_adso.space import make_mixture_spec

FOUR = ["a", "b", "c", "d"]
# a >= 0.1 (min_weight), b <= 0.5 (max_weight), c <= 300 tokens * 2 epochs / 2000 tokens = 0.3
BOUNDS = dict(
    min_weight={"a": 0.1},
    max_weight={"b": 0.5},
    available_tokens={"c": 300.0},
    max_epochs=2.0,
    total_tokens=2000.0,
)
LOWER = np.array([0.1, 0.0, 0.0, 0.0])
UPPER = np.array([1.0, 0.5, 0.3, 1.0])
# the unconstrained optimum violates the bounds on a and c, so a model-based sampler presses on them
PULL = np.array([0.0, 0.1, 0.8, 0.1])


def _bounded_objective(trial: optuna.Trial) -> float:
    w = adso.suggest_mixture(trial, "mix", FOUR, **BOUNDS)
    return float(np.sum((np.array([w[d] for d in FOUR]) - PULL) ** 2))


def _plain_objective(trial: optuna.Trial) -> float:
    w = adso.suggest_mixture(trial, "mix", FOUR)
    return float(np.sum((np.array([w[d] for d in FOUR]) - PULL) ** 2))


def _adso_mixture_only(seed: int = 0) -> adso.ADSOSampler:
    return adso.ADSOSampler(target={"step": 100}, seed=seed, n_startup_trials=3)


def _weights(trial: optuna.trial.FrozenTrial, domains=FOUR) -> np.ndarray:
    stored = trial.user_attrs["mix"]
    assert list(stored) == list(domains)
    return np.array([stored[d] for d in domains])


def _assert_on_simplex(w: np.ndarray, lower=None, upper=None) -> None:
    assert np.all(np.isfinite(w))
    assert np.all(w >= 0.0)
    assert abs(w.sum() - 1.0) <= 1e-9
    if lower is not None:
        assert np.all(w >= lower - 1e-9), (w, lower)
    if upper is not None:
        assert np.all(w <= upper + 1e-9), (w, upper)


# --- suggest_mixture ---------------------------------------------------------------------------


def test_adso_params_are_the_weights_including_model_based_trials():
    study = optuna.create_study(sampler=_adso_mixture_only())
    study.optimize(_plain_objective, n_trials=7)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        w = _weights(t)
        _assert_on_simplex(w)
        params = np.array([t.params[f"mix/{d}"] for d in FOUR])
        np.testing.assert_allclose(params, w, rtol=0, atol=1e-12)
    # the model-based trials are not all the same mixture
    later = np.array([_weights(t) for t in study.trials[3:]])
    assert len(np.unique(np.round(later, 6), axis=0)) > 1


def test_adso_respects_min_max_and_token_bounds_and_params_stay_the_weights():
    study = optuna.create_study(sampler=_adso_mixture_only())
    study.optimize(_bounded_objective, n_trials=10)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        w = _weights(t)
        _assert_on_simplex(w, LOWER, UPPER)
        params = np.array([t.params[f"mix/{d}"] for d in FOUR])
        np.testing.assert_allclose(params, w, rtol=0, atol=1e-12)
    # the model pushes towards c = 0.8, i.e. onto the token bound of c, without crossing it
    best = min(study.trials, key=lambda t: t.value)
    assert _weights(best)[2] > 0.2


@pytest.mark.parametrize(
    "make",
    [lambda: optuna.samplers.RandomSampler(seed=1), lambda: optuna.samplers.TPESampler(seed=1)],
    ids=["random", "tpe"],
)
def test_other_samplers_get_valid_bounded_mixtures(make):
    study = optuna.create_study(sampler=make())
    study.optimize(_bounded_objective, n_trials=40)
    for t in study.trials:
        _assert_on_simplex(_weights(t), LOWER, UPPER)
    # the raw params are latent uniforms, not weights; the returned weights are normalized
    study2 = optuna.create_study(sampler=make())
    study2.optimize(_plain_objective, n_trials=20)
    for t in study2.trials:
        _assert_on_simplex(_weights(t))
        assert all(0.0 <= t.params[f"mix/{d}"] <= 1.0 for d in FOUR)


def test_random_sampler_mixtures_are_dirichlet_uniform():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(_plain_objective, n_trials=600)
    w = np.array([_weights(t) for t in study.trials])
    k = len(FOUR)
    np.testing.assert_allclose(w.mean(axis=0), 1.0 / k, atol=0.03)
    # Dirichlet(1) marginal variance (k-1)/(k^2 (k+1)); normalized uniforms would be much tighter
    np.testing.assert_allclose(w.var(axis=0), (k - 1) / (k**2 * (k + 1)), rtol=0.25)


def test_suggest_mixture_returns_same_weights_as_user_attr_and_order():
    seen = {}

    def objective(trial):
        seen[trial.number] = adso.suggest_mixture(trial, "mix", ["x", "y", "z"])
        return 0.0

    study = optuna.create_study(sampler=_adso_mixture_only())
    study.optimize(objective, n_trials=2)
    for t in study.trials:
        assert list(seen[t.number]) == ["x", "y", "z"]
        assert t.user_attrs["mix"] == seen[t.number]


# --- the simplex ---------------------------------------------------------------------------


def test_sample_simplex_uniform_draws_have_dirichlet_mean_and_no_zeros(rng):
    spec = make_mixture_spec("m", FOUR)
    w = sample_simplex(rng, 20000, spec, face_fraction=0.0)
    assert w.shape == (20000, 4)
    assert np.all(w > 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(w.mean(axis=0), 0.25, atol=0.01)
    np.testing.assert_allclose(w.var(axis=0), 3 / 80, rtol=0.05)


def test_sample_simplex_reaches_faces_and_vertices(rng):
    spec = make_mixture_spec("m", ["a", "b", "c"])
    w = sample_simplex(rng, 400, spec, face_fraction=0.5)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(w >= 0)
    n_zero = (w == 0.0).sum(axis=1)
    on_face = n_zero >= 1
    assert 0.35 < on_face.mean() < 0.65  # about face_fraction of the draws, with exact zeros
    vertices = np.isclose(w.max(axis=1), 1.0) & (n_zero == 2)
    assert vertices.sum() >= 20
    # every vertex and every edge is visited
    for i in range(3):
        assert np.any(vertices & (w[:, i] == 1.0))
        assert np.any((n_zero == 1) & (w[:, i] == 0.0))


def test_sample_simplex_respects_bounds(rng):
    spec = make_mixture_spec("m", FOUR, **BOUNDS)
    w = sample_simplex(rng, 2000, spec, face_fraction=0.4)
    assert np.all(w >= LOWER - 1e-9) and np.all(w <= UPPER + 1e-9)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert np.any(np.isclose(w[:, 2], 0.3)) and np.any(np.isclose(w[:, 0], 0.1))  # bounds are reached


def test_project_to_bounded_simplex_is_the_euclidean_projection(rng):
    v = rng.normal(size=(300, 4)) * 0.7
    w = project_to_bounded_simplex(v, LOWER, UPPER)
    assert w.shape == v.shape
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(w >= LOWER - 1e-9) and np.all(w <= UPPER + 1e-9)
    # KKT: w = clip(v - tau, lower, upper) for one shift tau per row
    for vi, wi in zip(v, w):
        free = (wi > LOWER + 1e-7) & (wi < UPPER - 1e-7)
        if free.sum() >= 2:
            shifts = vi[free] - wi[free]
            assert np.ptp(shifts) < 1e-6
        tau = np.median(vi[free] - wi[free]) if free.any() else None
        if tau is not None:
            np.testing.assert_allclose(np.clip(vi - tau, LOWER, UPPER), wi, atol=1e-6)
    # no feasible point is closer than the projection
    feasible = sample_simplex(rng, 500, make_mixture_spec("m", FOUR, **BOUNDS), face_fraction=0.3)
    for vi, wi in zip(v[:30], w[:30]):
        assert np.linalg.norm(vi - wi) <= np.linalg.norm(feasible - vi, axis=1).min() + 1e-9


def test_projected_weights_lie_inside_the_bounds_exactly(rng):
    """Optuna checks a relative parameter against FloatDistribution(low, high) exactly; a weight
    1e-16 above its max weight is rejected and silently re-drawn by sample_independent, so the
    trial runs another mixture than the one proposed.  Projections must not overshoot at all."""
    v = rng.normal(size=(5000, 4))
    v[:, 2] += 1.0  # push many rows onto the upper bound of c
    for w in (
        project_to_bounded_simplex(v, LOWER, UPPER),
        sample_simplex(rng, 5000, make_mixture_spec("m", FOUR, **BOUNDS), face_fraction=0.3),
    ):
        assert np.all(w >= LOWER), np.min(w - LOWER)
        assert np.all(w <= UPPER), np.max(w - UPPER)


def test_project_to_bounded_simplex_fixes_feasible_points(rng):
    spec = make_mixture_spec("m", FOUR, **BOUNDS)
    feasible = sample_simplex(rng, 200, spec, face_fraction=0.3)
    np.testing.assert_allclose(project_to_bounded_simplex(feasible, LOWER, UPPER), feasible, atol=1e-9)
    # plain simplex: a vertex stays a vertex, a point outside lands on the nearest face
    zeros, ones = np.zeros(3), np.ones(3)
    np.testing.assert_allclose(project_to_bounded_simplex([1.0, 0.0, 0.0], zeros, ones)[0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        project_to_bounded_simplex([0.7, 0.5, -0.2], zeros, ones)[0], [0.6, 0.4, 0.0], atol=1e-9
    )


def test_normalize_rows_sums_to_one_exactly(rng):
    w = normalize_rows(rng.random((1000, 7)) * rng.random((1000, 1)) * 1e3)
    assert np.all(w >= 0)
    assert np.max(np.abs(w.sum(axis=1) - 1.0)) <= 4e-16
    np.testing.assert_allclose(normalize_rows(np.zeros((1, 4)))[0], 0.25)


# --- bad input: a clear error naming the parameter, before the objective does any work ------


def _run_one(objective, sampler=None, n_trials=1, **study_kwargs):
    study = optuna.create_study(sampler=sampler or make_sampler(), **study_kwargs)
    study.optimize(objective, n_trials=n_trials)
    return study


def _mixture_objective(domains, calls, **kwargs):
    def objective(trial):
        adso.suggest_mixture(trial, "mix", domains, **kwargs)
        calls.append(trial.number)  # the "work"
        return 0.0

    return objective


@pytest.mark.parametrize(
    "domains, kwargs, exc, match",
    [
        (["a"], {}, ValueError, "at least two domains"),
        ([], {}, ValueError, "at least two domains"),
        (["a", "b", "a"], {}, ValueError, r"domains must be unique.*'a'"),
        ("ab", {}, TypeError, "domains"),
        (["a", "b", "c"], {"min_weight": {"a": 0.6, "b": 0.5}}, ValueError, "min_weight"),
        (["a", "b", "c"], {"min_weight": 0.4}, ValueError, "min_weight"),
        (["a", "b"], {"max_weight": 0.3}, ValueError, "max weight"),
        (["a", "b"], {"min_weight": {"z": 0.1}}, ValueError, r"min_weight.*'z'"),
        (["a", "b"], {"min_weight": -0.1}, ValueError, "min_weight"),
        (["a", "b"], {"available_tokens": {"a": 10.0}}, ValueError, "total_tokens"),
        (["a", "b"], {"available_tokens": {"a": 1.0, "b": 1.0}, "total_tokens": 100.0}, ValueError, "tokens"),
        (["a", "b"], {"max_epochs": 2.0}, ValueError, "max_epochs"),
    ],
)
@pytest.mark.parametrize("sampler", ["adso", "random"])
def test_bad_mixture_declarations(domains, kwargs, exc, match, sampler):
    calls: list[int] = []
    s = make_sampler() if sampler == "adso" else optuna.samplers.RandomSampler(seed=0)
    with pytest.raises(exc, match=match):
        _run_one(_mixture_objective(domains, calls, **kwargs), sampler=s)
    assert calls == []


@pytest.mark.parametrize("sampler", ["adso", "random"])
def test_mixture_domains_may_not_change_within_a_study(sampler):
    calls: list[int] = []
    study = optuna.create_study(
        sampler=make_sampler() if sampler == "adso" else optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(_mixture_objective(["a", "b"], calls), n_trials=1)
    with pytest.raises(ValueError, match=r"mixture 'mix'.*declared"):
        study.optimize(_mixture_objective(["a", "c"], calls), n_trials=1)
    with pytest.raises(ValueError, match=r"mixture 'mix'"):
        study.optimize(_mixture_objective(["a", "b"], calls, min_weight=0.1), n_trials=1)
    assert calls == [0]
    # the original declaration still works afterwards
    study.optimize(_mixture_objective(["a", "b"], calls), n_trials=1)
    assert calls == [0, 3]


@pytest.mark.parametrize(
    "choices, match",
    [
        ([], r"scale choices for 'model_size'.*non-empty"),
        ([-1e7, 1e8], r"scale choices for 'model_size'.*positive"),
        ([0.0, 1e8], r"scale choices for 'model_size'.*positive"),
        ([1e7, 1e7, 1e8], r"scale choices for 'model_size'.*unique"),
        ([math.nan, 1e8], r"scale choices for 'model_size'"),
        (["big", 1e8], r"scale choices for 'model_size'.*numbers"),
    ],
)
def test_bad_scale_choices(choices, match):
    calls: list[int] = []
    with pytest.raises(ValueError, match=match):
        _run_one(make_objective(scales=choices, calls=calls))
    assert calls == []
    with pytest.raises(ValueError, match=match):
        _run_one(make_objective(scales=choices, calls=calls), sampler=optuna.samplers.RandomSampler())
    assert calls == []


def test_scale_choices_may_not_change_within_a_study():
    calls: list[int] = []
    study = optuna.create_study(sampler=make_sampler())
    study.optimize(make_objective(calls=calls), n_trials=1)
    with pytest.raises(ValueError, match="scale 'model_size'"):
        study.optimize(make_objective(scales=[1e7, 1e9], calls=calls), n_trials=1)
    assert calls == [0]


def test_mixture_weights_under_adso_default_domain_set():
    study = optuna.create_study(sampler=make_sampler(), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=3)
    for t in study.trials:
        _assert_on_simplex(_weights(t, DOMAINS))
        assert t.params["model_size"] in (1e7, 1e8, 1e9)
