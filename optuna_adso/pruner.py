"""ADSOPruner: stops a run at the step the sampler planned for it.

Steps are the second fidelity.  When ADSOSampler proposes a (mixture, scale) it also plans how many
steps the run is worth (a partial learning curve is cheap information); this pruner ends the run
there.  It never prunes before ``min_steps``, and it records why it stopped a run in the trial's
system attributes.  Runs proposed by other samplers carry no plan and are never pruned.
"""

from __future__ import annotations

import json

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from optuna_adso.space import STOP_STEP_ATTR

PRUNE_REASON_ATTR = "adso:prune_reason"


class ADSOPruner(BasePruner):
    """Prune at the sampler's planned stop step, never before ``min_steps``."""

    def __init__(self, min_steps: int = 0) -> None:
        if isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 0:
            raise ValueError(f"min_steps must be a non-negative int, got {min_steps!r}")
        self.min_steps = min_steps

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.min_steps:
            return False
        planned = trial.system_attrs.get(STOP_STEP_ATTR)
        if planned is None or step < float(planned):
            return False
        reason = {"rule": "planned_stop", "step": step, "planned_stop_step": float(planned)}
        study._storage.set_trial_system_attr(trial._trial_id, PRUNE_REASON_ATTR, json.dumps(reason))
        return True
