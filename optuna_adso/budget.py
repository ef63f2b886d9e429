"""Stop a study once its compute budget is spent.

A mixture study is budgeted in compute, not trials: a hundred 20M runs cost less than one 1B
run.  :class:`FlopsBudget` is an Optuna study callback that adds up what every run paid (each up
to its last report, as :func:`~optuna_adso.recommend.flops_spent` counts it) and calls
``study.stop()`` when the budget is reached.  Each worker runs its own copy; all read the same
storage, so all stop.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial

from optuna_adso.recommend import flops_spent, sampler_for_study
from optuna_adso.sampler import ADSOSampler

__all__ = ["FlopsBudget"]


class FlopsBudget:
    """Study callback: ``study.stop()`` once ``budget`` cost units are spent.

    Args:
        budget: in the units of the sampler's cost model (FLOPs for :class:`~optuna_adso.FlopsCost`),
            or in full target runs when ``in_target_runs`` is true.
        sampler: the study's :class:`~optuna_adso.ADSOSampler`; by default the study's own, or
            one rebuilt from the configuration stored in the study.
        in_target_runs: count the budget in multiples of one run at the target fidelity.
    """

    def __init__(self, budget: float, *, sampler: ADSOSampler | None = None, in_target_runs: bool = False) -> None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not (math.isfinite(budget) and budget > 0):
            raise ValueError(f"budget must be a positive finite number, got {budget!r}")
        self.budget = float(budget)
        self.sampler = sampler
        self.in_target_runs = bool(in_target_runs)
        self.spent = 0.0

    def budget_in_cost_units(self, sampler: ADSOSampler) -> float:
        return self.budget * sampler.target_cost if self.in_target_runs else self.budget

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            sampler = sampler_for_study(study, self.sampler)
        except ValueError:
            return  # no mixture/scale declared yet: nothing has been spent
        self.spent = flops_spent(study, sampler)
        if self.spent >= self.budget_in_cost_units(sampler):
            study.stop()

    def __repr__(self) -> str:
        unit = "target runs" if self.in_target_runs else "cost units"
        return f"FlopsBudget({self.budget:g} {unit})"
