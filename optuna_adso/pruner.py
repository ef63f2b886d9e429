"""ADSOPruner: stop a proxy run once the rest of it is not worth its cost.

Steps are the second fidelity.  Optuna's pruners rank trials by their value at the same step,
which mixes model scales (a 20M run is always worse than a 1B run at step 500) and ignores what a
step costs.  This pruner judges a run through the sampler's own surrogate instead:

1. **Planned stop** (opt-in, ``planned_stops=True``).  ADSOSampler then also plans how many steps
   each run is worth (a partial learning curve is cheap information) and the run ends there.  Off
   by default: on the paper's simulator, planned partial runs drew the sampler into many cheap
   runs and cost more FLOPs to 1% of the gap than they saved (docs/benchmarks.md).
2. **Hopeless at the target.**  At checkpoints (each time the step count has grown by
   ``check_growth`` since the last check), the surrogate, conditioned on every report of the
   study including this run's curve so far, predicts the run's mixture *at the target fidelity*.
   If the probability that it beats the best mixture known so far is below
   ``improvement_probability``, the remaining steps cannot change the recommendation: the run
   stops.  Scales are compared only through the learned cross-fidelity model, never raw.  Only
   runs whose remaining steps cost at least ``min_savings`` target runs are judged: stopping a
   cheap small-scale run saves next to nothing, while its curve is what teaches the model how
   small scales relate to the target (and a model misled about that would prune just the runs
   that could correct it).
3. **Fallback for other samplers.**  A study that ADSOSampler never configured has no model: a run
   is compared with runs *of its own scale* at the same step, and stopped when it is worse than
   ``fallback_percentile`` of them.

No rule fires before ``min_steps`` or before ``min_reports`` reports, and the model rule waits
until a run has done ``min_fraction`` of the target step: the first few percent of a learning
curve say little about where it ends, and on the paper's simulator a rule that judged 1B runs at
their first report (2.5% of the run) stopped hundreds of them there while the sampler kept
proposing more.  The defaults (judge from half of the target step, stop below 0.1%) are
conservative on purpose: on the paper's simulator (6 seeds per objective) a rule at 1% from a
quarter of the step sent two mean-CE studies in six into a local optimum they never left, while
the defaults cut the median FLOPs to 1% on StackExchange CE by about a tenth against no pruner.
Each prune writes its rule and predicted numbers to the trial's system attribute
``adso:prune_reason`` (JSON), so a user can see why a run stopped.  The pruner holds no state:
many trials can run at once.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

from optuna_adso.space import STOP_STEP_ATTR, trial_weights

PRUNE_REASON_ATTR = "adso:prune_reason"
CHECKED_AT_ATTR = "adso:pruner_checked_step"


class ADSOPruner(BasePruner):
    """Cost-aware early stopping of proxy runs, from the same surrogate as ADSOSampler.

    Args:
        min_steps: never prune before this step.
        planned_stops: let ADSOSampler plan partial runs (at its ``stop_fractions``) and stop
            each at its planned step.  Off, the sampler proposes full-length runs only.
        min_reports: never prune before this many reports.
        improvement_probability: stop a run whose mixture's probability of beating the best known
            mixture at the target falls below this.  0 switches the model rule off (only planned
            stops, when ``planned_stops`` is on, and the fallback remain).
        check_growth: the model is consulted each time the step count has grown by this factor
            since its last check (a check costs a GP conditioning, ~0.1 s).
        fallback_percentile: without an ADSO model, stop a run worse than this percentile of the
            runs of its own scale at the same step (0 switches the fallback off).
        fallback_min_peers: the fallback needs at least this many same-scale runs at that step.
        min_savings: the model rule judges only runs whose remaining steps (to the planned stop)
            cost at least this many target runs.
        min_fraction: the model rule judges a run only once it has done this fraction of the
            target step.
    """

    def __init__(
        self,
        min_steps: int = 0,
        *,
        planned_stops: bool = False,
        min_reports: int = 1,
        improvement_probability: float = 0.001,
        check_growth: float = 2.0,
        fallback_percentile: float = 25.0,
        fallback_min_peers: int = 4,
        min_savings: float = 0.05,
        min_fraction: float = 0.5,
    ) -> None:
        if not isinstance(planned_stops, bool):
            raise ValueError(f"planned_stops must be True or False, got {planned_stops!r}")
        self.planned_stops = planned_stops
        for name, value in (("min_steps", min_steps), ("min_reports", min_reports),
                            ("fallback_min_peers", fallback_min_peers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if not (isinstance(improvement_probability, (int, float)) and 0.0 <= improvement_probability < 0.5):
            raise ValueError(f"improvement_probability must be in [0, 0.5), got {improvement_probability!r}")
        if not (isinstance(check_growth, (int, float)) and check_growth > 1.0):
            raise ValueError(f"check_growth must be a number > 1, got {check_growth!r}")
        if not (isinstance(fallback_percentile, (int, float)) and 0.0 <= fallback_percentile <= 100.0):
            raise ValueError(f"fallback_percentile must be in [0, 100], got {fallback_percentile!r}")
        if not (isinstance(min_savings, (int, float)) and not isinstance(min_savings, bool)
                and 0.0 <= min_savings <= 1.0):
            raise ValueError(f"min_savings must be a fraction of a target run in [0, 1], got {min_savings!r}")
        self.min_savings = float(min_savings)
        if not (isinstance(min_fraction, (int, float)) and not isinstance(min_fraction, bool)
                and 0.0 <= min_fraction < 1.0):
            raise ValueError(f"min_fraction must be a fraction of the target step in [0, 1), got {min_fraction!r}")
        self.min_fraction = float(min_fraction)
        self.min_steps = min_steps
        self.min_reports = min_reports
        self.improvement_probability = float(improvement_probability)
        self.check_growth = float(check_growth)
        self.fallback_percentile = float(fallback_percentile)
        self.fallback_min_peers = fallback_min_peers

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.min_steps or len(trial.intermediate_values) < self.min_reports:
            return False
        planned = trial.system_attrs.get(STOP_STEP_ATTR)
        if planned is not None and step >= float(planned):
            return self._stop(study, trial, {"rule": "planned_stop", "step": step, "planned_stop_step": float(planned)})
        if self._before_model_judges(study, step) or not self._checkpoint(study, trial, step):
            return False
        reason = self._model_reason(study, trial, step)
        if reason is None:
            reason = self._fallback_reason(study, trial, step)
        return self._stop(study, trial, reason) if reason is not None else False

    # -- rules --------------------------------------------------------------------------------
    def _checkpoint(self, study: optuna.Study, trial: FrozenTrial, step: int) -> bool:
        """Whether this report is a checkpoint (the step grew by ``check_growth`` since the last)."""
        last = trial.system_attrs.get(CHECKED_AT_ATTR)
        if last is not None and step < self.check_growth * float(last):
            return False
        study._storage.set_trial_system_attr(trial._trial_id, CHECKED_AT_ATTR, step)
        return True

    def _model_reason(self, study: optuna.Study, trial: FrozenTrial, step: int) -> dict[str, Any] | None:
        """Prune reason from the surrogate, or None (keep running, or no model to ask)."""
        if self.improvement_probability <= 0.0:
            return None
        from optuna_adso.recommend import sampler_for_study
        from optuna_adso.sampler import GP_STATE_ATTR, _incumbent_weights, read_study
        from optuna_adso.surrogate import SurrogateFitError, single_threaded

        try:
            sampler = sampler_for_study(study, None)
            data = read_study(study)
        except ValueError:
            return None
        if data is None or not self._worth_judging(sampler, data, trial, step):
            return None
        if not any(GP_STATE_ATTR in t.system_attrs for t in data.trials):
            return None  # no fitted hyperparameters yet: too early to trust a model
        w = trial_weights(trial, data.spec)
        if w is None:
            return None
        rng = np.random.default_rng([trial.number, int(step)])
        try:
            with single_threaded(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                surrogate, obs, axes = sampler.fit_surrogate(data, rng, now=trial.number, maxiter=0)
                incumbents = _incumbent_weights(surrogate, obs)
                at_target = np.column_stack([np.vstack([w[None], incumbents]), np.zeros((1 + len(incumbents), 2))])
                mean, var = surrogate.predict(at_target)
        except (SurrogateFitError, RuntimeError, ValueError):
            return None
        mean_t, sd_t = float(mean[0]), float(math.sqrt(max(var[0], 1e-18)))
        best = float(mean[1:].min()) if len(mean) > 1 else mean_t
        p_better = float(norm.cdf((best - mean_t) / sd_t))
        if p_better >= self.improvement_probability:
            return None
        sign = -1.0 if data.maximize else 1.0
        return {
            "rule": "hopeless_at_target",
            "step": step,
            "p_beats_best_at_target": p_better,
            "predicted_target_mean": sign * mean_t,
            "predicted_target_std": sd_t,
            "best_predicted_target_mean": sign * best,
            "threshold": self.improvement_probability,
        }

    def _worth_judging(self, sampler: Any, data: Any, trial: FrozenTrial, step: int) -> bool:
        """Whether the rest of this run costs enough (``min_savings``) to be worth stopping.

        A run at its last step never is: stopping it then saves nothing and loses a complete run.
        """
        from optuna_adso.space import trial_scale

        planned = trial.system_attrs.get(STOP_STEP_ATTR)
        end = min(float(planned), sampler.target.step) if planned is not None else sampler.target.step
        if step >= end or step < self.min_fraction * sampler.target.step:
            return False
        scale = trial_scale(trial, data.scale, sampler.target.scale or 1.0)
        if scale is None:
            return False
        remaining = sampler.run_cost(scale, end) - sampler.run_cost(scale, step)
        return remaining >= self.min_savings * sampler.target_cost

    def _fallback_reason(self, study: optuna.Study, trial: FrozenTrial, step: int) -> dict[str, Any] | None:
        """Without a model: compare with runs of the same scale at the same step only."""
        if self.fallback_percentile <= 0.0 or self._has_model(study):
            return None
        value = trial.intermediate_values.get(step)
        if value is None or not math.isfinite(value):
            return None
        scale_params = _scale_param_names(study)
        own_scale = {name: trial.params.get(name) for name in scale_params}
        peers = []
        for other in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if other.number == trial.number or other.state == TrialState.WAITING:
                continue
            if any(other.params.get(name) != v for name, v in own_scale.items()):
                continue  # another scale: its raw values are not comparable
            v = other.intermediate_values.get(step)
            if v is not None and math.isfinite(v):
                peers.append(v)
        if len(peers) < self.fallback_min_peers:
            return None
        maximize = study._storage.get_study_directions(study._study_id)[0] == optuna.study.StudyDirection.MAXIMIZE
        q = 100.0 - self.fallback_percentile if maximize else self.fallback_percentile
        cutoff = float(np.percentile(peers, q))
        worse = value < cutoff if maximize else value > cutoff
        if not worse:
            return None
        return {
            "rule": "worse_than_same_scale_peers",
            "step": step,
            "value": value,
            "percentile": self.fallback_percentile,
            "cutoff": cutoff,
            "n_peers": len(peers),
            "scale": own_scale,
        }

    def _before_model_judges(self, study: optuna.Study, step: int) -> bool:
        """In an ADSO study, whether ``step`` is under ``min_fraction`` of the target step (checks
        start there, so that the first one is not spent on a step the model rule ignores)."""
        from optuna_adso.sampler import CONFIG_ATTR

        raw = study._storage.get_study_system_attrs(study._study_id).get(CONFIG_ATTR)
        if not raw:
            return False
        try:
            target_step = float(json.loads(raw)["target"]["step"])
        except (TypeError, ValueError, KeyError):
            return False
        return step < self.min_fraction * target_step

    @staticmethod
    def _has_model(study: optuna.Study) -> bool:
        from optuna_adso.sampler import CONFIG_ATTR

        return CONFIG_ATTR in study._storage.get_study_system_attrs(study._study_id)

    @staticmethod
    def _stop(study: optuna.Study, trial: FrozenTrial, reason: dict[str, Any]) -> bool:
        study._storage.set_trial_system_attr(trial._trial_id, PRUNE_REASON_ATTR, json.dumps(reason))
        return True


def _scale_param_names(study: optuna.Study) -> list[str]:
    from optuna_adso.space import scale_specs_from_attrs

    return [s.name for s in scale_specs_from_attrs(study._storage.get_study_system_attrs(study._study_id))]
