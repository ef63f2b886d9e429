"""Benchmark: the predicted trade-off between mean CE and HellaSwag at the target (1B).

One ADSO study per seed optimizes the mean of the paper simulator's 7 domain CEs, its runs
reporting every CE and the HellaSwag error (1 - accuracy) as per-domain values;
``adso.pareto_front`` then predicts the mean-CE / HellaSwag front at 1B from those runs.  Against
it: Optuna's GPSampler in multi-objective mode, running full 1B runs of the two objectives,
with the same FLOPs.  Each method's front is scored by the true values (the simulator at 1B) of
the mixtures it names, as the hypervolume dominated relative to uniform's values, and compared with
the true front's (dense sampling of the simplex).

    python -m benchmarks.tradeoff --seeds 5 --budget 30 --out docs/benchmarks-tradeoff.md
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import optuna

import optuna_adso as adso
from benchmarks.problems import PAPER_DOMAINS, PAPER_SIZES_M, PAPER_TARGET_STEP, _load_paper_files, paper_data_dir
from optuna_adso.pareto import non_dominated
from optuna_adso.recommendation import flops_spent

CE_NAMES = ["commoncrawl", "c4", "wikipedia", "stackexchange", "github", "arxiv", "book"]
HELLASWAG = "hellaswag_error"
SCALE = "model_size"
REPORT_STEPS = list(range(500, PAPER_TARGET_STEP + 1, 500))


class Simulator:
    """The paper's MLP as the two objectives (mean CE, HellaSwag error) and their per-domain parts."""

    def __init__(self, data_dir: str | None = None) -> None:
        self.mlp, self.flops = _load_paper_files(paper_data_dir(data_dir).resolve())

    def outputs(self, w: np.ndarray, scale: float, step: float) -> np.ndarray:
        """(n, 8): the 7 domain CEs and the HellaSwag error."""
        y = self.mlp(np.atleast_2d(w), scale / 1e6, step)
        return np.column_stack([y[:, 1:8], 1.0 - y[:, 8]])

    def objectives(self, w: np.ndarray) -> np.ndarray:
        """(n, 2) at the target: mean CE and HellaSwag error (both minimized)."""
        out = self.outputs(w, 1e9, PAPER_TARGET_STEP)
        return np.column_stack([out[:, :7].mean(axis=1), out[:, 7]])

    def cost(self, scale: float, step: float) -> float:
        return float(self.flops(scale, step))


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by ``points`` (minimized) and bounded by ``ref``, in two dimensions."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[non_dominated(pts)]
    pts = pts[np.argsort(pts[:, 0])]
    area, last_y = 0.0, ref[1]
    for x, y in pts:
        area += (ref[0] - x) * (last_y - y)
        last_y = y
    return float(area)


def true_front(sim: Simulator, n: int = 200_000, seed: int = 0) -> np.ndarray:
    """The two objectives of a dense sample of the simplex (flat and corner-heavy draws, vertices)."""
    rng = np.random.default_rng(seed)
    k = len(PAPER_DOMAINS)
    w = np.vstack([rng.dirichlet(np.ones(k), n // 2), rng.dirichlet(np.full(k, 0.2), n // 2), np.eye(k)])
    values = np.vstack([sim.objectives(w[i:i + 20_000]) for i in range(0, len(w), 20_000)])
    return values[non_dominated(values)]


def run_adso(sim: Simulator, seed: int, budget: float) -> tuple[optuna.Study, float]:
    """An ADSO study of the mean CE whose runs report every domain; stops at ``budget`` 1B runs."""
    sampler = adso.ADSOSampler(
        target={SCALE: 1e9, "step": PAPER_TARGET_STEP},
        cost=lambda params, step: sim.cost(params[SCALE], step),
        seed=seed,
        objective=adso.WeightedLoss(dict.fromkeys(CE_NAMES, 1.0)),
    )
    study = optuna.create_study(sampler=sampler, pruner=adso.ADSOPruner())
    target_cost = sim.cost(1e9, PAPER_TARGET_STEP)

    def objective(trial: optuna.Trial) -> float:
        w = adso.suggest_mixture(trial, "mix", PAPER_DOMAINS)
        scale = adso.suggest_scale(trial, SCALE, [s * 1e6 for s in PAPER_SIZES_M])
        weights = np.array([w[d] for d in PAPER_DOMAINS])
        value = math.nan
        for step in REPORT_STEPS:
            out = sim.outputs(weights, scale, step)[0]
            value = float(out[:7].mean())
            adso.report(trial, value, step, domains=dict(zip([*CE_NAMES, HELLASWAG], map(float, out))))
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    def stop_at_budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if flops_spent(study, sampler) >= budget * target_cost:
            study.stop()

    study.optimize(objective, n_trials=2000, callbacks=[stop_at_budget])
    return study, flops_spent(study, sampler) / target_cost


def run_adso_multi_objective(sim: Simulator, seed: int, budget: float) -> tuple[optuna.Study, float]:
    """An Optuna multi-objective study (mean CE, HellaSwag error) under ADSOSampler: each proposal
    a random weighting of the two, scored on the per-domain model; stops at ``budget`` 1B runs.
    Optuna cannot prune multi-objective trials, so every run goes to its end."""
    sampler = adso.ADSOSampler(
        target={SCALE: 1e9, "step": PAPER_TARGET_STEP},
        cost=lambda params, step: sim.cost(params[SCALE], step),
        seed=seed,
        objective=[adso.WeightedLoss(dict.fromkeys(CE_NAMES, 1.0)), adso.DomainLoss(HELLASWAG)],
    )
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    target_cost = sim.cost(1e9, PAPER_TARGET_STEP)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        w = adso.suggest_mixture(trial, "mix", PAPER_DOMAINS)
        scale = adso.suggest_scale(trial, SCALE, [s * 1e6 for s in PAPER_SIZES_M])
        weights = np.array([w[d] for d in PAPER_DOMAINS])
        out = None
        for step in REPORT_STEPS:
            out = sim.outputs(weights, scale, step)[0]
            adso.report(trial, None, step, domains=dict(zip([*CE_NAMES, HELLASWAG], map(float, out))))
        return float(out[:7].mean()), float(out[7])

    def stop_at_budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if flops_spent(study, sampler) >= budget * target_cost:
            study.stop()

    study.optimize(objective, n_trials=2000, callbacks=[stop_at_budget])
    return study, flops_spent(study, sampler) / target_cost


def adso_front(study: optuna.Study) -> tuple[np.ndarray, np.ndarray]:
    """The mixtures on the predicted front and their predicted values."""
    front = adso.pareto_front(study, [adso.WeightedLoss(dict.fromkeys(CE_NAMES, 1.0)), adso.DomainLoss(HELLASWAG)])
    return np.array([[p.mixture[d] for d in PAPER_DOMAINS] for p in front]), np.array([p.means for p in front])


def run_gp(sim: Simulator, seed: int, budget: float) -> np.ndarray:
    """GPSampler, multi-objective, full 1B runs: ``budget`` of them.  Returns the mixtures of its
    observed non-dominated runs (their values are exact: the simulator is noiseless)."""
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.GPSampler(seed=seed, deterministic_objective=True))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        raw = np.array([trial.suggest_float(f"mix/{d}", 0.0, 1.0) for d in PAPER_DOMAINS])
        w = raw / raw.sum() if raw.sum() > 0 else np.full(len(raw), 1.0 / len(raw))
        trial.set_user_attr("w", w.tolist())
        f = sim.objectives(w)[0]
        return float(f[0]), float(f[1])

    study.optimize(objective, n_trials=int(budget))
    return np.array([t.user_attrs["w"] for t in study.best_trials])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mean CE vs HellaSwag: predicted front at 1B vs GPSampler MO")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=30.0, help="in full 1B runs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="docs/benchmarks-tradeoff.md")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sim = Simulator(args.data_dir)
    truth = true_front(sim)
    ref = sim.objectives(np.full(len(PAPER_DOMAINS), 1.0 / len(PAPER_DOMAINS)))[0]
    hv_true = hypervolume(truth, ref)
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        study, spent = run_adso(sim, seed, args.budget)
        w_front, predicted = adso_front(study)
        hv_adso = hypervolume(sim.objectives(w_front), ref)
        hv_pred = hypervolume(predicted, ref)
        hv_gp = hypervolume(sim.objectives(run_gp(sim, seed, args.budget)), ref)
        mo_study, mo_spent = run_adso_multi_objective(sim, seed, args.budget)
        w_mo, predicted_mo = adso_front(mo_study)
        hv_mo = hypervolume(sim.objectives(w_mo), ref)
        rows.append((seed, spent, len(study.trials), len(w_front), hv_adso / hv_true, hv_pred / hv_true, hv_gp / hv_true,
                     len(mo_study.trials), mo_spent, hv_mo / hv_true, hypervolume(predicted_mo, ref) / hv_true))
        print(f"seed {seed}: ADSO {len(study.trials)} trials, {spent:.1f} 1B runs; front of {len(w_front)}: true HV "
              f"{rows[-1][4]:.3f}, predicted HV {rows[-1][5]:.3f}; GPSampler MO HV {rows[-1][6]:.3f}; "
              f"ADSO MO study {len(mo_study.trials)} trials, true HV {rows[-1][9]:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    write_report(args, rows, truth, ref)


def _stats(values: list[float]) -> str:
    v = np.array(values)
    return f"{np.median(v):.3f} / {np.quantile(v, 0.1):.3f} / {v.min():.3f}"


def write_report(args: argparse.Namespace, rows: list[tuple], truth: np.ndarray, ref: np.ndarray) -> None:
    lines = [
        "# Trade-off: mean CE vs HellaSwag at 1B (paper simulator)",
        "",
        "One ADSO study per seed optimizes the mean of the 7 domain CEs; its runs report every CE and the",
        "HellaSwag error (1 - accuracy) as per-domain values, and `adso.pareto_front` predicts the",
        "mean-CE / HellaSwag-error front at 1B, step 19,500, from them. A second ADSO study per seed is",
        "an Optuna multi-objective study (`directions=[\"minimize\", \"minimize\"]`,",
        "`ADSOSampler(objective=[mean CE, DomainLoss(\"hellaswag_error\")])`: each proposal a random",
        "weighting of the two, ParEGO-style; no pruning, which Optuna does not offer multi-objective",
        "trials), and `adso.pareto_front(study)` predicts its front. GPSampler (Optuna, multi-objective,",
        f"noiseless) runs full 1B runs of both objectives with the same FLOPs ({args.budget:g} 1B runs).",
        "",
        "Each front is scored by the simulator's true values of the mixtures it names: the hypervolume it",
        "dominates, bounded by uniform's values (a front that does not beat uniform scores 0), as a",
        f"fraction of the true front's (dense sampling: {len(truth)} non-dominated points of 200,000).",
        "*Predicted HV* is the hypervolume of ADSO's predicted values (how well it knows its own front);",
        "a fraction above 1 means its mixtures beat the dense sample's best.",
        "Target: ADSO's front within 5% of the true front's hypervolume (>= 0.95).",
        "",
        "| seed | ADSO trials | ADSO 1B runs spent | front size | ADSO HV (true values) | ADSO HV (predicted) "
        "| ADSO MO study: trials | 1B runs spent | HV (true values) | HV (predicted) | GPSampler MO HV |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {n} | {spent:.1f} | {m} | {a:.3f} | {p:.3f} | {mn} | {ms:.1f} | {ma:.3f} | {mp:.3f} | {g:.3f} |"
              for s, spent, n, m, a, p, g, mn, ms, ma, mp in rows]
    lines += [
        "",
        "| method | HV fraction: median / 10th percentile / worst |",
        "|---|---|",
        f"| ADSO, mean-CE study (predicted front, true values) | {_stats([r[4] for r in rows])} |",
        f"| ADSO, multi-objective study (predicted front, true values) | {_stats([r[9] for r in rows])} |",
        f"| GPSampler multi-objective at 1B | {_stats([r[6] for r in rows])} |",
        "",
        f"Reference point (uniform): mean CE {ref[0]:.4f}, HellaSwag error {ref[1]:.4f}.",
        "",
        f"Command: `python -m benchmarks.tradeoff --seeds {args.seeds} --budget {args.budget:g} --out {args.out}`",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
