"""Candidate pools: a study that may only run (and recommend) mixtures from a finite list."""

from __future__ import annotations

import math

import optuna
import pytest
from conftest import DOMAINS, SCALES, make_sampler, synthetic_loss

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.space import mixture_specs_from_attrs

POOL = [
    {"web": 0.6, "code": 0.3, "books": 0.1},
    {"web": 0.2, "code": 0.2, "books": 0.6},
    {"web": 1 / 3, "code": 1 / 3, "books": 1 / 3},
    {"web": 0.5, "code": 0.0, "books": 0.5},
    {"web": 0.1, "code": 0.8, "books": 0.1},
    {"web": 0.7, "code": 0.1, "books": 0.2},
]


def pool_objective(trial: optuna.Trial) -> float:
    mixture = adso.suggest_mixture(trial, "mix", list(DOMAINS), candidates=POOL)
    size = adso.suggest_scale(trial, "model_size", list(SCALES))
    value = math.nan
    for step in (250, 1000):
        value = synthetic_loss([mixture[d] for d in DOMAINS], size, step)
        trial.report(value, step)
    return value


def as_tuple(mixture: dict[str, float]) -> tuple[float, ...]:
    return tuple(mixture[d] for d in DOMAINS)


POOL_TUPLES = {as_tuple(c) for c in POOL}


def test_adso_proposes_and_recommends_only_pool_members() -> None:
    study = optuna.create_study(sampler=make_sampler(seed=3, n_candidates=64))
    study.optimize(pool_objective, n_trials=10)
    ran = [as_tuple(t.user_attrs["mix"]) for t in study.trials]
    assert set(ran) <= POOL_TUPLES  # exactly the declared weights, not a neighbour
    assert len(set(ran)) >= 4  # it did explore the pool
    for t in study.trials:  # the parameters the sampler wrote are pool members too
        w = [t.params[f"mix/{d}"] for d in DOMAINS]
        assert min(max(abs(a - b) for a, b in zip(w, c)) for c in POOL_TUPLES) < 1e-9
    rec = adso.recommend(study)
    assert as_tuple(rec.mixture) in POOL_TUPLES
    assert math.isfinite(rec.mean)


def test_an_exhausted_pool_says_so() -> None:
    """Two members at one scale: the third model-based trial has nothing new left to run."""

    def objective(trial: optuna.Trial) -> float:
        mixture = adso.suggest_mixture(trial, "mix", list(DOMAINS), candidates=POOL[:2])
        value = synthetic_loss([mixture[d] for d in DOMAINS], 1e9, 1000)
        trial.report(value, 1000)
        return value

    sampler = adso.ADSOSampler(target={"step": 1000}, seed=0, n_startup_trials=1, n_candidates=32)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=2)
    with pytest.warns(UserWarning, match="the pool is exhausted"):
        study.optimize(objective, n_trials=1)


def test_the_pool_is_declared_in_storage() -> None:
    study = optuna.create_study(sampler=make_sampler())
    study.optimize(pool_objective, n_trials=1)
    (spec,) = mixture_specs_from_attrs(records.study_attrs(study))
    assert len(spec.candidates) == len(POOL)
    assert spec.candidates[0] == pytest.approx(as_tuple(POOL[0]))


def test_other_samplers_pick_a_pool_index() -> None:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(pool_objective, n_trials=6)
    for t in study.trials:
        assert t.params["mix/pool_index"] in range(len(POOL))
        assert as_tuple(t.user_attrs["mix"]) == as_tuple(POOL[t.params["mix/pool_index"]])


def test_an_enqueued_mixture_outside_the_pool_is_refused() -> None:
    study = optuna.create_study(sampler=make_sampler())
    study.enqueue_trial({"mix/web": 0.9, "mix/code": 0.05, "mix/books": 0.05, "model_size": 1e7})
    study.optimize(pool_objective, n_trials=1, catch=(ValueError,))
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


@pytest.mark.parametrize(
    "candidates, match",
    [
        ([{"web": 0.5, "code": 0.5, "books": 0.0}, {"web": 0.5, "code": 0.4}], r"candidates\[1\].*missing \['books'\]"),
        ([{"web": 0.5, "code": 0.5, "books": 0.0, "math": 0.0}], r"candidates\[0\].*unknown \['math'\]"),
        ([[0.5, 0.5, 0.0], [0.6, 0.6, 0.0]], r"candidates\[1\]: weights sum to 1\.2"),
        ([[0.5, 0.5, 0.0], [1.2, -0.2, 0.0]], r"candidates\[1\]: the weight of 'code' must be a finite number >= 0"),
        ([[0.5, 0.5, 0.0], [0.5, 0.5]], r"candidates\[1\] must be a dict domain -> weight or a list of 3"),
        ([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], r"candidates\[1\] repeats candidates\[0\]"),
        ([], "non-empty list"),
    ],
)
def test_bad_candidates_are_named(candidates, match) -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=match):
        adso.suggest_mixture(trial, "mix", list(DOMAINS), candidates=candidates)


def test_a_candidate_outside_the_bounds_is_named() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=r"candidates\[0\]: the weight of 'web' is 0\.6, outside its bounds \[0, 0\.5\]"):
        adso.suggest_mixture(trial, "mix", list(DOMAINS), candidates=POOL, max_weight={"web": 0.5})
