"""Benchmark problems for data-mixture optimizers and the runner that measures them.

- :mod:`benchmarks.problems`: the paper's pre-training simulator and seeded synthetic worlds.
- :mod:`benchmarks.runner`: one Optuna study under a FLOPs budget -> a regret-vs-FLOPs trace.
- :mod:`benchmarks.first_measurement`: ADSO vs baselines on the paper simulator.
"""

from benchmarks.problems import Problem, paper_simulator, synthetic_world
from benchmarks.runner import METHODS, Trace, flops_to_reach, run_study

__all__ = [
    "METHODS",
    "Problem",
    "Trace",
    "flops_to_reach",
    "paper_simulator",
    "run_study",
    "synthetic_world",
]
