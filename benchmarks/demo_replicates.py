"""Do seed replicates cost the demo's recommendation anything?  Paired demo studies, new seeds.

For each study seed the demo study runs twice, with ``ADSOSampler(seed_replicates=True)`` and
``False``.  Each recommendation is trained at the target with new seeds (those of
:mod:`benchmarks.demo_calibration`), and so is the uniform mixture.  Reported per study: the
new runs' mean for each arm's recommendation, and the z of ``recommend``'s own statement
against it; over studies the median, the 90th percentile and the worst, beside uniform's.

    python -m benchmarks.demo_replicates --study-seeds 3-10 --out docs/demo-calibration.md
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import optuna
import torch

import optuna_adso as adso
from benchmarks.demo_calibration import FRESH_SEED, Z90
from optuna_adso.pretrain.demo import TARGET_SCALE, make_objective, run_demo

ARMS = {"replicates": True, "no replicates": False}


def new_runs(mixture: dict[str, float], n_seeds: int, cache_dir: str) -> list[float]:
    """``mixture`` trained at the target with ``n_seeds`` seeds no study run uses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [make_objective(cache_dir, FRESH_SEED + i).prepare().train(mixture, TARGET_SCALE).objective
                for i in range(n_seeds)]
    finally:
        torch.set_num_threads(threads)


def one_study(seed: int, arm: str, n_seeds: int, workdir: str, cache_dir: str) -> dict:
    """Run (or reuse) one demo study and score its recommendation on new seeds."""
    tag = f"s{seed}-" + arm.replace(" ", "-")
    out = Path(workdir) / f"{tag}.json"
    if out.exists():
        return json.loads(out.read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{Path(workdir) / tag}.db"
    study = run_demo(storage, "demo", 24, seed, cache_dir, progress=False, seed_replicates=ARMS[arm])
    rec = adso.recommend(study)
    runs = new_runs(dict(rec.mixture), n_seeds, cache_dir)
    mean = float(np.mean(runs))
    z = (mean - rec.mean) / math.sqrt(rec.std**2 + rec.noise_std**2 / len(runs))
    lo, hi = rec.interval(0.9, new_run=True)
    result = {"seed": seed, "arm": arm, "mixture": rec.mixture, "stated": [rec.mean, rec.std, rec.noise_std],
              "runs": runs, "mean": mean, "z": z, "inside": sum(lo <= r <= hi for r in runs)}
    out.write_text(json.dumps(result))
    return result


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def report(results: list[dict], uniform: list[float], title: str) -> str:
    u = float(np.mean(uniform))
    seeds = sorted({r["seed"] for r in results})
    by = {(r["seed"], r["arm"]): r for r in results}
    lines = [f"### {title}", "",
             f"New runs (seeds {FRESH_SEED}-{FRESH_SEED + len(uniform) - 1}) of each study's recommendation at the "
             f"target; the uniform mixture's average {u:.4f}. z: `recommend`'s statement against the runs' mean.", "",
             "| study seed | " + " | ".join(f"{a}: new runs' mean | z | runs inside" for a in ARMS) + " |",
             "|---|" + "---|---|---|" * len(ARMS)]
    for s in seeds:
        cells = []
        for a in ARMS:
            r = by.get((s, a))
            cells.append("- | - | -" if r is None else
                         f"{r['mean']:.4f} | {r['z']:+.2f} | {r['inside']} of {len(r['runs'])}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    for a in ARMS:
        rows = [r for r in results if r["arm"] == a]
        if not rows:
            continue
        means = np.array([r["mean"] for r in rows])
        zs = np.array([r["z"] for r in rows])
        lines.append(
            f"- {a}: {len(rows)} studies; new runs' mean median {np.median(means):.4f}, 90th percentile "
            f"{np.percentile(means, 90):.4f}, worst {means.max():.4f}; {int((means > u).sum())} worse than uniform; "
            f"`recommend`'s expected value inside its 90% interval in {int((np.abs(zs) <= Z90).sum())} of {len(rows)} "
            f"(mean z {zs.mean():+.2f}); new runs inside the one-run interval "
            f"{sum(r['inside'] for r in rows)} of {sum(len(r['runs']) for r in rows)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study-seeds", default="3-10", help="demo study seeds, e.g. 3-10")
    parser.add_argument("--seeds", type=int, default=4, help="new runs per recommendation")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", default="benchmarks/results/demo-replicates")
    parser.add_argument("--cache-dir", default=".adso_cache")
    parser.add_argument("--title", default="Seed replicates on and off: the demo's recommendation on new seeds")
    parser.add_argument("--out", default=None, help="append the table to this markdown file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.workdir, exist_ok=True)
    jobs = [(s, a) for s in _seeds(args.study_seeds) for a in ARMS]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_study, s, a, args.seeds, args.workdir, args.cache_dir) for s, a in jobs]
        results = []
        for f in futures:
            results.append(f.result())
            r = results[-1]
            logging.info("study seed %d, %s: new runs' mean %.4f (z %+.2f)", r["seed"], r["arm"], r["mean"], r["z"])
    uniform_mixture = dict.fromkeys(results[0]["mixture"], 1.0 / len(results[0]["mixture"]))
    text = report(results, new_runs(uniform_mixture, args.seeds, args.cache_dir), args.title)
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
