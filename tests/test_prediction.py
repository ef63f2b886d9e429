"""adso.predict: the model's mean, uncertainty and run noise for mixtures of the user's choosing."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import DOMAINS, TARGET_SCALE, TARGET_STEP, make_objective, make_sampler, synthetic_loss

import optuna_adso as adso


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    study = optuna.create_study(sampler=make_sampler(seed=0, n_startup_trials=3, n_candidates=64))
    study.optimize(make_objective(), n_trials=10)
    return study


def test_one_prediction_per_mixture_at_the_target_by_default(study):
    mixtures = [{"web": 0.6, "code": 0.3, "books": 0.1}, {"web": 0.0, "code": 0.0, "books": 1.0}]
    preds = adso.predict(study, mixtures)
    assert len(preds) == 2
    for p, m in zip(preds, mixtures):
        assert p.mixture == m and p.fidelity == {"step": TARGET_STEP, "model_size": TARGET_SCALE}
        assert math.isfinite(p.mean) and p.std > 0 and p.noise_std >= 0
    # the model knows the target optimum region beats a vertex far from it
    assert preds[0].mean < preds[1].mean
    single = adso.predict(study, mixtures[0])
    # the same answer alone as in a batch (to rounding: a batch of one takes another BLAS path)
    assert single[0].mean == pytest.approx(preds[0].mean, rel=1e-12)
    as_array = adso.predict(study, np.array([[0.6, 0.3, 0.1]]))
    assert as_array[0].mean == pytest.approx(preds[0].mean)


def test_another_fidelity_is_asked_like_the_target_is_written(study):
    w = {"web": 0.2, "code": 0.3, "books": 0.5}
    small = adso.predict(study, w, {"model_size": 1e7, "step": 250})[0]
    assert small.fidelity == {"step": 250, "model_size": 1e7}
    truth = synthetic_loss([w[d] for d in DOMAINS], 1e7, 250)  # near observed fidelities: close
    assert abs(small.mean - truth) < 4 * small.std + 0.05
    assert adso.predict(study, w, {"step": 500})[0].fidelity == {"step": 500, "model_size": TARGET_SCALE}


@pytest.mark.parametrize(
    "mixtures, match",
    [
        ({"web": 0.5, "code": 0.5}, "missing \\['books'\\]"),
        ({"web": 0.5, "code": 0.25, "books": 0.25, "math": 0.0}, "unknown \\['math'\\]"),
        ({"web": 0.5, "code": 0.6, "books": -0.1}, ">= 0"),
        ({"web": 0.5, "code": 0.4, "books": 0.4}, "sum to 1"),
        ([], "non-empty"),
        (np.ones((1, 4)) / 4, "\\(n, 3\\)"),
        ("web", "dict"),
    ],
)
def test_a_bad_mixture_is_refused_by_what_is_wrong(study, mixtures, match):
    with pytest.raises(ValueError, match=match):
        adso.predict(study, mixtures)


def test_a_bad_fidelity_is_refused(study):
    with pytest.raises(ValueError, match="unknown parameters"):
        adso.predict(study, {"web": 0.2, "code": 0.3, "books": 0.5}, {"size": 1e8})
    with pytest.raises(ValueError, match="positive"):
        adso.predict(study, {"web": 0.2, "code": 0.3, "books": 0.5}, {"step": -1})


def test_intervals_for_the_expected_value_and_for_one_new_run():
    from optuna_adso.prediction import Prediction

    p = Prediction({"a": 1.0}, 2.0, 0.3, 0.4, {"step": 10.0})
    lo, hi = p.interval(0.9)
    assert (lo, hi) == pytest.approx((2.0 - 1.6449 * 0.3, 2.0 + 1.6449 * 0.3), abs=1e-4)
    lo_run, hi_run = p.interval(0.9, new_run=True)
    assert hi_run - lo_run == pytest.approx(2 * 1.6449 * 0.5, abs=1e-4)  # sqrt(0.3^2 + 0.4^2)
    with pytest.raises(ValueError, match="level must be in"):
        p.interval(1.5)
