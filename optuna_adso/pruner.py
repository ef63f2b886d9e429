"""ADSOPruner: stop a proxy run once the rest of it is not worth its cost.

Steps are the second fidelity.  Optuna's pruners rank trials by their value at the same step,
which mixes model scales (a 20M run is always worse than a 1B run at step 500) and ignores what a
step costs.  This pruner judges a run through the sampler's own surrogate instead:

1. **Planned stop.**  Under ``ADSOSampler(planned_stops=True)`` the sampler also plans how many
   steps each run is worth (a partial learning curve is cheap information), and the run ends
   there.  Off by default: on the paper's simulator, planned partial runs drew the sampler into
   many cheap runs and cost more FLOPs to 1% of the gap than they saved (docs/benchmarks.md).
2. **Hopeless at the target.**  At checkpoints (each time the step count has grown by
   ``check_growth`` since the last check), the surrogate, conditioned on every report of the
   study including this run's curve so far, predicts the run's mixture *at the target fidelity*.
   If the probability that it beats the best mixture known so far is below
   ``improvement_probability``, the remaining steps cannot change the recommendation: the run
   stops.  Scales are compared only through the learned cross-fidelity model, never raw.  Only
   runs whose remaining steps cost at least ``min_savings`` target runs are judged: stopping a
   cheap small-scale run saves next to nothing, while its curve is what teaches the model how
   small scales relate to the target (and a model misled about that would prune just the runs
   that could correct it).  Nor are runs at the anchor scale (the target, or the largest
   runnable scale) judged before :data:`~optuna_adso.fidelity_trust.MIN_ANCHOR_RUNS` of them are
   complete: until then the held-out test cannot say whether the small scales mislead the model,
   and on a misleading synthetic world the model pruned exactly the anchor runs that would have
   shown it (one seed in ten ended worse than uniform; with this guard none of four did).
3. **Seed replicates run to the end.**  A run the sampler scheduled to repeat a mixture with a
   new seed (:mod:`optuna_adso.seed_replicates`) is never judged: its final value is what
   measures the seed's luck, and a replicate of the incumbent with worse luck looks hopeless.
4. **Fallback for other samplers.**  A study that ADSOSampler never configured has no model: a run
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

import math
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

from optuna_adso import fidelity_trust, records
from optuna_adso.space import scale_specs_from_attrs, trial_scale, trial_weights
from optuna_adso.study_model import NoStudyConfig, StudyModel, incumbent_weights, settings_for_study
from optuna_adso.surrogate import SurrogateFitError, inputs_at, single_threaded
from optuna_adso.validation import as_in_range, as_int


class ADSOPruner(BasePruner):
    """Cost-aware early stopping of proxy runs, from the same surrogate as ADSOSampler.

    Args:
        min_steps: never prune before this step.
        min_reports: never prune before this many reports.
        improvement_probability: stop a run whose mixture's probability of beating the best known
            mixture at the target falls below this.  0 switches the model rule off (only planned
            stops and the fallback remain).
        check_growth: the model is consulted each time the step count has grown by this factor
            since its last check (a check costs a GP conditioning, ~0.1 s).
        fallback_percentile: without an ADSO model, stop a run worse than this percentile of the
            runs of its own scale at the same step (0 switches the fallback off).
        fallback_min_peers: the fallback needs at least this many same-scale runs at that step.
        min_savings: the model rule judges only runs whose remaining steps (to the planned stop)
            cost at least this many target runs.
        min_fraction: the model rule judges a run only once it has done this fraction of the
            target step.
        planned_stops: moved to :class:`~optuna_adso.ADSOSampler`, which plans the stops and
            stores the setting in the study; this pruner honours every planned stop.
    """

    honours_planned_stops = True
    """Runs stop at the sampler's planned step (the pretraining objective ends training there)."""

    def __init__(
        self,
        min_steps: int = 0,
        *,
        min_reports: int = 1,
        improvement_probability: float = 0.001,
        check_growth: float = 2.0,
        fallback_percentile: float = 25.0,
        fallback_min_peers: int = 4,
        min_savings: float = 0.05,
        min_fraction: float = 0.5,
        planned_stops: Any = None,
    ) -> None:
        if planned_stops is not None:
            raise ValueError(
                f"ADSOPruner(planned_stops={planned_stops!r}): planned stops are now a setting of the "
                "sampler, stored in the study: use ADSOSampler(..., planned_stops=True); ADSOPruner "
                "honours every stop the sampler plans"
            )
        self.min_steps = as_int(min_steps, "min_steps", 0)
        self.min_reports = as_int(min_reports, "min_reports", 0)
        self.fallback_min_peers = as_int(fallback_min_peers, "fallback_min_peers", 0)
        self.improvement_probability = as_in_range(
            improvement_probability, "improvement_probability", 0.0, 0.5, include_high=False)
        self.check_growth = as_in_range(check_growth, "check_growth", 1.0, math.inf, include_low=False)
        self.fallback_percentile = as_in_range(fallback_percentile, "fallback_percentile", 0.0, 100.0)
        self.min_savings = as_in_range(min_savings, "min_savings", 0.0, 1.0, unit="a fraction of a target run")
        self.min_fraction = as_in_range(
            min_fraction, "min_fraction", 0.0, 1.0, include_high=False, unit="a fraction of the target step")

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.min_steps or len(trial.intermediate_values) < self.min_reports:
            return False
        planned = records.planned_stop(trial.system_attrs)
        if planned is not None and step >= planned:
            return self._stop(study, trial, {"rule": "planned_stop", "step": step, "planned_stop_step": planned})
        if records.is_seed_replicate(trial):
            return False  # a seed replicate measures a seed's luck: stopped early, it measures nothing
        if self._before_model_judges(study, step) or not self._checkpoint(study, trial, step):
            return False
        reason = self._model_reason(study, trial, step)
        if reason is None:
            reason = self._fallback_reason(study, trial, step)
        return self._stop(study, trial, reason) if reason is not None else False

    # -- what a run has left to pay -----------------------------------------------------------
    @staticmethod
    def _run_end(model: StudyModel, trial: FrozenTrial) -> float:
        """The step a run ends at: its planned stop, or the target step."""
        planned = records.planned_stop(trial.system_attrs)
        return min(planned, model.target.step) if planned is not None else model.target.step

    def remaining_cost(self, model: StudyModel, trial: FrozenTrial, step: int) -> float | None:
        """What the rest of ``trial`` (to its planned stop, or the target step) would cost in the
        study's cost units; None when its scale is not known yet."""
        scale = trial_scale(trial, model.scale, model.target.run_scale)
        if scale is None:
            return None
        return model.settings.run_cost(scale, self._run_end(model, trial)) - model.settings.run_cost(scale, step)

    def _worth_judging(self, model: StudyModel, trial: FrozenTrial, step: int) -> bool:
        """Whether the rest of this run costs enough (``min_savings``) to be worth stopping.

        A run at its last step never is: stopping it then saves nothing and loses a complete run.
        """
        if step >= self._run_end(model, trial) or step < self.min_fraction * model.target.step:
            return False
        remaining = self.remaining_cost(model, trial, step)
        return remaining is not None and remaining >= self.min_savings * model.settings.target_cost

    # -- rules --------------------------------------------------------------------------------
    def _checkpoint(self, study: optuna.Study, trial: FrozenTrial, step: int) -> bool:
        """Whether this report is a checkpoint (the step grew by ``check_growth`` since the last)."""
        last = records.pruner_checked_step(trial)
        if last is not None and step < self.check_growth * last:
            return False
        records.write_pruner_checked_step(study, trial, step)
        return True

    def _model_reason(self, study: optuna.Study, trial: FrozenTrial, step: int) -> dict[str, Any] | None:
        """Prune reason from the surrogate, or None (keep running, or no model to ask)."""
        if self.improvement_probability <= 0.0:
            return None
        try:
            model = StudyModel.load(study, settings_for_study(study))
        except NoStudyConfig:
            return None
        if model is None or not self._worth_judging(model, trial, step):
            return None
        if model.at_anchor_scale(trial) and not fidelity_trust.can_decide(model.complete_anchor_runs()):
            # Until the held-out test has its anchor runs, nothing says whether the cheap scales
            # mislead the model, and a misled model prunes just the anchor runs that would tell.
            return None
        if not records.has_gp_state(model.trials):
            return None  # no fitted hyperparameters yet: too early to trust a model
        w = trial_weights(trial, model.spec)
        if w is None:
            return None
        rng = np.random.default_rng([model.own_number(trial.number), int(step)])  # imported runs: see own_number
        try:
            with single_threaded(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = model.fit_surrogate(rng, now=trial.number, maxiter=0)
                goal = model.anchor_z()  # the target, or the top runnable scale beyond it
                incumbents = incumbent_weights(fitted.surrogate, fitted.observations.weights, z=goal)
                mean, var = fitted.surrogate.predict(inputs_at(np.vstack([w[None], incumbents]), goal))
        except (SurrogateFitError, RuntimeError, ValueError):
            return None
        mean_t, sd_t = float(mean[0]), float(math.sqrt(max(var[0], 1e-18)))
        best = float(mean[1:].min()) if len(mean) > 1 else mean_t
        p_better = float(norm.cdf((best - mean_t) / sd_t))
        if p_better >= self.improvement_probability:
            return None
        sign = -1.0 if model.maximize else 1.0
        return {
            "rule": "hopeless_at_target",
            "step": step,
            "p_beats_best_at_target": p_better,
            "predicted_target_mean": sign * mean_t,
            "predicted_target_std": sd_t,
            "best_predicted_target_mean": sign * best,
            "threshold": self.improvement_probability,
        }

    def _fallback_reason(self, study: optuna.Study, trial: FrozenTrial, step: int) -> dict[str, Any] | None:
        """Without a model: compare with runs of the same scale at the same step only."""
        attrs = records.study_attrs(study)
        if self.fallback_percentile <= 0.0 or records.read_config(attrs) is not None:
            return None
        value = trial.intermediate_values.get(step)
        if value is None or not math.isfinite(value):
            return None
        own_scale = {s.name: trial.params.get(s.name) for s in scale_specs_from_attrs(attrs)}
        peers = []
        for other in records.all_trials(study):
            if other.number == trial.number or other.state == TrialState.WAITING:
                continue
            if any(other.params.get(name) != v for name, v in own_scale.items()):
                continue  # another scale: its raw values are not comparable
            v = other.intermediate_values.get(step)
            if v is not None and math.isfinite(v):
                peers.append(v)
        if len(peers) < self.fallback_min_peers:
            return None
        maximize = records.is_maximize(study)
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
        config = records.read_config(records.study_attrs(study))
        if config is None:
            return False
        try:
            target_step = float(config["target"]["step"])
        except (TypeError, ValueError, KeyError):
            return False
        return step < self.min_fraction * target_step

    @staticmethod
    def _stop(study: optuna.Study, trial: FrozenTrial, reason: dict[str, Any]) -> bool:
        records.write_prune_reason(study, trial, reason)
        return True
