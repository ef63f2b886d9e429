"""Stop a study once its compute budget is spent.

A mixture study is budgeted in compute, not trials: a hundred 20M runs cost less than one 1B
run.  :class:`FlopsBudget` is an Optuna study callback that adds up what every run paid (each up
to its last report, as the study model counts it) and calls
``study.stop()`` when the budget is reached.  Each worker runs its own copy; all read the same
storage, so all stop.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from optuna_adso.study_model import NoStudyConfig, SettingsSource, StudyModel, StudySettings, settings_for_study
from optuna_adso.validation import as_bool, as_positive

__all__ = ["FlopsBudget"]


class FlopsBudget:
    """Study callback: ``study.stop()`` once ``budget`` cost units are spent.

    Args:
        budget: in the units of the sampler's cost model (FLOPs for :class:`~optuna_adso.FlopsCost`),
            or in full target runs when ``in_target_runs`` is true.
        sampler: the study's :class:`~optuna_adso.ADSOSampler`; by default the study's own, or
            the settings stored in the study (a user-callable cost model is not stored: then
            pass the sampler).
        in_target_runs: count the budget in multiples of one run at the target fidelity.
    """

    def __init__(self, budget: float, *, sampler: SettingsSource | None = None, in_target_runs: bool = False) -> None:
        self.budget = as_positive(budget, "budget")
        self.sampler = sampler
        self.in_target_runs = as_bool(in_target_runs, "in_target_runs")
        self.spent = 0.0

    def budget_in_cost_units(self, settings: StudySettings) -> float:
        return self.budget * settings.target_cost if self.in_target_runs else self.budget

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            settings = settings_for_study(study, self.sampler)
        except NoStudyConfig:
            return  # no ADSO trial yet: nothing has been spent
        model = StudyModel.load(study, settings)
        self.spent = 0.0 if model is None else model.flops_spent()
        if self.spent >= self.budget_in_cost_units(settings):
            study.stop()

    def __repr__(self) -> str:
        unit = "target runs" if self.in_target_runs else "cost units"
        return f"FlopsBudget({self.budget:g} {unit})"
