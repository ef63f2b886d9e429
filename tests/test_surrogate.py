"""The multi-fidelity GP on plain arrays: (weights, z_scale, z_step) -> value."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from optuna_adso.simplex import sample_simplex
from optuna_adso.space import make_mixture_spec
from optuna_adso.surrogate import (
    FidelityAxes,
    MultiFidelitySurrogate,
    SurrogateFitError,
    single_threaded,
    thin_observations,
)

SPEC = make_mixture_spec("m", ["a", "b", "c"])
CENTRE = np.array([0.6, 0.3, 0.1])
SMALL = np.array([-1.0, 0.0])  # smallest scale, target step
TARGET = np.array([0.0, 0.0])


def effect(w: np.ndarray) -> np.ndarray:
    return 3.0 * np.sum((w - CENTRE) ** 2, axis=1)


def known(w: np.ndarray, zs: np.ndarray, zt: np.ndarray) -> np.ndarray:
    """A mixture effect shared by all fidelities plus a power law in scale and steps."""
    return 2.0 + effect(w) + 0.5 * zs - 0.3 * zt


def _design(rng, n, scale_levels=(-1.0, -0.5, 0.0), step_levels=(-1.0, -0.5, 0.0)):
    w = sample_simplex(rng, n, SPEC, face_fraction=0.2)
    zs = rng.choice(scale_levels, size=n)
    zt = rng.choice(step_levels, size=n)
    return w, zs, zt


def _at(w: np.ndarray, z) -> np.ndarray:
    return np.column_stack([w, np.tile(np.asarray(z, float), (len(w), 1))])


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    w, zs, zt = _design(rng, 60)
    x = np.column_stack([w, zs, zt])
    y = known(w, zs, zt)
    with single_threaded():
        s = MultiFidelitySurrogate().fit(x, y, n_weights=3)
    return s, x, y


def test_fits_a_known_function_and_predicts_held_out_target_points(fitted):
    s, _, _ = fitted
    rng = np.random.default_rng(1)
    w_test = sample_simplex(rng, 300, SPEC, face_fraction=0.2)
    mean, var = s.predict(_at(w_test, TARGET))
    truth = known(w_test, np.zeros(300), np.zeros(300))
    assert mean.shape == var.shape == (300,)
    assert np.all(var > 0)
    rmse = math.sqrt(np.mean((mean - truth) ** 2))
    assert rmse < 0.05 * truth.std(), (rmse, truth.std())
    # the uncertainty is not wildly overconfident
    assert np.mean(np.abs(mean - truth) / np.sqrt(var) < 3.0) > 0.9
    # the ranking of mixtures at the target is right: the predicted best is near the true best
    assert np.sum(np.abs(w_test[np.argmin(mean)] - w_test[np.argmin(truth)])) < 0.15
    # and the fidelity trend is learned: smaller scale predicts lower loss here (+0.5 z_scale)
    m_small, _ = s.predict(_at(w_test[:20], SMALL))
    np.testing.assert_allclose(m_small - mean[:20], -0.5, atol=0.05)


def test_learns_positive_correlation_when_effect_is_shared(fitted):
    s, _, _ = fitted
    assert s.fidelity_correlation(SMALL, TARGET) > 0.8
    assert s.fidelity_correlation(TARGET, TARGET) == pytest.approx(1.0)


def test_learns_negative_cross_fidelity_correlation():
    """The small scale ranks mixtures in the opposite order to the target (HellaSwag-like)."""
    rng = np.random.default_rng(2)
    w, zs, _ = _design(rng, 50, scale_levels=(-1.0, 0.0))
    zt = np.zeros(50)
    y = 2.0 + np.where(zs < -0.5, -effect(w), effect(w)) + 0.5 * zs
    with single_threaded():
        s = MultiFidelitySurrogate().fit(np.column_stack([w, zs, zt]), y, n_weights=3)
    corr = s.fidelity_correlation(SMALL, TARGET)
    assert corr < -0.8, corr
    # the posterior at the target follows the target's data, not the (inverted) small-scale data
    w_test = sample_simplex(rng, 200, SPEC)
    mean, _ = s.predict(_at(w_test, TARGET))
    assert np.corrcoef(mean, effect(w_test))[0, 1] > 0.95
    mean_small, _ = s.predict(_at(w_test, SMALL))
    assert np.corrcoef(mean_small, effect(w_test))[0, 1] < -0.95


def test_predict_pairs_returns_a_valid_joint_covariance(fitted):
    s, _, _ = fitted
    rng = np.random.default_rng(3)
    w = sample_simplex(rng, 100, SPEC, face_fraction=0.3)
    xa, xb = _at(w, SMALL), _at(w, TARGET)
    ma, mb, va, vb, cov = s.predict_pairs(xa, xb)
    for arr in (ma, mb, va, vb, cov):
        assert arr.shape == (100,) and np.all(np.isfinite(arr))
    assert np.all(va > 0) and np.all(vb > 0)
    assert np.all(np.abs(cov) <= np.sqrt(va * vb) * (1 + 1e-6))
    # consistent with the marginal predictions
    m1, v1 = s.predict(xa)
    m2, v2 = s.predict(xb)
    np.testing.assert_allclose(ma, m1, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(mb, m2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(va, v1, rtol=1e-3, atol=1e-10)
    np.testing.assert_allclose(vb, v2, rtol=1e-3, atol=1e-10)
    # a pair of identical points has correlation one
    _, _, va2, vb2, cov2 = s.predict_pairs(xb[:5], xb[:5])
    np.testing.assert_allclose(cov2, np.sqrt(va2 * vb2), rtol=1e-6)


def test_state_round_trips_through_json_and_warm_start(fitted):
    s, x, y = fitted
    state = s.state()
    assert all(isinstance(v, float) and math.isfinite(v) for v in state)
    restored = json.loads(json.dumps(state))
    with single_threaded():
        warm = MultiFidelitySurrogate().fit(x, y, n_weights=3, init_state=restored, maxiter=0)
    rng = np.random.default_rng(4)
    xt = _at(sample_simplex(rng, 50, SPEC, face_fraction=0.2), TARGET)
    m1, v1 = s.predict(xt)
    m2, v2 = warm.predict(xt)
    np.testing.assert_allclose(m2, m1, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v2, v1, rtol=5e-2, atol=1e-6)
    np.testing.assert_allclose(warm.state(), state, rtol=0, atol=1e-9)


def test_nonfinite_rows_are_dropped_not_fitted(fitted):
    s, x, y = fitted
    state = s.state()
    x_bad = np.vstack([x, x[:3]])
    y_bad = np.concatenate([y, [np.nan, np.inf, -np.inf]])
    x_bad2 = x_bad.copy()
    x_bad2[0, 3] = np.nan  # a non-finite input drops its row too
    with single_threaded():
        clean = MultiFidelitySurrogate().fit(x[1:], y[1:], n_weights=3, init_state=state, maxiter=0)
        dirty = MultiFidelitySurrogate().fit(x_bad2, y_bad, n_weights=3, init_state=state, maxiter=0)
    assert dirty.model.train_inputs[0].shape[0] == len(x) - 1
    xt = _at(sample_simplex(np.random.default_rng(5), 20, SPEC), TARGET)
    np.testing.assert_allclose(dirty.predict(xt)[0], clean.predict(xt)[0], rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(dirty.predict(xt)[0]))


def test_fit_error_on_no_finite_data():
    x = np.column_stack([np.full((4, 3), 1 / 3), np.zeros((4, 2))])
    with pytest.raises(SurrogateFitError):
        MultiFidelitySurrogate().fit(x, np.full(4, np.nan), n_weights=3)
    with pytest.raises(SurrogateFitError):
        MultiFidelitySurrogate().fit(x[:0], np.zeros(0), n_weights=3)
    with pytest.raises(ValueError, match="x must be"):
        MultiFidelitySurrogate().fit(x, np.zeros(3), n_weights=3)
    with pytest.raises(ValueError, match="surrogate kind"):
        MultiFidelitySurrogate(kind="nope").fit(x, np.zeros(4), n_weights=3)


def test_condition_on_adds_data_with_the_same_hyperparameters(fitted):
    s, _, _ = fitted
    w_new = np.array([[0.05, 0.05, 0.9]])
    x_new = _at(w_new, TARGET)
    m0, v0 = s.predict(x_new)
    believed = m0 + 0.3
    s2 = s.condition_on(x_new, believed)
    m1, v1 = s2.predict(x_new)
    # the posterior moves most of the way to the new observation (noise keeps it from all of it)
    assert (m1[0] - m0[0]) / 0.3 > 0.8
    assert v1[0] < v0[0]
    np.testing.assert_allclose(s2.state_exact(), s.state_exact())
    assert s.predict(x_new)[0][0] == pytest.approx(m0[0])  # the original is untouched


def test_paper_product_rbf_kind_fits_the_known_function():
    rng = np.random.default_rng(6)
    w, zs, zt = _design(rng, 40)
    with single_threaded():
        s = MultiFidelitySurrogate(kind="product-rbf").fit(
            np.column_stack([w, zs, zt]), known(w, zs, zt), n_weights=3
        )
    w_test = sample_simplex(rng, 100, SPEC)
    mean, _ = s.predict(_at(w_test, TARGET))
    assert np.corrcoef(mean, effect(w_test))[0, 1] > 0.9
    assert math.isnan(s.fidelity_correlation(SMALL, TARGET))


def test_fidelity_axes_put_target_at_zero_and_smallest_at_minus_one():
    axes = FidelityAxes.from_ranges(9.0, 4.0, 7.0, 2.0)
    z = axes.z([9.0, 7.0, 8.0], [4.0, 2.0, 3.0])
    np.testing.assert_allclose(z, [[0, 0], [-1, -1], [-0.5, -0.5]])
    # a target equal to the only fidelity still gives a finite span
    z = FidelityAxes.from_ranges(8.0, 3.0, 8.0, 3.0).z([8.0], [3.0])
    assert np.all(np.isfinite(z))


def test_thin_observations_keeps_highest_priority():
    rng = np.random.default_rng(0)
    priority = np.arange(100, dtype=float)
    idx = thin_observations(100, 30, priority, rng)
    assert len(idx) == 30 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, np.arange(70, 100))
    np.testing.assert_array_equal(thin_observations(10, 30, priority[:10], rng), np.arange(10))


def test_the_anchor_only_gp_does_not_thread_a_wiggly_function_through_noisy_runs():
    """A dozen noisy final values of a smooth effect: with GPSampler's lengthscale prior the
    target-only GP keeps its lengthscales long (the earlier log-normal prior let them fall to
    0.08-0.17 here, a function through every lucky run that its EI then chased)."""
    spec = make_mixture_spec("m", [f"d{i}" for i in range(6)])
    for seed in range(3):
        rng = np.random.default_rng(seed)
        w = sample_simplex(rng, 14, spec, face_fraction=0.0)
        y = 0.3 * w[:, 0] - 0.2 * w[:, 1] + 0.05 * rng.normal(size=len(w))
        with single_threaded():
            gp = MultiFidelitySurrogate("mixture").fit(np.column_stack([w, np.zeros((14, 2))]), y, n_weights=6)
        lengthscales = gp.model.covar_module.inner.base_kernel.lengthscale.detach().numpy()
        assert lengthscales.min() >= 0.2, lengthscales


def test_the_lengthscale_prior_is_gpsamplers():
    """log p(l) = -0.1 (l^2 + l^-2): its mode is 1, and it is symmetric in log l."""
    import torch

    from optuna_adso.surrogate import InverseSquaredLengthscalePrior

    prior = InverseSquaredLengthscalePrior()
    ls = torch.tensor([0.1, 0.5, 1.0, 2.0, 10.0], dtype=torch.float64)
    lp = prior.log_prob(ls).numpy()
    assert int(np.argmax(lp)) == 2 and lp[2] == pytest.approx(-0.2)
    assert lp[1] == pytest.approx(lp[3]) and lp[0] == pytest.approx(lp[4]) == pytest.approx(-0.1 * (0.01 + 100))


def test_the_coregionalization_prior_is_lkj_shaped():
    """log p(B) = (eta - 1) log det corr(B): 0 for independent features, the same for a
    correlation and its opposite, lower the stronger it is, and blind to the variances."""
    import torch

    from optuna_adso.surrogate import CorrelationShrinkagePrior

    prior = CorrelationShrinkagePrior(2.0)

    def b(r: float, scale: float = 1.0) -> torch.Tensor:
        c = torch.tensor([[1.0, r, 0.0], [r, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        d = torch.diag(torch.tensor([scale, 7.0, 0.1], dtype=torch.float64))
        return d @ c @ d

    lp = [float(prior.log_prob(b(r))) for r in (0.0, 0.5, -0.5, 0.9)]
    assert lp[0] == pytest.approx(0.0, abs=1e-12)
    assert lp[1] == pytest.approx(lp[2]) and lp[0] > lp[1] > lp[3]
    assert lp[3] == pytest.approx(math.log(1 - 0.81))
    assert float(prior.log_prob(b(0.5, scale=30.0))) == pytest.approx(lp[1])


def _small_scale_world(seed: int, informative: bool) -> tuple[np.ndarray, np.ndarray]:
    """40 runs at the smallest scale and 8 at the target, at different mixtures; the small scale's
    mixture effect is 3x the target's (informative) or an unrelated function as large."""
    spec = make_mixture_spec("m", [f"d{i}" for i in range(5)])
    rng = np.random.default_rng(seed)
    c_target, c_small = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    w_small, w_target = sample_simplex(rng, 40, spec), sample_simplex(rng, 8, spec)
    small_effect = c_target if informative else c_small
    y = np.concatenate([
        2.0 + 3.0 * np.sum((w_small - small_effect) ** 2, axis=1) + (0 if informative else 0.5 * np.sin(9 * w_small[:, 0])),
        np.sum((w_target - c_target) ** 2, axis=1),
    ]) + 0.002 * rng.normal(size=48)
    x = np.vstack([_at(w_small, SMALL), _at(w_target, TARGET)])
    return x, y


def _small_to_target_correlation(seed: int, informative: bool) -> float:
    x, y = _small_scale_world(seed, informative)
    with single_threaded():
        gp = MultiFidelitySurrogate().fit(x, y, n_weights=5, groups=np.arange(len(y)))
    return gp.fidelity_correlation(SMALL, TARGET)


def test_a_small_scale_is_not_read_as_the_target_unless_its_runs_show_it(monkeypatch):
    """Where no mixture ran at both scales the likelihood barely sees how a mixture's level goes
    with its slope across scales; the prior keeps that correlation near 0 unless the data say
    otherwise, so an unrelated small scale does not look like a cheap copy of the target."""
    import optuna_adso.surrogate as surrogate

    with_prior = [_small_to_target_correlation(seed, informative=False) for seed in range(4)]
    monkeypatch.setattr(surrogate, "COREGIONALIZATION_ETA", 1.0)  # flat: no prior
    without = [_small_to_target_correlation(seed, informative=False) for seed in range(4)]
    assert np.mean(with_prior) < np.mean(without) - 0.1, (with_prior, without)
    monkeypatch.undo()
    assert min(_small_to_target_correlation(seed, informative=True) for seed in range(2)) > 0.95


@pytest.mark.parametrize("kind", ["coregionalized", "mixture"])
def test_flat_kernels_report_the_batch_shape_gpytorch_derives(kind):
    """Our kernels answer ``batch_shape`` without walking their sub-modules (a fit reads it
    thousands of times); the answer must be what gpytorch's own derivation gives."""
    import torch
    from gpytorch.kernels import Kernel

    from optuna_adso.surrogate import _build_modules

    covar, _ = _build_modules(kind, 3)
    for module in covar.modules():
        if isinstance(module, Kernel):
            assert module.batch_shape == Kernel.batch_shape.fget(module) == torch.Size([])


def _runs_with_offsets(rng, n_runs=24, reports=8, run_sd=0.15, report_sd=0.01):
    """Learning curves of ``n_runs`` runs: the known function plus one offset per run shared by
    all its reports, plus small per-report noise."""
    w = sample_simplex(rng, n_runs, SPEC, face_fraction=0.2)
    zs = rng.choice((-1.0, -0.5, 0.0), size=n_runs)
    steps = np.linspace(-1.0, 0.0, reports)
    x = np.vstack([np.column_stack([np.tile(w[i], (reports, 1)), np.full(reports, zs[i]), steps])
                   for i in range(n_runs)])
    offsets = np.repeat(run_sd * rng.normal(size=n_runs), reports)
    y = known(x[:, :3], x[:, 3], x[:, 4]) + offsets + report_sd * rng.normal(size=len(x))
    return x, y, np.repeat(np.arange(n_runs), reports)


def test_the_run_effect_is_learned_and_keeps_a_runs_reports_from_pinning_its_mixture_down():
    """Eight reports of one run share its offset: the GP told so learns the offset's variance,
    and its target interval at a run's mixture stays about one offset wide, where a GP that takes
    the scatter for per-report noise claims far more than the runs hold."""
    rng = np.random.default_rng(3)
    x, y, groups = _runs_with_offsets(rng)
    with single_threaded():
        with_runs = MultiFidelitySurrogate().fit(x, y, n_weights=3, groups=groups)
        pooled = MultiFidelitySurrogate().fit(x, y, n_weights=3)
    assert 0.05**2 < with_runs.run_variance < 0.4**2, with_runs.run_variance
    assert with_runs.noise_variance == pytest.approx(with_runs.report_noise_variance + with_runs.run_variance)
    # held-out truth at fresh mixtures: the run-aware GP's intervals cover it
    w_new = sample_simplex(np.random.default_rng(9), 200, SPEC, face_fraction=0.2)
    truth = known(w_new, np.zeros(200), np.zeros(200))
    mean, var = with_runs.predict(_at(w_new, TARGET))
    z = (truth - mean) / np.sqrt(var)
    assert np.mean(np.abs(z) < 1.645) > 0.8
    # every reading is the training data's: conditioning a fantasy leaves the runs' labels intact
    more = with_runs.condition_on(_at(w_new[:2], TARGET), truth[:2])
    assert len(more.groups) == len(groups) + 2 and len(set(more.groups[-2:]) & set(groups)) == 0
    assert pooled.run_variance == 0.0 or pooled.run_variance < with_runs.run_variance


def test_leaving_a_run_out_counts_its_offset_in_the_predictive_variance():
    rng = np.random.default_rng(4)
    x, y, groups = _runs_with_offsets(rng)
    with single_threaded():
        gp = MultiFidelitySurrogate().fit(x, y, n_weights=3, groups=groups)
    final_rows = np.flatnonzero(np.r_[groups[1:] != groups[:-1], True])
    mean, var = gp.leave_runs_out(groups, final_rows)
    assert np.all(var >= gp.noise_variance * 0.999)
    z = (y[final_rows] - mean) / np.sqrt(var)
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.6



def scaling_law(w: np.ndarray, n_params: np.ndarray) -> np.ndarray:
    """A scaling law with a floor, ``L = 2 + 3 (N / 1e7)^-0.3``, plus a mixture effect."""
    return 2.0 + 3.0 * (n_params / 1e7) ** -0.3 + effect(w)


def test_the_scaling_law_mean_flattens_beyond_the_runs_where_a_straight_line_overshoots():
    """Runs at 20M-480M, the target at 1B (z = 0): the straight line in log scale carries the
    trend on for ever; the power law with a floor learns that it flattens."""
    rng = np.random.default_rng(3)
    n_params = np.array([2e7, 6e7, 1.5e8, 4.8e8])
    w = sample_simplex(rng, 48, SPEC, face_fraction=0.2)
    sizes = n_params[np.arange(len(w)) % len(n_params)]
    x = np.column_stack([w, (np.log10(sizes) - 9.0) / 1.7, np.zeros(len(w))])
    y = scaling_law(w, sizes)
    probe = sample_simplex(np.random.default_rng(4), 16, SPEC)
    truth = scaling_law(probe, np.full(len(probe), 1e9))
    errors = {}
    with single_threaded():
        for kind in ("coregionalized", "coregionalized-scaling-law"):
            mean, _ = MultiFidelitySurrogate(kind).fit(x, y, n_weights=3).predict(_at(probe, TARGET))
            errors[kind] = float(np.mean(mean - truth))
    assert abs(errors["coregionalized-scaling-law"]) < 0.01  # 0.0001 on one machine
    assert errors["coregionalized"] < -0.03  # the straight line promises more than the law gives (-0.058)


def test_each_mixture_s_own_scaling_law_is_extrapolated_with_its_floor():
    """``L(w, N) = E(w) + A(w) N^-0.3``: mixtures rich in the first domain gain more with scale.
    The mixture effect's trend saturates as the law does (phi(z) = [1, h(z_scale), h(z_step)]);
    a trend linear in log scale carries every mixture's gain on for ever."""
    rng = np.random.default_rng(3)
    n_params = np.array([2e7, 6e7, 1.5e8, 4.8e8])
    w = sample_simplex(rng, 48, SPEC, face_fraction=0.2)
    sizes = n_params[np.arange(len(w)) % len(n_params)]

    def law(w: np.ndarray, n: np.ndarray) -> np.ndarray:
        return 2.0 + effect(w) + (3.0 + 4.0 * w[:, 0]) * (n / 1e7) ** -0.3

    x = np.column_stack([w, (np.log10(sizes) - 9.0) / 1.7, np.zeros(len(w))])
    probe = sample_simplex(np.random.default_rng(4), 16, SPEC)
    truth = law(probe, np.full(len(probe), 1e9))
    with single_threaded():
        law_mean, _ = MultiFidelitySurrogate("coregionalized-scaling-law").fit(x, law(w, sizes), n_weights=3).predict(
            _at(probe, TARGET))
        line_mean, _ = MultiFidelitySurrogate().fit(x, law(w, sizes), n_weights=3).predict(_at(probe, TARGET))
    assert np.max(np.abs(law_mean - truth)) < 0.01  # 0.0003 on average on one machine
    assert np.mean(line_mean - truth) < -0.08  # -0.18: the straight line promises more than the law gives
