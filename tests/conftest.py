"""Shared fixtures: a small synthetic mixture problem whose optimum moves with model scale.

The problem is noiseless and cheap, so a whole study runs in seconds.  Its loss is a learning
curve (a power law in parameters and steps) plus a quadratic mixture penalty whose centre moves,
linearly in log10(scale), from ``SMALL_OPTIMUM`` at the smallest scale to ``TARGET_OPTIMUM`` at
the target scale.  The mixture that is best at the smallest scale is therefore clearly not the
one that is best at the target.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import optuna
import pytest

import optuna_adso as adso

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

DOMAINS = ("web", "code", "books")
SCALES = (1e7, 1e8, 1e9)
TARGET_SCALE = 1e9
TARGET_STEP = 1000
REPORT_STEPS = (100, 250, 500, 1000)
SMALL_OPTIMUM = np.array([0.10, 0.25, 0.65])
TARGET_OPTIMUM = np.array([0.60, 0.30, 0.10])
MIXTURE_CURVATURE = 1.5


def optimum_at(scale: float) -> np.ndarray:
    """Centre of the mixture penalty at ``scale`` (log-linear between the two optima)."""
    lo, hi = math.log10(min(SCALES)), math.log10(TARGET_SCALE)
    t = (math.log10(scale) - lo) / (hi - lo)
    return (1.0 - t) * SMALL_OPTIMUM + t * TARGET_OPTIMUM


def synthetic_loss(weights: Sequence[float], scale: float, step: float) -> float:
    w = np.asarray(weights, dtype=float)
    curve = 2.0 + 3.0 * (scale / 1e7) ** -0.15 * (step / 100.0) ** -0.3
    return float(curve + MIXTURE_CURVATURE * np.sum((w - optimum_at(scale)) ** 2))


def make_objective(
    *,
    domains: Sequence[str] = DOMAINS,
    scales: Sequence[float] = SCALES,
    scale_name: str = "model_size",
    report_steps: Sequence[int] = REPORT_STEPS,
    calls: list | None = None,
    nan_steps: Sequence[int] = (),
    return_nan: Callable[[int], bool] | None = None,
) -> Callable[[optuna.Trial], float]:
    """The user's objective as the README writes it: mixture, scale, a reported learning curve."""

    def objective(trial: optuna.Trial) -> float:
        weights = adso.suggest_mixture(trial, "mix", list(domains))
        size = adso.suggest_scale(trial, scale_name, list(scales))
        if calls is not None:
            calls.append(trial.number)
        w = [weights[d] for d in domains]
        value = math.nan
        for step in report_steps:
            value = synthetic_loss(w, size, step)
            trial.report(math.nan if step in nan_steps else value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if return_nan is not None and return_nan(trial.number):
            return math.nan
        return value

    return objective


def make_sampler(seed: int = 0, **kwargs) -> adso.ADSOSampler:
    return adso.ADSOSampler(
        target={"model_size": TARGET_SCALE, "step": TARGET_STEP},
        cost=adso.FlopsCost(tokens_per_step=1024),
        seed=seed,
        **kwargs,
    )


def pretrain_study(objective, target_scale: str, pruner: optuna.pruners.BasePruner | None = None,
                   *, planned_stops: bool = False, **create_kwargs) -> optuna.Study:
    """An ADSO study over a PretrainObjective's scales: its exact parameter counts and cost, the
    target at ``target_scale`` and the objective's full step count."""
    target = {"model_size": objective.n_params(target_scale), "step": objective.steps}
    sampler = adso.ADSOSampler(target=target, cost=objective.cost(), seed=0, planned_stops=planned_stops)
    return optuna.create_study(sampler=sampler, pruner=pruner or optuna.pruners.NopPruner(),
                               direction="minimize", **create_kwargs)


class PruneAtStep(optuna.pruners.BasePruner):
    """Prunes every run once it has reported at or past ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (trial.last_step or 0) >= self.step


def mixture_params(trial: optuna.trial.FrozenTrial, domains: Sequence[str] = DOMAINS) -> np.ndarray:
    return np.array([trial.params[f"mix/{d}"] for d in domains])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
