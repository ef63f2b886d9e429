"""The import issue's benchmark problems: pools of buildable mixtures, and warm starts from an
imported swarm of small runs."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from benchmarks.problems import Problem, synthetic_world, with_pool
from benchmarks.runner import MIX, SCALE, POOL_BASELINES, run_study
from benchmarks.warmstart import import_swarm, swarm_mixtures, swarm_rows


@pytest.fixture(scope="module")
def world() -> Problem:
    return synthetic_world(seed=0, k=3, n_scales=3)


@pytest.fixture(scope="module")
def pooled(world: Problem) -> Problem:
    return with_pool(world, 16, seed=1)


def test_a_pool_holds_uniform_and_its_best_member_has_regret_zero(world: Problem, pooled: Problem) -> None:
    pool = pooled.pool
    assert pool.shape == (16, 3) and np.allclose(pool.sum(axis=1), 1.0) and (pool >= 0).all()
    assert np.allclose(pool[0], 1 / 3)
    regrets = pooled.regret(pool)
    assert regrets.min() == pytest.approx(0.0, abs=1e-12) and regrets[0] == pytest.approx(1.0)
    # the pool's best is no better than the simplex's optimum
    assert pooled.optimum_value >= world.optimum_value - 1e-12
    assert np.array_equal(with_pool(world, 16, seed=1).pool, pool)  # seeded
    assert not np.array_equal(with_pool(world, 16, seed=2).pool, pool)
    with pytest.raises(ValueError, match="at least 2"):
        with_pool(world, 1)


@pytest.mark.parametrize("method", ["gp-pool", "random-floats", "tpe-dirichlet", "adso"])
def test_every_method_on_a_pool_problem_runs_pool_members_only(pooled: Problem, method: str) -> None:
    storage = optuna.storages.InMemoryStorage()
    trace = run_study(pooled, method, seed=0, budget=3.0 if method == "adso" else 4.0, storage=storage)
    study = optuna.load_study(study_name=storage.get_all_studies()[0].study_name, storage=storage)
    for t in study.trials:
        w = np.array([t.user_attrs[MIX][d] for d in pooled.domains])
        assert np.abs(pooled.pool - w).max(axis=1).min() < 1e-9, f"trial {t.number} ran {w}, not a pool member"
    final = np.array([trace.final_mixture[d] for d in pooled.domains])
    assert np.abs(pooled.pool - final).max(axis=1).min() < 1e-9


def test_pool_baselines_refuse_a_problem_without_a_pool(world: Problem) -> None:
    for method in POOL_BASELINES.values():
        with pytest.raises(ValueError, match="pool problems only"):
            run_study(world, method, seed=0, budget=1.0)


def test_a_swarm_is_seeded_full_runs_at_the_smallest_scale(world: Problem) -> None:
    w = swarm_mixtures(world.k, 8, seed=0)
    assert w.shape == (8, 3) and np.allclose(w.sum(axis=1), 1.0)
    assert np.array_equal(w, swarm_mixtures(world.k, 8, seed=0))
    rows = swarm_rows(world, seed=0, n=8)
    assert len(rows) == 8 * len(world.report_steps)
    assert {r[SCALE] for r in rows} == {min(world.scales)}
    assert [r["step"] for r in rows if r["run"] == "swarm-0"] == world.report_steps


def test_an_imported_swarm_is_data_to_the_study_but_not_charged_to_its_budget(world: Problem) -> None:
    storage = optuna.storages.InMemoryStorage()
    trace = run_study(world, "adso-warm256", seed=0, budget=2.0, storage=storage)
    study = optuna.load_study(study_name=storage.get_all_studies()[0].study_name, storage=storage)
    imported = [t for t in study.trials if t.user_attrs.get("adso:imported")]
    assert len(imported) == 256
    new = len(study.trials) - 256
    assert trace.n_trials == new >= 1
    assert trace.flops[-1] == pytest.approx(2.0, abs=1.0)  # the budget counts the new runs only
    # importing the same swarm again adds nothing
    assert import_swarm(study, world, seed=0) == 0
