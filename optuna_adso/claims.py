"""Claims: which (mixture, scale) each run holds, so that concurrent workers never share one.

A proposal is written to its trial (a claim) before the trial writes its parameters.  Workers
asking at the same moment see the same data; what keeps them apart is:

- every run in flight or done is *taken*: re-running one would pay a whole run for at most the
  tail of a curve already known;
- a run that is claimed but has not reported yet is *pending*: the model believes it returns its
  predicted mean (kriging believer), so the next proposal looks elsewhere;
- after writing its claim, a worker looks again (:func:`taken_by_another`) and yields if another
  run holds the same point.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_adso import records
from optuna_adso.acquisition import Proposal
from optuna_adso.space import Observations
from optuna_adso.study_model import HOLDING_STATES, StudyModel, held_point
from optuna_adso.surrogate import FidelityAxes

_logger = logging.getLogger(__name__)


@dataclass
class Holdings:
    """What the other runs of a study hold, as one proposing trial sees them."""

    taken: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (weights, scale)
    claimed: list[tuple[np.ndarray, float, float]] = field(default_factory=list)  # (w, scale, stop)
    in_flight: list[FrozenTrial] = field(default_factory=list)  # running, still proposing

    def pending_inputs(self, obs: Observations, axes: FidelityAxes) -> np.ndarray:
        """Model inputs of every run that will report but has not: the observations' running
        trials first, then the claims whose parameters are not written yet."""
        rows = [np.column_stack([obs.pending_weights, axes.z(obs.pending_log_scale, obs.pending_log_step)])]
        for w, scale, stop in self.claimed:
            z = axes.z([math.log10(scale)], [math.log10(stop)])
            rows.append(np.column_stack([w[None], z]))
        return np.vstack(rows)


def holdings(model: StudyModel, trial: FrozenTrial) -> Holdings:
    """The (mixture, scale) of every other run in flight or done, the claims not yet written, and
    the earlier trials that are still computing their proposal right now."""
    out = Holdings()
    for other in model.trials:
        if other.number == trial.number or other.state not in HOLDING_STATES:
            continue
        running = other.state == TrialState.RUNNING
        held = model.held_points[other.number]
        if held is None:
            if running and other.number < trial.number:
                out.in_flight.append(other)
            continue
        out.taken.append((held.weights, held.scale))
        if running and held.claimed_only:
            out.claimed.append((held.weights, held.scale, held.stop_step))
    return out


def _rounded(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def record_claim(study: optuna.Study, trial: FrozenTrial, p: Proposal, target_step: float, seconds: float) -> None:
    """Write the proposal and its planned stop to the trial, where every worker sees them.

    A full run carries no stop (None), so that it completes; always written, so a plan made
    before the scale was declared (first trial) is replaced.
    """
    stop = p.fidelity.step if p.fidelity.step < target_step else None
    record = records.ProposalRecord(
        scale=p.fidelity.scale,
        stop_step=p.fidelity.step,
        relative_cost=round(p.fidelity.relative_cost, 6),
        score=p.score,
        target_mean=p.target_mean,
        target_std=p.target_std,
        seconds=round(seconds, 4),
        weights=[round(float(x), 8) for x in p.weights],
        basis=p.basis,
        cheap_gain=_rounded(p.cheap_gain),
        imported_gain=_rounded(p.imported_gain),
        imported_used=p.imported_used,
    )
    records.write_proposal(study, trial, record, stop)
    _logger.debug("trial %d: %s", trial.number, record)


def taken_by_another(study: optuna.Study, model: StudyModel, trial: FrozenTrial, p: Proposal) -> bool:
    """Whether a run this proposal did not see finish holds the same (mixture, scale) as ``p``.

    That is every other trial but those already finished when ``model`` was read: a trial that
    was running (or not yet created) then may have claimed, run and even finished the same point
    while this proposal was being computed.  Two workers that claim the same point at the same
    moment each write, then read: by the storage's ordering at least one sees the other's claim.
    """
    seen_finished = {t.number for t in model.trials if t.state.is_finished()}
    for other in records.all_trials(study):
        if other.number == trial.number or other.number in seen_finished:
            continue
        if other.state == TrialState.WAITING:
            continue
        held = held_point(other, model.spec, model.target)
        if held is None:
            continue
        if held.scale == p.fidelity.scale and np.allclose(held.weights, p.weights, atol=1e-7):  # attrs keep 8 decimals
            return True
    return False
