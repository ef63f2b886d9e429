"""Warm starts: a study that begins with a swarm of small runs someone already trained.

RegMix trained 512 one-million-parameter models before fitting anything; teams keep such
swarms.  :func:`import_swarm` makes one for a benchmark problem (full runs at its smallest
scale on seeded Dirichlet mixtures, with the problem's noise) and brings it into a study the way
a user would, through :func:`optuna_adso.add_runs` with rows in the long file format.  The
runner calls it for the ``adso-warm256`` method before the study's first trial; the recorder
only counts the runs the study makes itself, so the budget is *new* FLOPs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from benchmarks.problems import Problem
from benchmarks.runner import MIX, RUN_NOISE_STEP, SCALE, noise

SWARM_RUNS = 256
_SWARM_SALT = 0x5A12
# noise stream numbers of imported runs: far from any trial number of the study itself, so a
# swarm run never shares its noise with one of the study's runs
SWARM_NUMBER_OFFSET = 1_000_000


def swarm_mixtures(k: int, n: int, seed: int) -> np.ndarray:
    """``n`` seeded Dirichlet mixtures over ``k`` domains, each with its own concentration
    log-uniform in [0.2, 2] (RegMix's recipe: from near-vertex to near-uniform blends)."""
    rng = np.random.default_rng(np.random.SeedSequence([_SWARM_SALT, int(seed), int(n), int(k)]))
    alphas = np.exp(rng.uniform(math.log(0.2), math.log(2.0), size=n))
    w = np.vstack([rng.dirichlet(np.full(k, a)) for a in alphas])
    return w / w.sum(axis=1, keepdims=True)


def swarm_rows(problem: Problem, seed: int, n: int = SWARM_RUNS, scale: float | None = None) -> list[dict[str, Any]]:
    """Long-format rows (one per run and step) of ``n`` full runs at ``scale`` (default: the
    problem's smallest), noisy as the problem's own runs are."""
    scale = min(problem.scales) if scale is None else float(scale)
    rows: list[dict[str, Any]] = []
    for i, w in enumerate(swarm_mixtures(problem.k, n, seed)):
        number = SWARM_NUMBER_OFFSET + i
        offset = noise(seed, number, RUN_NOISE_STEP, problem.run_noise_std)
        mixture = {f"{MIX}/{d}": float(x) for d, x in zip(problem.domains, w)}
        for step in problem.report_steps:
            value = problem.loss(w, scale, step) + offset + noise(seed, number, step, problem.noise_std)
            rows.append({"run": f"swarm-{i}", "step": int(step), "value": float(value), SCALE: scale, **mixture})
    return rows


def import_swarm(study: optuna.Study, problem: Problem, seed: int, n: int = SWARM_RUNS) -> int:
    """Import a swarm of ``n`` small runs into ``study``; returns the number of trials added."""
    import optuna_adso as adso

    report = adso.add_runs(
        study, swarm_rows(problem, seed, n), mixture_name=MIX, scale_name=SCALE,
        domains=problem.domains, scales=problem.scales, source=f"swarm-{n}-seed{seed}",
    )
    return len(report.trial_numbers)
