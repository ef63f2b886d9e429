"""Benchmark problems for data-mixture optimizers and the runner that measures them.

- :mod:`benchmarks.problems`: the paper's pre-training simulator and seeded synthetic worlds.
- :mod:`benchmarks.runner`: one Optuna study under a FLOPs budget -> a regret-vs-FLOPs trace.
- :mod:`benchmarks.transfer`: baselines that transfer small-scale results to the target.
- :mod:`benchmarks.suite`, :mod:`benchmarks.report`, :mod:`benchmarks.calibration`: the
  resumable suite, its report, and the scoring of ``adso.predict``.
"""

from benchmarks.problems import Problem, paper_simulator, synthetic_world
from benchmarks.runner import METHODS, Trace, flops_to_reach, flops_to_stay, run_study

__all__ = [
    "METHODS",
    "Problem",
    "Trace",
    "flops_to_reach",
    "flops_to_stay",
    "paper_simulator",
    "run_study",
    "synthetic_world",
]
