"""The benchmark suite: every (problem, method, seed) cell, resumable, in parallel processes.

A cell is one :func:`benchmarks.runner.run_study`.  Its trace is saved as JSON under
``<results>/<suite name>/<problem>/<method>/seed<k>.json`` together with the settings it ran
with; a rerun skips every cell whose file holds the same settings, so an interrupted suite
resumes and a report can be rebuilt without computing anything.  Cells run in ``jobs`` worker
processes (spawned, one torch thread each), the slowest kind first, and the wall time of each
is printed with an estimate of what is left.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.problems import (
    PAPER_CAPS_M,
    PAPER_EXCESS_OBJECTIVES,
    PAPER_OBJECTIVES,
    Problem,
    paper_data_available,
    paper_data_dir,
    paper_simulator,
    synth_family_settings,
    synth_family_world,
    synthetic_world,
    with_pool,
)
from benchmarks.runner import (
    ADSO_METHODS,
    BASELINES,
    CANONICAL_BASELINES,
    METHODS,
    SUITE_METHODS,
    TRANSFER_METHODS,
    Trace,
    run_study,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# The paper's simulator: every objective (its 11 outputs and the mean domain CE), and the three
# main objectives with runs capped below the 1B target (paper-<objective>-cap<size>m).
PAPER_ALL = tuple(f"paper-{o}" for o in PAPER_OBJECTIVES)
PAPER_MAIN = ("paper-stackexchange", "paper-mean_ce", "paper-hellaswag")
PAPER_CAPPED = tuple(f"{p}-cap{cap}m" for p in PAPER_MAIN for cap in PAPER_CAPS_M)
_PAPER_VARIANTS: dict[str, tuple[str, float | None]] = {f"paper-{o}": (o, None) for o in PAPER_OBJECTIVES}
_PAPER_VARIANTS.update(
    {f"{p}-cap{cap}m": (_PAPER_VARIANTS[p][0], cap * 1e6) for p in PAPER_MAIN for cap in PAPER_CAPS_M}
)
# Objectives of the 7 domain CEs beyond their mean (issue 20): paper-worst_excess
PAPER_EXCESS = tuple(f"paper-{o}" for o in PAPER_EXCESS_OBJECTIVES)
_PAPER_VARIANTS.update({f"paper-{o}": (o, None) for o in PAPER_EXCESS_OBJECTIVES})
PAPER_PROBLEMS = PAPER_ALL + PAPER_CAPPED + PAPER_EXCESS  # all need the simulator's files
# Synthetic worlds of the suite: name -> synthetic_world arguments.  Seeds picked for variety:
# 5 to 7 domains, the target at the largest runnable scale or beyond it, misleading small
# scales, and three times the default run-to-run noise.
SYNTHETIC_PROBLEMS: dict[str, dict[str, Any]] = {
    "synthetic-0": {"seed": 0},
    "synthetic-1-misleading": {"seed": 1, "misleading": True},
    "synthetic-3-noisy": {"seed": 3, "noise_std": 0.03},
    "synthetic-5-misleading": {"seed": 5, "misleading": True},
    "synthetic-6": {"seed": 6},
}
# The synthetic family: name -> synth_family_world arguments, each world's settings drawn from its
# index (see synth_family_settings): 4 to 12 domains, 3 to 6 scales, informative, uninformative
# or misleading small scales, the target runnable or 2x to 8x beyond the largest scale, no noise
# or up to 20% of the gap split between a per-run offset and per-report noise.
SYNTH_WORLDS: dict[str, dict[str, Any]] = {f"synth-{i:02d}": synth_family_settings(i) for i in range(24)}
SYNTH_FAMILY = tuple(SYNTH_WORLDS)
# Five of them, all noisy: informative with the target runnable (05) and 2.1x beyond (06),
# uninformative runnable (10) and 4.7x beyond (21), misleading 3.6x beyond (03).
SYNTH_HEADLINE = ("synth-05", "synth-06", "synth-10", "synth-21", "synth-03")
HEADLINE_PROBLEMS = PAPER_MAIN + ("paper-stackexchange-cap500m", "paper-mean_ce-cap300m") + SYNTH_HEADLINE
# Pool problems: only 64 mixtures can be built (benchmarks.problems.with_pool), regret against
# the pool's best.  <problem>-pool64 for the two paper objectives of the import issue.
POOL_SIZE = 64
POOL_PROBLEMS = tuple(f"{p}-pool{POOL_SIZE}" for p in ("paper-stackexchange", "paper-mean_ce"))
PROBLEMS = PAPER_PROBLEMS + tuple(SYNTHETIC_PROBLEMS) + SYNTH_FAMILY + POOL_PROBLEMS
FULL_PROBLEMS = PAPER_MAIN + ("synthetic-0", "synthetic-1-misleading", "synthetic-3-noisy")
QUICK_PROBLEMS = ("paper-stackexchange", "synthetic-1-misleading")
QUICK_METHODS = ("random-floats", "tpe-hyperband-dirichlet", "gp-floats", "gp-dirichlet", "regmix",
                 "paper", "adso", "adso-noprune")
# The protocol's methods: every baseline in both parametrizations, the transfer baselines and ADSO.
# ADSO without its pruner or with Hyperband (about 45 CPU-seconds a study each, like ADSO) and the
# paper's method (about 6 CPU-minutes a study at its trial cap) have parts of their own.
PROTOCOL_METHODS = CANONICAL_BASELINES + TRANSFER_METHODS + ("adso",)
RUNNABLE_HARD_WORLDS = ("synth-00", "synth-09", "synth-13", "synth-16", "synth-18", "synth-11")
NEVER_LOSES_PROBLEMS = HEADLINE_PROBLEMS + RUNNABLE_HARD_WORLDS
NEVER_LOSES_METHODS = ("gp-floats", "gp-dirichlet", "tpe-dirichlet", "tpe-hyperband-floats",
                       "tpe-hyperband-dirichlet", "adso")
OBJECTIVES_METHODS = ("gp-floats", "gp-dirichlet", "tpe-dirichlet", "tpe-hyperband-floats",
                      "tpe-hyperband-dirichlet", "adso", "adso-domains")
# Named suites (``--preset``): the headline one, and the full protocol in parts that each fit in
# about an hour of 2 cores (or a few minutes of the GPU machine's 16).
PRESETS: dict[str, dict[str, Any]] = {
    "headline": {"problems": HEADLINE_PROBLEMS, "methods": PROTOCOL_METHODS},
    "paper-all": {"problems": tuple(p for p in PAPER_ALL if p not in PAPER_MAIN), "methods": PROTOCOL_METHODS},
    "paper-capped": {"problems": tuple(p for p in PAPER_CAPPED if p not in HEADLINE_PROBLEMS),
                     "methods": PROTOCOL_METHODS},
    "synth-a": {"problems": tuple(p for p in SYNTH_FAMILY[:12] if p not in SYNTH_HEADLINE), "methods": PROTOCOL_METHODS},
    "synth-b": {"problems": tuple(p for p in SYNTH_FAMILY[12:] if p not in SYNTH_HEADLINE), "methods": PROTOCOL_METHODS},
    "pruners": {"problems": HEADLINE_PROBLEMS, "methods": ("adso", "adso-noprune", "adso-hyperband")},
    # Issue 18's check, 5 seeds: the headline problems and six runnable worlds where small scales
    # mislead or say nothing, against the families that were ever the strongest on them.
    "never-loses": {"problems": NEVER_LOSES_PROBLEMS, "methods": NEVER_LOSES_METHODS, "seeds": 5},
    # Its six runnable worlds whose small scales mislead or say nothing, where the hedge (target-
    # only BO at the anchor) decides: a quick check of a change to it (about 20 minutes of 2 cores).
    "runnable-hard": {"problems": RUNNABLE_HARD_WORLDS, "methods": NEVER_LOSES_METHODS, "seeds": 5},
    "paper-method": {"problems": PAPER_MAIN, "methods": ("adso", "paper")},
    # Issue 21: ADSO from 256 imported runs at the smallest scale (20M on the paper simulator)
    # against a cold ADSO and the baselines at the target, 5 seeds: the paper's two problems, whose
    # 20M landscape misleads at 1B, and synth-05, a noisy world whose small scales teach.
    "warm-start": {"problems": ("paper-stackexchange", "paper-mean_ce", "synth-05"),
                   "methods": ("gp-floats", "gp-dirichlet", "adso", "adso-warm256"), "seeds": 5},
    # Issue 20: the worst domain's excess CE over uniform at 1B, ADSO on the reported scalar and on
    # the per-domain losses (adso-domains) against the paper problems' strongest baselines, 5 seeds;
    # benchmarks.retarget adds the re-targeting check to its report.
    "objectives": {"problems": ("paper-worst_excess",), "methods": OBJECTIVES_METHODS, "seeds": 5},
    "pools": {"problems": POOL_PROBLEMS,
              "methods": ("random-pool", "tpe-pool", "gp-pool", "gp-floats", "gp-dirichlet", "tpe-dirichlet", "adso"),
              "seeds": 5},
}


def make_problem(name: str, paper_dir: str | None = None) -> Problem:
    """A suite problem by name (see :data:`PROBLEMS`)."""
    if name in _PAPER_VARIANTS:
        objective, max_scale = _PAPER_VARIANTS[name]
        return paper_simulator(objective, paper_dir, max_scale=max_scale)
    if name in SYNTHETIC_PROBLEMS:
        problem = synthetic_world(**SYNTHETIC_PROBLEMS[name])
        problem.name = name  # the suite's name also says what the variant is (noisy)
        gap = problem.uniform_value - problem.optimum_value
        problem.description += f"; run-to-run noise std {problem.noise_std:g} ({problem.noise_std / gap:.0%} of the gap)"
        return problem
    if name in SYNTH_WORLDS:  # its description says its noise already
        return synth_family_world(**SYNTH_WORLDS[name], name=name)
    base, _, size = name.rpartition("-pool")
    if name in POOL_PROBLEMS and size.isdigit():
        return with_pool(make_problem(base, paper_dir), int(size))
    raise ValueError(f"unknown problem {name!r}; choose from {list(PROBLEMS)}")


@dataclass(frozen=True)
class SuiteConfig:
    """What the suite runs.  Budgets are in full target runs of FLOPs.

    ``baseline_budget`` (default 5x ``budget``) is how far the single-fidelity baselines run:
    they cost no sampler time worth mentioning, and running them past ``budget`` turns "never
    reached 1% within the budget" into a measured FLOPs ratio.  Final regrets are compared at
    ``budget`` for every method.

    ``max_trials`` caps the studies of ADSO, whose cheap runs can number in the hundreds per
    target run at a fraction of a second of sampler time each; ``baseline_max_trials`` caps the
    single-fidelity baselines (a budget of ``B`` target runs is ``B`` trials for them, more with
    Hyperband's pruned ones).

    The paper's method is a baseline too: it runs on to ``paper_budget`` (default the baselines'
    horizon), capped at ``paper_max_trials``.  Its cost-discounted acquisition spends its first
    few hundred trials on near-free small runs (150 trials buy about one target run), so a cap
    as low as ADSO's would stop it long before the FLOPs where the comparison is decided.
    """

    name: str = "full"
    problems: tuple[str, ...] = FULL_PROBLEMS
    methods: tuple[str, ...] = SUITE_METHODS
    seeds: int = 10
    budget: float = 30.0
    baseline_budget: float | None = None
    max_trials: int = 150
    baseline_max_trials: int = 2000
    paper_max_trials: int = 1000
    paper_budget: float | None = None
    recommend_every: float = 0.5
    paper_dir: str | None = None
    quick: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"suite name must be a plain folder name, got {self.name!r}")
        unknown = [p for p in self.problems if p not in PROBLEMS]
        if unknown:
            raise ValueError(f"unknown problems {unknown}; choose from {list(PROBLEMS)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if not self.problems or not self.methods:
            raise ValueError("need at least one problem and one method")
        if not (isinstance(self.seeds, int) and self.seeds >= 1):
            raise ValueError(f"seeds must be an int >= 1, got {self.seeds!r}")
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"budget must be a positive number of target runs, got {self.budget!r}")
        if self.baseline_budget is not None and not (
            math.isfinite(self.baseline_budget) and self.baseline_budget >= self.budget
        ):
            raise ValueError(
                f"baseline_budget must be a number of target runs >= budget ({self.budget:g}), "
                f"got {self.baseline_budget!r}"
            )
        if self.paper_budget is not None and not (
            math.isfinite(self.paper_budget) and self.paper_budget >= self.budget
        ):
            raise ValueError(
                f"paper_budget must be a number of target runs >= budget ({self.budget:g}), "
                f"got {self.paper_budget!r}"
            )
        if min(self.max_trials, self.baseline_max_trials, self.paper_max_trials) < 1:
            raise ValueError("max_trials, baseline_max_trials and paper_max_trials must be >= 1")
        if not self.recommend_every >= 0:
            raise ValueError(f"recommend_every must be >= 0, got {self.recommend_every!r}")

    @classmethod
    def quick_config(cls, **overrides: Any) -> SuiteConfig:
        """The CI smoke test: 2 seeds, a small budget, two problems, the methods the targets need."""
        base = cls(
            name="quick", problems=QUICK_PROBLEMS, methods=QUICK_METHODS, seeds=2, budget=3.0,
            max_trials=10, paper_max_trials=10, recommend_every=1.5, quick=True,
        )
        return replace(base, **overrides)

    @property
    def baseline_horizon(self) -> float:
        """How far the baselines run, in target runs (``baseline_budget``, default 5x budget)."""
        return self.baseline_budget if self.baseline_budget is not None else 5.0 * self.budget

    @property
    def paper_horizon(self) -> float:
        """How far the paper's method runs, in target runs (``paper_budget``, default as the baselines)."""
        return self.paper_budget if self.paper_budget is not None else self.baseline_horizon

    def cell_settings(self, method: str) -> dict[str, Any]:
        """The settings a saved trace must match to be reused."""
        multi = method in ADSO_METHODS
        if method == "paper":
            return {
                "budget": self.paper_horizon,
                "max_trials": self.paper_max_trials,
                "recommend_every": self.recommend_every,
            }
        return {
            "budget": self.budget if multi else self.baseline_horizon,
            "max_trials": self.max_trials if multi else self.baseline_max_trials,
            "recommend_every": self.recommend_every if multi else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Cell:
    problem: str
    method: str
    seed: int
    settings: dict[str, Any] = field(hash=False, compare=False)
    paper_dir: str | None = None

    def path(self, root: Path) -> Path:
        return root / self.problem / self.method / f"seed{self.seed}.json"


def available_problems(config: SuiteConfig) -> tuple[list[str], dict[str, str]]:
    """The problems that can run, and why each other one is skipped."""
    skipped: dict[str, str] = {}
    problems = []
    for name in config.problems:
        if (name in PAPER_PROBLEMS or name in POOL_PROBLEMS) and not paper_data_available(config.paper_dir):
            skipped[name] = (
                f"paper simulator files (mlp.npz, flops.csv) not found in "
                f"{paper_data_dir(config.paper_dir)}; pass --paper-simulator PATH or set "
                "$ADSO_PAPER_SIMULATOR"
            )
        else:
            problems.append(name)
    return problems, skipped


def cells(config: SuiteConfig, problems: Iterable[str]) -> list[Cell]:
    return [
        Cell(p, m, s, config.cell_settings(m), config.paper_dir)
        for p in problems
        for m in config.methods
        for s in range(config.seeds)
    ]


def code_fingerprint() -> str:
    """A hash of the code a trace depends on (optuna_adso's modules, the runner, the problems),
    so that a rerun can tell traces computed by an older sampler from current ones."""
    files = sorted((REPO / "optuna_adso").glob("*.py")) + [
        REPO / "benchmarks" / "runner.py",
        REPO / "benchmarks" / "problems.py",
    ]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def saved_fingerprint(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("code")
    except (OSError, ValueError, AttributeError):
        return None


def load_cell(path: Path, settings: dict[str, Any] | None = None) -> Trace | None:
    """The saved trace, or None when missing, unreadable, or run with other ``settings``."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if settings is not None and saved.get("settings") != settings:
        return None
    try:
        return Trace.from_dict(saved["trace"])
    except (KeyError, TypeError):
        return None


def run_cell(cell: Cell, root: str) -> dict[str, Any]:
    """Run one cell in this process and save its trace (atomically); a summary for the log."""
    import torch

    torch.set_num_threads(1)
    problem = make_problem(cell.problem, cell.paper_dir)
    t0, cpu0 = time.perf_counter(), time.process_time()
    trace = run_study(
        problem,
        cell.method,
        cell.seed,
        budget=cell.settings["budget"],
        recommend_every=cell.settings["recommend_every"],
        max_trials=cell.settings["max_trials"],
    )
    seconds = time.perf_counter() - t0  # includes the optimum search on a fresh process
    # CPU seconds: what the cell costs on an unloaded core (the machine may be shared)
    cpu = time.process_time() - cpu0
    path = cell.path(Path(root))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    saved = {
        "settings": cell.settings, "code": code_fingerprint(), "cell_seconds": seconds,
        "cell_cpu_seconds": cpu, "trace": trace.to_dict(),
    }
    tmp.write_text(json.dumps(saved))
    tmp.replace(path)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "trials": trace.n_trials,
        "flops": float(trace.flops[-1]) if trace.n_trials else 0.0,
        "final_regret": trace.final_regret,
    }


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _one_thread_per_worker() -> Iterator[None]:
    """Spawned workers inherit one BLAS/OpenMP thread each.

    They must be set before the worker imports numpy; ``torch.set_num_threads(1)`` alone leaves
    NumPy's and SciPy's BLAS with a thread per core, and ``jobs`` workers then fight over the
    cores (40-trial GPSampler studies, two at once on 2 cores: 8.6 s each that way, 2.5 s with
    one thread each).
    """
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kind(method: str) -> str:
    return "multi-fidelity" if method in ADSO_METHODS else "baseline"


class Eta:
    """Estimate of the wall time left, over ``jobs`` processes.

    Per cell: the mean seconds of the cells of the same method finished in this run; before
    any, the CPU seconds measured for the same (problem, method, settings) in any saved suite
    (``measured``, e.g. a one-seed probe); else a prior of 0.7 s per trial of an ADSO-family
    study (measured: 0.85 and 0.54 CPU s per trial of 150-trial ADSO studies on the paper
    simulator and a synthetic world, recommendations included) and 0.2 s per baseline trial.
    """

    PRIOR = {"multi-fidelity": 0.7, "baseline": 0.2}

    def __init__(self, todo: list[Cell], jobs: int, measured: dict[tuple[str, str], float] | None = None) -> None:
        self.left = list(todo)
        self.jobs = jobs
        self.measured = measured or {}
        self.done: dict[str, list[float]] = {}

    def finished(self, cell: Cell, seconds: float) -> None:
        self.left.remove(cell)
        self.done.setdefault(cell.method, []).append(seconds)

    def guess(self, cell: Cell) -> float:
        seen = self.done.get(cell.method)
        if seen:
            return sum(seen) / len(seen)
        if (cell.problem, cell.method) in self.measured:
            return self.measured[cell.problem, cell.method]
        trials = cell.settings["max_trials"] if _kind(cell.method) == "multi-fidelity" else cell.settings["budget"]
        return self.PRIOR[_kind(cell.method)] * trials

    def seconds_left(self) -> float:
        return sum(self.guess(c) for c in self.left) / self.jobs


def measured_cpu(results: Path, todo: Iterable[Cell]) -> dict[tuple[str, str], float]:
    """Median CPU seconds of saved cells (any suite under ``results``) with the same problem,
    method and settings as a cell of ``todo``."""
    out: dict[tuple[str, str], float] = {}
    for key in {(c.problem, c.method): c for c in todo}.values():
        seen = []
        for path in Path(results).glob(f"*/{key.problem}/{key.method}/seed*.json"):
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if saved.get("settings") == key.settings and "cell_cpu_seconds" in saved:
                seen.append(float(saved["cell_cpu_seconds"]))
        if seen:
            out[key.problem, key.method] = float(sorted(seen)[len(seen) // 2])
    return out


def _fmt_seconds(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def run_suite(
    config: SuiteConfig,
    *,
    jobs: int = 2,
    results: Path = RESULTS,
    log: Callable[[str], None] = print,
    command: str = "",
    dry_run: bool = False,
    rerun_stale: bool = False,
) -> dict[str, Any]:
    """Run every missing cell of ``config``; returns what ran, what was reused, what was skipped.

    ``rerun_stale``: also recompute saved cells whose code fingerprint differs from the current
    code's (by default they are reused, with a warning).  ``dry_run``: only print what would
    run and the estimate (see :class:`Eta`).
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    root = Path(results) / config.name
    problems, skipped = available_problems(config)
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    everything = cells(config, problems)
    todo = [c for c in everything if load_cell(c.path(root), c.settings) is None]
    code = code_fingerprint()
    stale = [c for c in everything if c not in todo and saved_fingerprint(c.path(root)) != code]
    if stale and rerun_stale:
        todo += stale
    elif stale:
        log(
            f"{len(stale)} saved cells were computed by other code (optuna_adso, runner or problems "
            "changed since); they are reused: pass --rerun-stale to recompute them"
        )
    # slowest kind first, so the last cells to finish are short ones (better use of the jobs)
    todo.sort(key=lambda c: (_kind(c.method) != "multi-fidelity", c.problem, c.method, c.seed))
    measured = measured_cpu(results, todo)
    eta = Eta(todo, jobs, measured)
    log(
        f"suite {config.name!r}: {len(everything)} cells, {len(everything) - len(todo)} saved, "
        f"{len(todo)} to run on {jobs} process(es); first estimate {_fmt_seconds(eta.seconds_left())}"
    )
    if dry_run:
        per_method: dict[str, int] = {}
        for c in todo:
            per_method[c.method] = per_method.get(c.method, 0) + 1
        log("cells to run per method: " + ", ".join(f"{m} {n}" for m, n in per_method.items()))
        log(
            f"estimate from CPU seconds measured in saved suites for {len(measured)} of "
            f"{len({(c.problem, c.method) for c in todo})} (problem, method) pairs, priors for the rest"
        )
        return {"config": config.to_dict(), "todo": len(todo), "estimate_seconds": eta.seconds_left()}
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if todo:
        with _one_thread_per_worker(), ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, c, str(root)): c for c in todo}
            for i, future in enumerate(as_completed(futures), 1):
                cell = futures[future]
                summary = future.result()
                eta.finished(cell, summary["seconds"])
                log(
                    f"[{i}/{len(todo)}] {cell.problem} {cell.method} seed {cell.seed}: "
                    f"{summary['seconds']:.1f} s ({summary['cpu_seconds']:.1f} s CPU), {summary['trials']} trials, "
                    f"{summary['flops']:.2f} target runs, final regret {summary['final_regret']:.4f}; "
                    f"elapsed {_fmt_seconds(time.perf_counter() - t0)}, "
                    f"about {_fmt_seconds(eta.seconds_left())} left"
                )
    wall = time.perf_counter() - t0
    meta = {
        "config": config.to_dict(),
        "command": command,
        "skipped": skipped,
        "jobs": jobs,
        "last_run_wall_seconds": wall,
        "last_run_cells": len(todo),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    previous = saved_meta(config.name, results)
    if todo or previous is None or previous[0] != config:
        (root / "suite.json").write_text(json.dumps(meta, indent=1))
    else:  # nothing ran: keep the timing of the run that computed the traces
        meta = previous[1]
    log(f"ran {len(todo)} cells in {_fmt_seconds(wall)}")
    return meta


def load_suite(config: SuiteConfig, results: Path = RESULTS) -> dict[str, dict[str, list[Trace]]]:
    """Saved traces of ``config``'s cells: problem -> method -> traces (seed order)."""
    root = Path(results) / config.name
    out: dict[str, dict[str, list[Trace]]] = {}
    for cell in cells(config, config.problems):
        trace = load_cell(cell.path(root), cell.settings)
        if trace is not None:
            out.setdefault(cell.problem, {}).setdefault(cell.method, []).append(trace)
    return out


def saved_meta(name: str, results: Path = RESULTS) -> tuple[SuiteConfig, dict[str, Any]] | None:
    """The configuration the suite ``name`` last ran with and the rest of its ``suite.json``."""
    path = Path(results) / name / "suite.json"
    try:
        meta = json.loads(path.read_text())
        d = dict(meta["config"])
    except (OSError, ValueError, KeyError):
        return None
    d["problems"], d["methods"] = tuple(d["problems"]), tuple(d["methods"])
    return SuiteConfig(**d), meta


def cell_seconds(
    config: SuiteConfig, results: Path = RESULTS, key: str = "cell_seconds"
) -> dict[str, dict[str, list[float]]]:
    """Measured seconds of every saved cell (``key``: wall ``cell_seconds`` or
    ``cell_cpu_seconds``): problem -> method -> seconds."""
    root = Path(results) / config.name
    out: dict[str, dict[str, list[float]]] = {}
    for cell in cells(config, config.problems):
        try:
            saved = json.loads(cell.path(root).read_text())
        except (OSError, ValueError):
            continue
        if saved.get("settings") == cell.settings and key in saved:
            out.setdefault(cell.problem, {}).setdefault(cell.method, []).append(float(saved[key]))
    return out


__all__ = [
    "BASELINES",
    "FULL_PROBLEMS",
    "PROBLEMS",
    "QUICK_METHODS",
    "QUICK_PROBLEMS",
    "SuiteConfig",
    "available_problems",
    "cell_seconds",
    "load_suite",
    "make_problem",
    "run_suite",
    "saved_meta",
]
