"""A swarm's shape: the lengthscales its runs teach, and the prior they centre."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_adso.simplex import sample_simplex
from optuna_adso.space import make_mixture_spec
from optuna_adso.surrogate import MultiFidelitySurrogate, mixture_kernel, single_threaded, target_inputs
from optuna_adso.swarm_shape import MIN_SWARM_RUNS, shape_holds, swarm_shape

SPEC = make_mixture_spec("m", ["a", "b", "c", "d"])


def sharp_in_a(w: np.ndarray) -> np.ndarray:
    """A landscape that turns sharply with domain a's weight and hardly with the others'."""
    return 3.0 + np.sin(9.0 * w[:, 0]) + 0.05 * w[:, 1]


def _swarm(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    w = sample_simplex(np.random.default_rng(seed), n, SPEC, face_fraction=0.0)
    return w, sharp_in_a(w)


def _lengthscales(gp: MultiFidelitySurrogate) -> np.ndarray:
    return mixture_kernel(gp.model.covar_module).lengthscale.detach().numpy().ravel()


def test_a_swarm_teaches_which_domain_turns_the_loss_sharply():
    with single_threaded():
        shape = swarm_shape(*_swarm(128))
    assert shape is not None and shape.shape == (4,)
    assert shape[0] < 0.5 * shape[1:].min(), shape


def test_too_few_or_unvarying_runs_teach_no_shape():
    w, y = _swarm(MIN_SWARM_RUNS - 1)
    assert swarm_shape(w, y) is None
    w, y = _swarm(64)
    assert swarm_shape(w, np.full(len(y), 2.0)) is None
    y_nan = y.copy()
    y_nan[: 64 - MIN_SWARM_RUNS + 1] = np.nan  # the non-finite runs do not count
    assert swarm_shape(w, y_nan) is None


@pytest.mark.parametrize("kind", ["mixture", "coregionalized"])
def test_on_a_handful_of_runs_the_shape_prior_keeps_the_swarm_s_lengthscales(kind):
    """Five runs cannot say which domain matters; with the swarm's shape the GP keeps the
    swarm's lengthscales' order (a short in a, long elsewhere), and more runs of a landscape
    that disagrees move them (the prior is a prior, not a constraint)."""
    shape = np.array([0.1, 3.0, 3.0, 3.0])
    w = sample_simplex(np.random.default_rng(1), 5, SPEC, face_fraction=0.0)
    y = 3.0 + w[:, 3]
    with single_threaded():
        shaped = MultiFidelitySurrogate(kind, shape=shape).fit(target_inputs(w), y, n_weights=4)
        plain = MultiFidelitySurrogate(kind).fit(target_inputs(w), y, n_weights=4)
    ls = _lengthscales(shaped)
    assert ls[0] < 0.5 * ls[1:].min(), ls
    assert not np.allclose(_lengthscales(plain), ls, rtol=0.2)
    # a landscape that turns sharply in d, on many runs, pulls d's lengthscale far below the swarm's
    w = sample_simplex(np.random.default_rng(2), 120, SPEC, face_fraction=0.0)
    with single_threaded():
        moved = MultiFidelitySurrogate(kind, shape=shape).fit(
            target_inputs(w), 3.0 + np.sin(9.0 * w[:, 3]), n_weights=4)
    assert _lengthscales(moved)[3] < 0.5 * shape[3]


def test_a_shape_must_give_one_lengthscale_per_domain():
    w, y = _swarm(8)
    with pytest.raises(ValueError, match="one lengthscale per domain"):
        MultiFidelitySurrogate("mixture", shape=np.ones(3)).fit(target_inputs(w), y, n_weights=4)


def test_the_shape_survives_conditioning():
    w, y = _swarm(8)
    with single_threaded():
        gp = MultiFidelitySurrogate("mixture", shape=np.ones(4)).fit(target_inputs(w), y, n_weights=4)
    assert np.array_equal(gp.condition_on(target_inputs(w[:2]), y[:2]).shape, np.ones(4))


def _shape_verdict(shape: np.ndarray, n_runs: int, seed: int = 3) -> bool:
    """shape_holds on ``n_runs`` of the study's own runs of :func:`sharp_in_a`, one report each."""
    w = sample_simplex(np.random.default_rng(seed), n_runs, SPEC, face_fraction=0.0)
    y = sharp_in_a(w)
    runs = np.arange(n_runs)
    with single_threaded():
        shaped = MultiFidelitySurrogate("coregionalized", shape=shape).fit(
            target_inputs(w), y, n_weights=4, groups=runs)
        plain = MultiFidelitySurrogate("coregionalized").fit(target_inputs(w), y, n_weights=4, groups=runs)
    return shape_holds(shaped, plain, runs, y, np.arange(n_runs))


def test_a_shape_the_study_s_own_runs_contradict_is_dropped_and_a_true_one_kept():
    """The gate that keeps a swarm from misleading the early GPs: a swarm that says d turns the
    loss sharply and a does not loses to the plain GP at predicting the study's own runs of a
    landscape sharp in a, each held out; the swarm that says a is kept."""
    assert not _shape_verdict(np.array([5.0, 5.0, 5.0, 0.05]), 24)
    assert _shape_verdict(np.array([0.15, 5.0, 5.0, 5.0]), 24)


def test_too_few_own_runs_give_no_verdict_on_a_shape():
    assert _shape_verdict(np.array([5.0, 5.0, 5.0, 0.05]), 2)
