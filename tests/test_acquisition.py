"""Cost-aware acquisition and its optimizer, on arrays and real GP fits."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_adso.acquisition import (
    Acquisition,
    Fidelity,
    candidate_mixtures,
    expected_improvement,
    local_moves,
    minimize_target_mean,
    optimize_acquisition,
)
from optuna_adso.simplex import sample_simplex
from optuna_adso.space import make_mixture_spec
from optuna_adso.surrogate import MultiFidelitySurrogate, single_threaded

SPEC = make_mixture_spec("m", ["a", "b", "c"])
CHEAP = Fidelity(1e7, 1000, (-1.0, 0.0), 0.1)
FULL = Fidelity(1e9, 1000, (0.0, 0.0), 1.0)


def target_effect(w: np.ndarray) -> np.ndarray:
    return np.sin(4.0 * (w[:, 0] - w[:, 1]))


def unrelated_effect(w: np.ndarray) -> np.ndarray:
    """Exactly uncorrelated with target_effect on the simplex: symmetric under swapping a and b,
    while target_effect is antisymmetric."""
    return np.cos(5.0 * w[:, 2])


def _fit(w: np.ndarray, zs: np.ndarray, y: np.ndarray) -> MultiFidelitySurrogate:
    with single_threaded():
        return MultiFidelitySurrogate().fit(np.column_stack([w, zs, np.zeros(len(w))]), y, n_weights=3)


@pytest.fixture(scope="module")
def correlated():
    """The cheap fidelity has exactly the target's mixture effect.  Both were run at the same 12
    mixtures, all with c >= 0.5; the rest of the simplex is unexplored, so there is something
    worth learning, and learning it cheaply is as good as learning it at the target."""
    rng = np.random.default_rng(0)
    w = sample_simplex(rng, 400, SPEC, face_fraction=0.2)
    w = w[w[:, 2] >= 0.5][:12]
    ww, zs = np.vstack([w, w]), np.repeat([-1.0, 0.0], len(w))
    s = _fit(ww, zs, target_effect(ww) + 0.5 * zs)
    return s, w[np.argsort(target_effect(w))[:4]]


@pytest.fixture(scope="module")
def uncorrelated():
    """The cheap fidelity's mixture effect is unrelated to the target's; 15 runs at each."""
    rng = np.random.default_rng(0)
    w = sample_simplex(rng, 30, SPEC, face_fraction=0.2)
    zs = np.repeat([-1.0, 0.0], 15)
    s = _fit(w, zs, np.where(zs < -0.5, unrelated_effect(w), target_effect(w)) + 0.5 * zs)
    at_target = w[15:]
    return s, at_target[np.argsort(target_effect(at_target))[:4]]


# --- expected improvement ----------------------------------------------------------------


def test_expected_improvement_is_non_negative_and_grows_with_variance():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=1000)
    var = rng.random(1000) * 2
    ei = expected_improvement(mean, var, best=0.0)
    assert np.all(ei >= 0) and np.all(np.isfinite(ei))
    # at fixed mean below (and above) the best, more variance is more improvement
    variances = np.linspace(0.01, 4.0, 50)
    for m in (-1.0, -0.1, 0.5):
        e = expected_improvement(np.full(50, m), variances, best=0.0)
        assert np.all(np.diff(e) > 0)
    # at fixed variance, a lower mean is more improvement; zero variance gives max(best - mean, 0)
    means = np.linspace(-2, 2, 41)
    e = expected_improvement(means, np.full(41, 0.3), best=0.0)
    assert np.all(np.diff(e) < 0)
    np.testing.assert_allclose(
        expected_improvement(means, np.zeros(41), best=0.0), np.maximum(-means, 0.0), atol=1e-8
    )
    # a known value: mean == best gives sd * pdf(0)
    assert expected_improvement(np.array([1.0]), np.array([4.0]), 1.0)[0] == pytest.approx(
        2.0 / np.sqrt(2 * np.pi)
    )


# --- info per cost -----------------------------------------------------------------------


def _rho2(s: MultiFidelitySurrogate, w: np.ndarray) -> np.ndarray:
    n = len(w)
    xa = np.column_stack([w, np.tile(CHEAP.z, (n, 1))])
    xb = np.column_stack([w, np.zeros((n, 2))])
    _, _, va, vb, cov = s.predict_pairs(xa, xb)
    return cov**2 / ((va + s.noise_variance) * vb)


def test_cheap_correlated_fidelity_is_preferred(correlated):
    s, incumbents = correlated
    assert s.fidelity_correlation(np.array(CHEAP.z), np.array(FULL.z)) > 0.9
    w = sample_simplex(np.random.default_rng(1), 300, SPEC)
    acq = Acquisition(s, [CHEAP, FULL], incumbents)
    proposal = optimize_acquisition(acq, SPEC, np.random.default_rng(2))
    assert proposal.fidelity == CHEAP
    assert acq.score(w, CHEAP).max() > 2 * acq.score(w, FULL).max()
    assert proposal.score > 0 and np.isfinite(proposal.target_mean) and proposal.target_std > 0


def test_target_is_preferred_when_cheap_fidelity_is_uncorrelated(uncorrelated):
    s, incumbents = uncorrelated
    w = sample_simplex(np.random.default_rng(1), 300, SPEC)
    assert np.median(_rho2(s, w)) < 0.05
    acq = Acquisition(s, [CHEAP, FULL], incumbents)
    proposal = optimize_acquisition(acq, SPEC, np.random.default_rng(2))
    assert proposal.fidelity == FULL
    assert acq.score(w, FULL).max() > acq.score(w, CHEAP).max()


def test_info_per_cost_is_at_most_ei_times_variance_fraction_over_cost(correlated):
    s, incumbents = correlated
    acq = Acquisition(s, [CHEAP, FULL], incumbents)
    w = sample_simplex(np.random.default_rng(3), 200, SPEC, face_fraction=0.2)
    ei, _, _ = acq.target_ei(w)
    bound = ei * np.clip(_rho2(s, w), 0, 1) / CHEAP.relative_cost
    score = acq.score(w, CHEAP)
    assert np.all(score >= 0) and np.all(score <= bound * (1 + 1e-6) + 1e-12)
    assert np.any(score > 0)
    # where the rule pays for a run, it pays EI x variance fraction per unit cost
    on = score > 0
    np.testing.assert_allclose(score[on], bound[on], rtol=1e-6)
    # at the target itself the variance fraction is var / (var + noise), about one: the score is EI
    full = acq.score(w, FULL)
    assert np.all(full <= ei * (1 + 1e-9) + 1e-15)
    np.testing.assert_allclose(full, ei, rtol=1e-2, atol=1e-12)
    # the same runs at twice the price are worth at most half
    pricier = Fidelity(CHEAP.scale, CHEAP.step, CHEAP.z, 2 * CHEAP.relative_cost)
    assert np.all(acq.score(w, pricier) <= score / 2 * (1 + 1e-9) + 1e-15)


def test_paper_ei_per_cost_and_unknown_method(correlated):
    s, incumbents = correlated
    acq = Acquisition(s, [CHEAP, FULL], incumbents, method="ei-per-cost", cost_exponent=1.0)
    proposal = optimize_acquisition(acq, SPEC, np.random.default_rng(0), n_candidates=256)
    assert proposal.fidelity in (CHEAP, FULL)
    assert np.all(proposal.weights >= 0) and abs(proposal.weights.sum() - 1) < 1e-9
    with pytest.raises(ValueError, match="acquisition"):
        Acquisition(s, [CHEAP, FULL], incumbents, method="kg")


# --- the optimizer -----------------------------------------------------------------------


@pytest.mark.parametrize("bounded", [False, True])
def test_optimize_acquisition_returns_weights_on_the_simplex(correlated, bounded):
    s, incumbents = correlated
    spec = SPEC
    if bounded:
        spec = make_mixture_spec("m", ["a", "b", "c"], min_weight={"c": 0.2}, max_weight={"a": 0.3})
    acq = Acquisition(s, [CHEAP, FULL], incumbents)
    for seed in range(1):
        p = optimize_acquisition(acq, spec, np.random.default_rng(seed), n_candidates=256)
        assert p.weights.shape == (3,)
        assert np.all(p.weights >= np.array(spec.lower) - 1e-12)
        assert np.all(p.weights <= np.array(spec.upper) + 1e-12)
        assert abs(p.weights.sum() - 1.0) < 1e-12


def test_candidates_cover_vertices_faces_and_neighbours():
    rng = np.random.default_rng(0)
    anchor = np.array([[0.5, 0.3, 0.2]])
    c = candidate_mixtures(rng, SPEC, 300, anchors=anchor)
    np.testing.assert_allclose(c.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(c >= 0)
    for v in np.eye(3):
        assert np.any(np.all(np.isclose(c, v), axis=1))
    assert np.any((c == 0).sum(axis=1) == 1)  # edges
    near = np.abs(c - anchor).sum(axis=1) < 0.05
    assert near.sum() >= 5
    moves = local_moves(rng, anchor, SPEC, per_anchor=30)
    assert np.any((moves == 0).any(axis=1))  # some moves step onto a face
    np.testing.assert_allclose(moves.sum(axis=1), 1.0, atol=1e-9)


def _quadratic_surrogate(centre: np.ndarray, seed: int = 0) -> MultiFidelitySurrogate:
    """A GP fitted (at the target fidelity only) to ||w - centre||^2, centre outside the simplex."""
    rng = np.random.default_rng(seed)
    w = np.vstack([sample_simplex(rng, 25, SPEC, face_fraction=0.4), np.eye(3)])
    y = np.sum((w - centre) ** 2, axis=1)
    with single_threaded():
        return MultiFidelitySurrogate().fit(np.column_stack([w, np.zeros((len(w), 2))]), y, n_weights=3)


@pytest.mark.parametrize(
    "centre, optimum",
    [
        (np.array([0.7, 0.5, -0.2]), np.array([0.6, 0.4, 0.0])),  # on an edge (a face)
        (np.array([1.5, -0.2, -0.3]), np.array([1.0, 0.0, 0.0])),  # at a vertex
    ],
    ids=["face", "vertex"],
)
def test_minimize_target_mean_finds_optimum_on_face_or_vertex(centre, optimum):
    s = _quadratic_surrogate(centre)
    rng = np.random.default_rng(1)
    anchors = sample_simplex(rng, 5, SPEC)
    w, mean, std = minimize_target_mean(s, SPEC, rng, anchors, n_candidates=512)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    assert np.abs(w - optimum).sum() < 0.06, w
    assert np.all(w[optimum == 0] < 0.02), w  # the zero weights are (near) exactly zero
    assert mean == pytest.approx(np.sum((optimum - centre) ** 2), abs=0.02)
    assert np.isfinite(std) and std >= 0


@pytest.mark.parametrize("method", ["info-per-cost", "ei-per-cost"])
def test_taken_mixture_and_scale_is_never_proposed_again(correlated, method):
    """A (mixture, scale) that a concurrent run holds is excluded, whatever its score."""
    s, incumbents = correlated
    acq = Acquisition(s, [CHEAP, FULL], incumbents, method=method)
    first = optimize_acquisition(acq, SPEC, np.random.default_rng(0), n_candidates=256)
    taken = [(first.weights, first.fidelity.scale)]
    again = optimize_acquisition(acq, SPEC, np.random.default_rng(0), n_candidates=256, taken=taken)
    same_point = np.allclose(again.weights, first.weights, atol=1e-7)
    assert not (same_point and again.fidelity.scale == first.fidelity.scale)
    assert np.isfinite(again.score)


def test_flat_dirichlet_is_numpys_draw_to_the_bit():
    """The fast draw must leave the sampler's random stream exactly as numpy's dirichlet did."""
    from optuna_adso.simplex import flat_dirichlet

    for seed in range(50):
        for size in range(1, 12):
            ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
            assert np.array_equal(flat_dirichlet(ours, size), numpys.dirichlet(np.ones(size)))
            assert ours.random() == numpys.random()


def test_sample_simplex_draws_what_the_per_row_dirichlet_did():
    """Face rows were built as ``row = zeros; row[active] = rng.dirichlet(ones)``; same draws."""
    from optuna_adso.simplex import fix_rounding, normalize_rows

    def reference(rng, n, spec, face_fraction):
        k, lower, upper = spec.k, np.array(spec.lower), np.array(spec.upper)
        w = rng.dirichlet(np.ones(k), size=n)
        for i in range(int(round(face_fraction * n))):
            size = int(rng.integers(1, k))
            active = rng.choice(k, size=size, replace=False)
            row = np.zeros(k)
            row[active] = rng.dirichlet(np.ones(size))
            w[i] = row
        return fix_rounding(normalize_rows(w), lower, upper)

    for k in (2, 5, 11):
        spec = make_mixture_spec("m", [f"d{i}" for i in range(k)])
        for seed in range(5):
            ours, ref = np.random.default_rng(seed), np.random.default_rng(seed)
            assert np.array_equal(sample_simplex(ours, 300, spec, 0.35), reference(ref, 300, spec, 0.35))
            assert ours.random() == ref.random()


@pytest.fixture(scope="module")
def noisy_incumbent():
    """Noisy runs at the target: the incumbent mixture run 10 times, 8 other mixtures once."""
    rng = np.random.default_rng(3)
    best = np.array([0.7, 0.1, 0.2])
    others = sample_simplex(rng, 8, SPEC, face_fraction=0.0)
    w = np.vstack([np.repeat(best[None], 10, axis=0), others])
    y = target_effect(w) + 0.3 * rng.normal(size=len(w))
    with single_threaded():
        s = MultiFidelitySurrogate("mixture").fit(np.column_stack([w, np.zeros((len(w), 2))]), y, n_weights=3)
    return s, best, others


def test_goal_value_discounts_ei_by_what_a_noisy_run_would_still_teach(noisy_incumbent):
    """Augmented EI: EI times Var / (Var + noise).  At a mixture run ten times the posterior
    variance is small beside the noise, so one more run there is worth little; at an unexplored
    one the factor is near 1."""
    s, best, _ = noisy_incumbent
    acq = Acquisition(s, [FULL], best[None])
    far = np.array([[0.05, 0.9, 0.05]])
    for w in (best[None], far):
        ei, _, var = acq.target_ei(w)
        np.testing.assert_allclose(acq.goal_value(w), ei * var / (var + s.noise_variance))
    factor = lambda w: acq.goal_value(w)[0] / acq.target_ei(w)[0][0]  # noqa: E731
    assert factor(best[None]) < 0.25
    assert factor(far) > 0.5


class _TwoBasins:
    """A stand-in posterior with two basins: A, the incumbent, run so often that its variance is
    tiny beside the noise, and B, a little worse by the mean but barely explored."""

    A = np.array([0.7, 0.2, 0.1])
    B = np.array([0.1, 0.2, 0.7])
    noise_variance = 0.04

    def mixture_prior_std(self) -> float:
        return 1.0

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(x)[:, :3]
        near_a = np.exp(-((w - self.A) ** 2).sum(axis=1) / 0.02)
        near_b = np.exp(-((w - self.B) ** 2).sum(axis=1) / 0.02)
        mean = -1.0 * near_a - 0.7 * near_b
        var = 0.05 - 0.049 * near_a
        return mean, var

    def predict_pairs(self, xa: np.ndarray, xb: np.ndarray):
        mean_a, var_a = self.predict(xa)
        mean_b, var_b = self.predict(xb)
        return mean_a, mean_b, var_a, var_b, np.sqrt(var_a * var_b)


def test_the_mixture_is_chosen_by_what_a_run_would_teach_not_by_ei_alone():
    """Plain EI prefers another run at the incumbent A (its mean is best and noise keeps some
    variance there); augmented EI prefers basin B, where a run still teaches something."""
    acq = Acquisition(_TwoBasins(), [FULL], _TwoBasins.A[None])
    both = np.vstack([_TwoBasins.A, _TwoBasins.B])
    ei = acq.target_ei(both)[0]
    assert ei[0] > ei[1]  # EI alone would crawl at A
    p = optimize_acquisition(acq, SPEC, np.random.default_rng(0), n_candidates=512)
    assert np.abs(p.weights - _TwoBasins.B).max() < 0.1
