"""A user objective for ``adso optimize`` tests: ``run(trial, mixture, scale, steps)``."""

from __future__ import annotations

import optuna
from conftest import DOMAINS, REPORT_STEPS, synthetic_loss


def run(trial: optuna.Trial, mixture: dict[str, float], scale: float, steps: int) -> float:
    """The synthetic world of conftest.py, reported like a training loop; domain losses as attrs."""
    w = [mixture[d] for d in DOMAINS]
    value = float("nan")
    for step in REPORT_STEPS:
        value = synthetic_loss(w, scale, step * steps / REPORT_STEPS[-1])
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    for i, d in enumerate(DOMAINS):
        trial.set_user_attr(f"val_loss/{d}", value + 0.05 * i)
    return value
