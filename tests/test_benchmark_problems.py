"""Benchmark problems (paper simulator, synthetic worlds) and the study runner."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.problems import (
    PAPER_CAPS_M,
    PAPER_DOMAINS,
    PAPER_OBJECTIVES,
    minimize_on_simplex,
    paper_data_available,
    paper_data_dir,
    paper_simulator,
    project_to_simplex,
    synthetic_world,
)
from benchmarks.runner import Trace, flops_to_reach, noise, run_study
from benchmarks.suite import (
    HEADLINE_PROBLEMS,
    PAPER_ALL,
    PAPER_CAPPED,
    PAPER_PROBLEMS,
    PROBLEMS,
    SYNTH_FAMILY,
    SYNTH_HEADLINE,
    SYNTH_WORLDS,
    SYNTHETIC_PROBLEMS,
    make_problem,
)
from optuna_adso.simulated import SMALL_SCALE_KINDS, SimulatedWorld

needs_paper = pytest.mark.skipif(
    not paper_data_available(),
    reason=(
        f"paper simulator files (mlp.npz, flops.csv) not found in {paper_data_dir()}; set "
        "$ADSO_PAPER_SIMULATOR to the folder holding them"
    ),
)
OBJECTIVES = ["stackexchange", "mean_ce", "hellaswag"]


def _random_mixtures(k: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


# --- paper simulator ----------------------------------------------------------------------------


def _hand_forward(raw: list[float]) -> list[float]:
    """The MLP written out neuron by neuron from the npz, independent of PaperMLP."""
    z = np.load(paper_data_dir() / "mlp.npz", allow_pickle=False)
    x = [(r - m) / s for r, m, s in zip(raw, z["X_mean"].tolist(), z["X_std"].tolist())]
    x = [xi for xi, keep in zip(x, z["feature_mask"].tolist()) if keep]
    for layer in range(4):
        W, b = z[f"W{layer}"].tolist(), z[f"b{layer}"].tolist()
        x = [sum(wij * xj for wij, xj in zip(row, x)) + bi for row, bi in zip(W, b)]
        if layer < 3:
            x = [max(0.0, v) for v in x]
    return [v * s + m for v, s, m in zip(x, z["y_std"].tolist(), z["y_mean"].tolist())]


@needs_paper
def test_paper_mlp_matches_hand_forward_and_is_plausible() -> None:
    w = [0.2] * 5
    out = _hand_forward(w + [1000.0, 1234.0, 7.0, 19_500.0])  # d_model, n_heads: any value
    se, mean_ce, hs = (paper_simulator(o) for o in OBJECTIVES)
    assert se.loss(w, 1e9, 19_500) == pytest.approx(out[4], rel=1e-10)
    assert mean_ce.loss(w, 1e9, 19_500) == pytest.approx(np.mean(out[1:8]), rel=1e-10)
    assert hs.loss(w, 1e9, 19_500) == pytest.approx(out[8], rel=1e-10)
    assert 1.0 < mean_ce.uniform_value < 5.0
    assert 0.3 < se.uniform_value < 5.0
    assert 0.0 < hs.uniform_value < 1.0
    assert hs.maximize and not se.maximize and not mean_ce.maximize
    # vectorized == one at a time
    W = _random_mixtures(5, 7)
    np.testing.assert_allclose(se.loss(W, 150e6, 5000), [se.loss(x, 150e6, 5000) for x in W])


@needs_paper
def test_paper_problem_shape_and_cost() -> None:
    p = paper_simulator()
    assert p.domains == PAPER_DOMAINS
    assert p.scales == [20e6, 60e6, 150e6, 300e6, 500e6, 700e6, 1e9]
    assert p.report_steps[0] == 500 and p.report_steps[-1] == 19_500 == p.target_step
    assert len(p.report_steps) == 39 and p.target_scale == 1e9 and p.noise_std == 0.0
    assert p.target_cost == p.cost(1e9, 19_500) > 0
    assert p.cost(1e9, 19_500) / p.cost(20e6, 19_500) == pytest.approx(77, rel=0.01)
    assert p.cost(1e9, 19_500) / p.cost(700e6, 19_500) == pytest.approx(3.35, rel=0.01)
    assert p.cost(300e6, 9_750) == pytest.approx(p.cost(300e6, 19_500) / 2, rel=1e-3)
    assert p.cost(300e6, 0) == 0.0
    costs = [p.cost(s, 10_000) for s in p.scales]
    assert costs == sorted(costs)


@needs_paper
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_paper_optimum_and_regret(objective: str) -> None:
    p = paper_simulator(objective)
    w = p.optimum_weights
    assert w.shape == (5,) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert p.regret(w) == pytest.approx(0.0, abs=1e-9)
    assert p.regret(np.full(5, 0.2)) == pytest.approx(1.0)
    assert p.regret(dict(zip(p.domains, w))) == pytest.approx(0.0, abs=1e-9)
    values = p.value_at_target(_random_mixtures(5, 10_000, seed=1))
    if p.maximize:
        assert p.optimum_value >= values.max() and p.optimum_value > p.uniform_value
    else:
        assert p.optimum_value <= values.min() and p.optimum_value < p.uniform_value
    assert np.all(p.regret(_random_mixtures(5, 1000, seed=2)) >= 0)


def test_paper_missing_files_error_says_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="namkoong-lab/data-recipes"):
        paper_simulator("stackexchange", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown objective"):
        paper_simulator("nope", data_dir=str(tmp_path))


# --- the optimum search ---------------------------------------------------------------------


def test_simplex_projection() -> None:
    v = np.random.default_rng(0).normal(size=(50, 6))
    w = project_to_simplex(v)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    x = _random_mixtures(6, 5)
    np.testing.assert_allclose(project_to_simplex(x), x, atol=1e-12)


def test_minimize_on_simplex_finds_face_and_interior_optima() -> None:
    target = np.array([0.0, 0.6, 0.4, 0.0, 0.0])  # on a face
    w, v = minimize_on_simplex(lambda x: ((x - target) ** 2).sum(axis=1), 5, n_interior=5000, n_faces_total=5000)
    np.testing.assert_allclose(w, target, atol=1e-4)
    lin = np.array([0.3, -0.2, 0.5, 0.1])  # linear: a vertex
    w, v = minimize_on_simplex(lambda x: x @ lin, 4, n_interior=2000, n_faces_total=2000)
    np.testing.assert_allclose(w, [0, 1, 0, 0], atol=1e-9)


# --- synthetic worlds -------------------------------------------------------------------------


def test_synthetic_world_is_seeded_and_deterministic() -> None:
    a, b, c = synthetic_world(3), synthetic_world(3), synthetic_world(4)
    assert a.domains == b.domains and a.scales == b.scales and a.target_scale == b.target_scale
    W = _random_mixtures(a.k, 50)
    for scale, step in [(a.scales[0], 500), (a.target_scale, a.target_step)]:
        np.testing.assert_array_equal(a.loss(W, scale, step), b.loss(W, scale, step))
    Wc = _random_mixtures(c.k, 50)
    assert not np.allclose(
        c.loss(Wc, c.target_scale, c.target_step),
        synthetic_world(3, k=c.k).loss(Wc, c.target_scale, c.target_step),
    )
    for seed in range(12):
        p = synthetic_world(seed)
        assert 4 <= p.k <= 8 and 4 <= len(p.scales) <= 6
        assert p.target_scale >= max(p.scales) and p.report_steps[-1] == p.target_step
        assert p.scales == sorted(p.scales) and p.noise_std == 0.01 and not p.maximize
    assert synthetic_world(0, k=3, n_scales=2).k == 3
    assert len(synthetic_world(0, k=3, n_scales=2).scales) == 2


@pytest.mark.parametrize("misleading", [False, True])
def test_synthetic_loss_never_rises_with_scale(misleading: bool) -> None:
    scales = np.geomspace(1e6, 1e11, 30)
    for seed in range(6):
        p = synthetic_world(seed, misleading=misleading)
        W = np.concatenate([_random_mixtures(p.k, 200, seed), np.eye(p.k)])
        for step in [1, 500, 3000, p.target_step, 3 * p.target_step]:
            L = np.stack([p.loss(W, s, step) for s in scales])  # (scales, mixtures)
            assert np.all(np.isfinite(L))
            assert np.all(np.diff(L, axis=0) <= 1e-12)
        # and more steps never hurt either
        L = np.stack([p.loss(W, p.target_scale, t) for t in p.report_steps])
        assert np.all(np.diff(L, axis=0) <= 1e-12)


def test_synthetic_optimum_regret_and_moving_optimum() -> None:
    moved = []
    for seed in range(3):
        p = synthetic_world(seed)
        assert p.regret(p.optimum_weights) == pytest.approx(0.0, abs=1e-9)
        assert p.regret(np.full(p.k, 1.0 / p.k)) == pytest.approx(1.0)
        assert 0.03 < p.uniform_value - p.optimum_value < 0.3
        values = p.value_at_target(_random_mixtures(p.k, 10_000, seed=5))
        assert p.optimum_value <= values.min()
        small = p.scales[0]
        w_small, _ = minimize_on_simplex(
            lambda x: p.loss_fn(x, small, p.target_step), p.k, n_interior=5000, n_faces_total=5000
        )
        moved.append(p.regret(w_small))
    assert max(moved) > 0.05  # the smallest scale's optimum is not the target's


def test_misleading_world_ranks_small_scales_against_the_target() -> None:
    from scipy.stats import spearmanr

    for seed in range(3):
        p = synthetic_world(seed, misleading=True)
        W = _random_mixtures(p.k, 500, seed)
        at_target = p.value_at_target(W)
        rho = spearmanr(p.loss(W, p.scales[0], p.target_step), at_target)[0]
        assert rho < -0.5
        assert p.regret(p.optimum_weights) == pytest.approx(0.0, abs=1e-9)


def test_synthetic_cost_is_six_n_d() -> None:
    p = synthetic_world(1)
    assert p.cost(1e8, 1000) == pytest.approx(6 * 1e8 * 256 * 1024 * 1000)
    assert p.target_cost == p.cost(p.target_scale, p.target_step)


# --- runner ------------------------------------------------------------------------------------


def test_noise_depends_only_on_seed_trial_and_step() -> None:
    assert noise(1, 2, 500, 0.01) == noise(1, 2, 500, 0.01)
    assert noise(1, 2, 500, 0.01) != noise(1, 2, 1000, 0.01)
    assert noise(1, 2, 500, 0.01) != noise(2, 2, 500, 0.01)
    assert noise(1, 2, 500, 0.0) == 0.0


def test_flops_to_reach() -> None:
    t = Trace("m", "p", 0, 5.0, flops=np.array([1.0, 2.0, 3.0]), regret=np.array([0.5, 0.04, 0.009]))
    assert flops_to_reach(t, 0.05) == 2.0
    assert flops_to_reach(t, 0.01) == 3.0
    assert math.isinf(flops_to_reach(t, 0.001))
    assert Trace.from_dict(t.to_dict()).to_dict() == t.to_dict()


def _check_trace(trace: Trace, budget: float) -> None:
    assert trace.n_trials == len(trace.regret) >= 1
    assert np.all(np.diff(trace.flops) > 0)
    assert trace.flops[-1] >= budget * (1 - 1e-9)
    assert trace.flops[-2] < budget if trace.n_trials > 1 else True  # stops once spent
    assert np.all(np.isfinite(trace.regret))


def test_run_study_random_on_synthetic() -> None:
    p = synthetic_world(2)
    trace = run_study(p, "random", seed=0, budget=3)
    _check_trace(trace, 3)
    assert trace.n_trials == 3 and set(trace.trial_state) == {"COMPLETE"}
    again = run_study(p, "random", seed=0, budget=3)
    np.testing.assert_array_equal(trace.regret, again.regret)
    assert np.all(np.diff(trace.regret) <= 0)  # best-so-far recommendation at one fidelity


def test_run_study_hyperband_pays_for_pruned_steps_only() -> None:
    p = synthetic_world(2)
    trace = run_study(p, "tpe-hyperband", seed=0, budget=4)
    _check_trace(trace, 4)
    pruned = [i for i, s in enumerate(trace.trial_state) if s == "PRUNED"]
    assert pruned, "Hyperband should prune some of the first trials"
    paid = np.diff(np.concatenate([[0.0], trace.flops]))
    for i in pruned:
        assert trace.trial_steps[i] < p.target_step
        assert paid[i] == pytest.approx(trace.trial_steps[i] / p.target_step)


@needs_paper
def test_run_study_random_on_paper() -> None:
    trace = run_study(paper_simulator(), "random", seed=0, budget=3)
    _check_trace(trace, 3)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], trace.flops])), 1.0)


def test_run_study_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        run_study(synthetic_world(0), "nope", seed=0)


# --- more and harder problems: every paper objective, capped runs, the synthetic family ------------

ACCURACIES = {"hellaswag", "piqa", "arc_easy"}


@needs_paper
def test_every_paper_objective_builds_and_accuracies_are_maximized() -> None:
    assert len(PAPER_OBJECTIVES) == 12  # the 11 outputs and the mean domain CE
    assert sorted({i for cols, _ in PAPER_OBJECTIVES.values() for i in cols}) == list(range(11))
    assert PAPER_ALL == tuple(f"paper-{o}" for o in PAPER_OBJECTIVES)
    w = [0.1, 0.3, 0.2, 0.15, 0.25]
    out = _hand_forward(w + [300.0, 1.0, 1.0, 4000.0])
    for objective, (cols, maximize) in PAPER_OBJECTIVES.items():
        p = make_problem(f"paper-{objective}")
        assert p.name == f"paper-{objective}" and p.maximize == maximize == (objective in ACCURACIES)
        assert p.scales[-1] == p.target_scale == p.top_scale == 1e9 and p.budget_unit == p.target_cost
        assert p.loss(w, 300e6, 4000) == pytest.approx(np.mean([out[i] for i in cols]), rel=1e-10)
        assert (0.0 < p.uniform_value < 1.0) if maximize else (0.3 < p.uniform_value < 10.0)
    assert PAPER_OBJECTIVES["stackexchange"] == ((4,), False)
    assert PAPER_OBJECTIVES["mean_ce"] == ((1, 2, 3, 4, 5, 6, 7), False)
    assert PAPER_OBJECTIVES["hellaswag"] == ((8,), True)


@needs_paper
def test_capped_paper_variants_run_below_the_target() -> None:
    assert len(PAPER_CAPPED) == 6 and set(PAPER_CAPPED) <= set(PAPER_PROBLEMS) <= set(PROBLEMS)
    for name in PAPER_CAPPED:
        objective, cap_text = name.removeprefix("paper-").rsplit("-cap", 1)
        cap = float(cap_text.removesuffix("m")) * 1e6
        assert cap in [c * 1e6 for c in PAPER_CAPS_M]
        p, full = make_problem(name), paper_simulator(objective)
        assert p.name == name and p.maximize == full.maximize
        assert max(p.scales) == cap and p.scales == [s for s in full.scales if s <= cap]
        assert p.target_scale == 1e9 and p.target_step == 19_500 and not p.target_runnable
        assert p.top_scale == cap and p.budget_unit == p.cost(cap, 19_500) < p.target_cost
        assert p.cache_key == full.cache_key  # same target, same optimum
        W = _random_mixtures(5, 20)
        np.testing.assert_array_equal(p.value_at_target(W), full.value_at_target(W))
        assert "capped" in p.description
    with pytest.raises(ValueError, match="below the smallest"):
        paper_simulator("stackexchange", max_scale=10e6)


def test_problem_registries() -> None:
    assert len(set(PROBLEMS)) == len(PROBLEMS)
    for group in (PAPER_ALL, PAPER_CAPPED, tuple(SYNTHETIC_PROBLEMS), SYNTH_FAMILY, HEADLINE_PROBLEMS):
        assert set(group) <= set(PROBLEMS)
    assert HEADLINE_PROBLEMS == (
        "paper-stackexchange", "paper-mean_ce", "paper-hellaswag",
        "paper-stackexchange-cap500m", "paper-mean_ce-cap300m",
    ) + SYNTH_HEADLINE
    with pytest.raises(ValueError, match="unknown problem"):
        make_problem("synth-99")


def _family_world(name: str) -> SimulatedWorld:
    kw = SYNTH_WORLDS[name]
    return SimulatedWorld(kw["seed"], k=kw["k"], n_scales=kw["n_scales"], small_scales=kw["small_scales"],
                          target_factor=kw["target_factor"])


def test_synthetic_family_spans_the_settings() -> None:
    assert len(SYNTH_FAMILY) >= 20 and SYNTH_FAMILY == tuple(SYNTH_WORLDS)
    settings = list(SYNTH_WORLDS.values())
    ks = [s["k"] for s in settings]
    assert min(ks) == 4 and max(ks) == 12 and len(set(ks)) >= 6
    assert {s["small_scales"] for s in settings} == set(SMALL_SCALE_KINDS)
    noise = [s["noise"] for s in settings]
    assert 0.0 in noise and max(noise) <= 0.2 and sum(n > 0 for n in noise) >= len(noise) // 2
    factors = [s["target_factor"] for s in settings]
    assert 1.0 in factors and all(f == 1.0 or 2.0 <= f <= 8.0 for f in factors) and max(factors) > 1.0
    for kind in SMALL_SCALE_KINDS:  # every kind with a runnable and a beyond target, noisy and not
        mine = [s for s in settings if s["small_scales"] == kind]
        assert {s["target_factor"] > 1 for s in mine} == {True, False}
        assert {s["noise"] > 0 for s in mine} == {True, False}
    head = [SYNTH_WORLDS[n] for n in SYNTH_HEADLINE]
    assert len(head) == 5 and {s["small_scales"] for s in head} == set(SMALL_SCALE_KINDS)
    assert any(s["target_factor"] > 1 for s in head) and all(s["noise"] > 0 for s in head)
    # the worlds are what their settings say, and never get worse with scale or steps
    for name in SYNTH_FAMILY:
        kw, world = SYNTH_WORLDS[name], _family_world(name)
        assert world.k == kw["k"] and len(world.scales) == kw["n_scales"] and world.small_scales == kw["small_scales"]
        ratio = world.target_scale / world.scales[-1]
        assert ratio == 1.0 if kw["target_factor"] == 1.0 else ratio == pytest.approx(kw["target_factor"], rel=0.01)
        W = np.concatenate([_random_mixtures(world.k, 60), np.eye(world.k)])
        scales = np.geomspace(world.scales[0] / 3, world.target_scale * 3, 12)
        for step in (world.report_steps[0], world.target_step):
            L = np.stack([world.loss(W, s, step) for s in scales])
            assert np.all(np.isfinite(L)) and np.all(np.diff(L, axis=0) <= 1e-12)
        L = np.stack([world.loss(W, world.target_scale, t) for t in world.report_steps[::4]])
        assert np.all(np.diff(L, axis=0) <= 1e-12)


def test_small_scale_kinds_rank_mixtures_as_named() -> None:
    from scipy.stats import spearmanr

    seen = set()
    for name in SYNTH_FAMILY:
        world = _family_world(name)
        W = _random_mixtures(world.k, 300, seed=11)
        at_target = world.loss(W, world.target_scale, world.target_step)
        rho = spearmanr(world.loss(W, world.scales[0], world.target_step), at_target)[0]
        kind = world.small_scales
        seen.add(kind)
        if kind == "uninformative":
            assert abs(rho) < 0.3, (name, rho)
            # the term vanishes at the target: there the world is the honest one
            honest = SimulatedWorld(world.seed, k=world.k, n_scales=world.n_scales,
                                    target_factor=SYNTH_WORLDS[name]["target_factor"])
            np.testing.assert_array_equal(at_target, honest.loss(W, world.target_scale, world.target_step))
        elif kind == "misleading":
            assert rho < -0.5, (name, rho)
        else:
            assert rho > 0.3, (name, rho)
    assert seen == set(SMALL_SCALE_KINDS)
    for seed, k in [(5, 4), (6, 9), (7, 12)]:  # and outside the family
        world = SimulatedWorld(seed, k=k, small_scales="uninformative")
        W = _random_mixtures(k, 300, seed=seed)
        at_target = world.loss(W, world.target_scale, world.target_step)
        assert abs(spearmanr(world.loss(W, world.scales[0], 5000), at_target)[0]) < 0.3
    one_scale = SimulatedWorld(0, n_scales=1, target_factor=1.0, small_scales="uninformative")
    assert one_scale._decoy is None  # no scale below the target: nothing to be uninformative about


def test_family_noise_is_split_between_runs_and_reports() -> None:
    for name in ("synth-05", "synth-07", "synth-20"):
        kw, p = SYNTH_WORLDS[name], make_problem(name)
        gap = p.uniform_value - p.optimum_value
        total = math.hypot(p.noise_std, p.run_noise_std)
        assert p.name == name and total == pytest.approx(kw["noise"] * gap, rel=1e-9, abs=1e-15)
        if kw["noise"] > 0:
            assert p.noisy and p.run_noise_std**2 / total**2 == pytest.approx(kw["run_noise_share"])
            assert f"noise {kw['noise']:.0%} of the gap" in p.description
        else:
            assert not p.noisy and "no noise" in p.description
        assert f"{p.k} domains" in p.description and f"{kw['small_scales']} small scales" in p.description
        assert ("beyond" in p.description) == (kw["target_factor"] > 1) == (not p.target_runnable)
        assert p.top_scale == p.scales[-1] and p.budget_unit == p.cost(p.scales[-1], p.target_step)


def test_default_worlds_are_unchanged() -> None:
    w = SimulatedWorld(0)
    u = np.full(w.k, 1 / w.k)
    assert w.k == 5 and w.target_scale == 1.8e9 and w.small_scales == "informative"
    assert w.loss(u, w.scales[0], 500) == pytest.approx(9.356351953816617, rel=1e-12)
    assert w.loss(u, w.target_scale, w.target_step) == pytest.approx(3.4205358568956146, rel=1e-12)
    p = synthetic_world(1, misleading=True)
    e = np.eye(p.k)[0]
    assert p.k == 6 and p.target_scale == 7.98e9 and p.cache_key == ("synthetic", 1, 6, 6, True)
    assert p.loss(e, p.scales[0], 500) == pytest.approx(108.6145746432167, rel=1e-12)
    assert p.loss(e, p.target_scale, p.target_step) == pytest.approx(5.191338450530926, rel=1e-12)
    same = synthetic_world(1, small_scales="misleading")
    assert same.cache_key == p.cache_key and same.name == p.name
    # a new target leaves the drawn world alone
    moved = SimulatedWorld(0, target_factor=4.0)
    assert moved.target_scale == pytest.approx(4 * w.scales[-1], rel=1e-3) and moved.beyond
    np.testing.assert_array_equal(moved.E, w.E)
    np.testing.assert_array_equal(moved.T, w.T)
    assert SimulatedWorld(0, target_factor=1.0).target_scale == w.scales[-1]
    with pytest.raises(ValueError, match="small_scales"):
        SimulatedWorld(0, small_scales="nope")
    with pytest.raises(ValueError, match="contradicts"):
        SimulatedWorld(0, misleading=True, small_scales="uninformative")
    with pytest.raises(ValueError, match="target_factor"):
        SimulatedWorld(0, target_factor=0.5)


# --- per-domain losses and the worst-excess objective (issue 20) ----------------------------------


@needs_paper
def test_paper_domain_losses_are_the_seven_domain_ces_and_name_their_objective() -> None:
    from benchmarks.problems import PAPER_DOMAIN_CE, PAPER_DOMAIN_OBJECTIVES

    w = [0.1, 0.3, 0.2, 0.15, 0.25]
    out = _hand_forward(w + [300.0, 1.0, 1.0, 4000.0])
    mean = make_problem("paper-mean_ce")
    assert mean.domain_names == list(PAPER_DOMAIN_CE) and len(PAPER_DOMAIN_CE) == 7
    losses = mean.domain_losses(w, 300e6, 4000)
    np.testing.assert_allclose(losses, out[1:8], rtol=1e-10)
    assert mean.loss(w, 300e6, 4000) == pytest.approx(losses.mean(), rel=1e-12)
    W = _random_mixtures(5, 6)
    assert mean.domain_losses(W, 1e9, 19_500).shape == (6, 7)
    for name in PAPER_DOMAIN_CE:  # one domain's CE problem is that column
        p = make_problem(f"paper-{name}")
        assert p.domain_objective == f"domain:{name}"
        assert p.loss(w, 300e6, 4000) == pytest.approx(losses[PAPER_DOMAIN_CE.index(name)], rel=1e-12)
    assert mean.domain_objective == PAPER_DOMAIN_OBJECTIVES["mean_ce"] == "mean"
    assert make_problem("paper-worst_excess").domain_objective == "worst-excess"
    # accuracies and the train CE are no function of the 7 domain CEs: no per-domain objective
    assert make_problem("paper-hellaswag").domain_objective is None
    assert make_problem("paper-hellaswag").domain_names == list(PAPER_DOMAIN_CE)
    with pytest.raises(ValueError, match="no per-domain losses"):
        synthetic_world(0).domain_losses(np.full(synthetic_world(0).k, 0.1), 1e8, 100)


@needs_paper
def test_worst_excess_is_zero_at_uniform_and_negative_at_its_optimum() -> None:
    from benchmarks.suite import PAPER_EXCESS

    assert PAPER_EXCESS == ("paper-worst_excess",) and set(PAPER_EXCESS) <= set(PAPER_PROBLEMS)
    p = make_problem("paper-worst_excess")
    assert p.name == "paper-worst_excess" and not p.maximize and p.target_scale == 1e9
    uniform = np.full(5, 0.2)
    for scale, step in ((20e6, 500), (300e6, 4000), (1e9, 19_500)):
        assert p.loss(uniform, scale, step) == 0.0  # the reference at the same size and step
        W = _random_mixtures(5, 8, seed=3)
        excess = p.domain_losses(W, scale, step) - p.domain_losses(uniform, scale, step)[None]
        np.testing.assert_allclose(p.loss(W, scale, step), excess.max(axis=1), rtol=1e-12)
    assert p.uniform_value == 0.0 and p.optimum_value < 0.0
    assert p.regret(uniform) == pytest.approx(1.0) and p.regret(p.optimum_weights) == pytest.approx(0.0)
    # at the optimum every domain beats uniform by at least the optimum's margin
    excess = p.domain_losses(p.optimum_weights, 1e9, 19_500) - p.domain_losses(uniform, 1e9, 19_500)
    assert excess.max() == pytest.approx(p.optimum_value, abs=1e-12) and np.all(excess < 0)
    assert np.all(p.regret(_random_mixtures(5, 200)) > 0.0)  # nothing drawn beats the optimum
