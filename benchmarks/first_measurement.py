"""First measurement: FLOPs to reach 5% and 1% of the gap on the paper simulator.

    python -m benchmarks.first_measurement --seeds 10 --budget 30 --methods adso gp

Runs every (method, seed) in one process, one after the other (the machine has 2 cores), prints
per method the median and quartiles over seeds of the FLOPs (in full target runs) needed to bring
the recommendation's regret under 5% and 1% of (uniform - optimum), and the final regret, and
writes the same table to ``docs/first_measurement.md``.  Traces go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.problems import PAPER_OBJECTIVES, paper_simulator
from benchmarks.runner import METHODS, Trace, flops_to_reach, run_study

REPO = Path(__file__).resolve().parents[1]
LEVELS = (0.05, 0.01)
_BIG = 1e300  # stands in for "never reached" inside quantiles


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles, where inf (never reached) sorts last and stays inf."""
    x = np.where(np.isfinite(values), values, _BIG)
    q = np.percentile(x, [25, 50, 75])
    return tuple(math.inf if v >= _BIG / 10 else float(v) for v in q)  # type: ignore[return-value]


def _fmt(q: tuple[float, float, float], digits: int = 1) -> str:
    def one(v: float) -> str:
        return "never" if math.isinf(v) else f"{v:.{digits}f}"

    return f"{one(q[1])} [{one(q[0])}, {one(q[2])}]"


def summarize(traces: dict[str, list[Trace]]) -> list[dict[str, object]]:
    rows = []
    for method, ts in traces.items():
        row: dict[str, object] = {"method": method, "seeds": len(ts)}
        for level in LEVELS:
            reach = [flops_to_reach(t, level) for t in ts]
            row[f"to_{level:g}"] = quartiles(reach)
            row[f"reached_{level:g}"] = sum(math.isfinite(r) for r in reach)
        row["final"] = quartiles([t.final_regret for t in ts])
        row["spent"] = quartiles([float(t.flops[-1]) if len(t.flops) else 0.0 for t in ts])
        row["trials"] = float(np.median([t.n_trials for t in ts]))
        row["seconds"] = float(np.median([t.wall_seconds for t in ts]))
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, object]], *, problem: str, budget: float, seeds: int) -> str:
    lines = [
        "# First measurement",
        "",
        f"Problem: `{problem}`; budget {budget:g} full target runs of FLOPs; {seeds} seeds. "
        "FLOPs in units of one full run at the target fidelity; regret is (value - optimum) / "
        "(uniform - optimum) at the target of the method's current recommendation. "
        "Median [25%, 75%] over seeds; 'never' = not reached within the budget. A study also ends "
        "after `--max-trials` trials: ADSO's cheap runs cost little FLOPs but wall time, and a "
        "seed that ends at the cap before spending the budget counts as 'never' if it had not "
        "reached the level by then, with its final regret taken at the FLOPs it spent.",
        "",
        "| method | FLOPs to 5% | reached | FLOPs to 1% | reached | final regret | FLOPs spent | trials | s/seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = r["seeds"]
        lines.append(
            f"| {r['method']} | {_fmt(r['to_0.05'])} | {r['reached_0.05']}/{n} "
            f"| {_fmt(r['to_0.01'])} | {r['reached_0.01']}/{n} "
            f"| {_fmt(r['final'], 4)} | {_fmt(r['spent'])} | {r['trials']:.0f} | {r['seconds']:.0f} |"
        )
    lines.append("")
    lines.append("Command: `python -m benchmarks.first_measurement " + " ".join(a for a in sys.argv[1:] if a != "--from-results") + "`")
    lines.append("")
    return "\n".join(lines)


def _run_one(
    objective: str, data_dir: str | None, budget: float, recommend_every: float, max_trials: int,
    job: tuple[str, int],
) -> Trace:
    method, seed = job
    problem = paper_simulator(objective, data_dir)
    return run_study(problem, method, seed, budget=budget, recommend_every=recommend_every, max_trials=max_trials)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (0..n-1)")
    parser.add_argument("--budget", type=float, default=30.0, help="FLOPs budget in target runs")
    parser.add_argument("--methods", nargs="+", default=["adso", "gp"], choices=list(METHODS))
    parser.add_argument("--objective", default="stackexchange", choices=sorted(PAPER_OBJECTIVES))
    parser.add_argument("--data-dir", default=None, help="folder with mlp.npz and flops.csv")
    parser.add_argument(
        "--recommend-every",
        type=float,
        default=0.0,
        help="ADSO methods: re-ask recommend() only after this many more target runs of FLOPs",
    )
    parser.add_argument("--max-trials", type=int, default=400, help="end a study after this many trials")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (2 cores: at most 2)")
    parser.add_argument("--out", default=str(REPO / "docs" / "first_measurement.md"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument(
        "--from-results", action="store_true", help="only rebuild the report from saved traces"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")

    problem = paper_simulator(args.objective, args.data_dir)
    t0 = time.perf_counter()
    print(
        f"{problem.name}: uniform {problem.uniform_value:.5f}, optimum {problem.optimum_value:.5f} "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    traces: dict[str, list[Trace]] = {m: [] for m in args.methods}
    jobs = [(m, s) for m in args.methods for s in range(args.seeds)]
    if args.from_results:
        for method, seed in jobs:
            path = results / f"{problem.name}_{method}_seed{seed}_b{args.budget:g}.json"
            traces[method].append(Trace.from_dict(json.loads(path.read_text())))
        jobs = []
    run = partial(_run_one, args.objective, args.data_dir, args.budget, args.recommend_every, args.max_trials)
    with ProcessPoolExecutor(args.jobs) as pool, tqdm(total=len(jobs), desc="runs", unit="run") as bar:
        for (method, seed), trace in zip(jobs, pool.map(run, jobs)):
            bar.update()
            bar.set_postfix_str(f"{method} seed {seed}")
            traces[method].append(trace)
            path = results / f"{problem.name}_{method}_seed{seed}_b{args.budget:g}.json"
            path.write_text(json.dumps(trace.to_dict()))

    rows = summarize(traces)
    for r in rows:
        print(
            f"{r['method']:>14}: to 5% {_fmt(r['to_0.05'])} ({r['reached_0.05']}/{r['seeds']}), "
            f"to 1% {_fmt(r['to_0.01'])} ({r['reached_0.01']}/{r['seeds']}), "
            f"final regret {_fmt(r['final'], 4)}, {r['trials']:.0f} trials, {r['seconds']:.0f} s/seed"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows, problem=problem.name, budget=args.budget, seeds=args.seeds))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
