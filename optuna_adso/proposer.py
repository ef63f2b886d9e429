"""The next (mixture, fidelity) for one trial, from a study model and its fitted surrogate.

Between the study model (what the study has seen) and the acquisition (arrays only): it
conditions the GP on the runs in flight, chooses the fidelities the acquisition may pick, and
keeps concurrent proposals apart (see :mod:`optuna_adso.claims`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from optuna.trial import FrozenTrial

from optuna_adso.acquisition import Acquisition, Fidelity, Proposal, optimize_acquisition
from optuna_adso.claims import Holdings
from optuna_adso.composite_acquisition import CompositeAcquisition
from optuna_adso import seed_replicates
from optuna_adso.fidelity_trust import UNEARNED_TARGET_SHARE, FidelityTrust
from optuna_adso.study_model import AnchorCheck, FittedSurrogate, StudyModel, incumbent_weights, measured_at_anchor
from optuna_adso.surrogate import MultiFidelitySurrogate, inputs_at


def target_share_floor(model: StudyModel, trust: FidelityTrust | None) -> float:
    """The least share of the effort that goes to the anchor (the top runnable scale).

    ``min_target_share`` while the cheap fidelities have earned their place (or there is no
    verdict yet); :data:`~optuna_adso.fidelity_trust.UNEARNED_TARGET_SHARE` once the held-out
    test says the anchor's own runs predict it better.
    """
    floor = model.settings.min_target_share
    if trust is not None and not trust.earned:
        floor = max(floor, UNEARNED_TARGET_SHARE)
    return floor


def allowed_fidelities(model: StudyModel, trust: FidelityTrust | None = None) -> list[Fidelity]:
    """The fidelities a proposal may use now.

    The share floor (:func:`target_share_floor`) is a floor under robustness: while less than that
    share of the effort went to the top runnable scale, ADSO runs only there, as target-only BO
    would.
    """
    fidelities = model.fidelities()
    settings = model.settings
    top = max(f.scale for f in fidelities)
    spent_top, spent_all = model.spending(top)
    if settings.method == "adso" and spent_top < target_share_floor(model, trust) * spent_all:
        fidelities = [f for f in fidelities if f.scale == top]
    return fidelities


def _believe(model: MultiFidelitySurrogate, x: np.ndarray) -> MultiFidelitySurrogate:
    """Kriging believer: condition on ``x`` returning the model's own mean there."""
    return model.condition_on(x, model.predict(x)[0])


class Proposer:
    """Best proposals for one trial; :meth:`exclude` a point another run holds and ask again."""

    def __init__(
        self,
        model: StudyModel,
        fitted: FittedSurrogate,
        held: Holdings,
        *,
        check: AnchorCheck | None,
        n_model_trials: int,
        n_candidates: int,
        rng: np.random.Generator,
        rng_of: Callable[[FrozenTrial], np.random.Generator],
        trial_number: int | None = None,
    ) -> None:
        """``check``: the anchor-only GP and the verdict on the cheap fidelities (ADSO's method;
        None for the paper's); ``n_model_trials``: model-based trials before this one (the
        paper's cost exponent decays with it); ``rng`` this trial's stream, ``rng_of`` another
        trial's; ``trial_number`` the trial proposed for (its own reports are left out)."""
        settings = model.settings
        self.model = model
        self.spec = model.spec
        self.rng = rng
        self.n_candidates = n_candidates
        self.taken = list(held.taken)
        adso = settings.method == "adso"
        self.goal_z = model.anchor_z() if adso else (0.0, 0.0)
        self.trust = check.trust if check is not None else None
        self.imported = fitted.imported
        self.fidelities = allowed_fidelities(model, self.trust)
        surrogate = fitted.surrogate
        self.basis = "multi-fidelity"
        pending = held.pending_inputs(fitted.observations, fitted.axes)
        tried = fitted.observations.weights
        if check is not None and check.hedged and all(f.scale == model.anchor_scale for f in self.fidelities):
            # The hedge: cheap fidelities have not earned their place, so the anchor's runs are
            # proposed as target-only BO would, from the anchor's own runs alone.
            surrogate, tried = check.anchor_only, check.anchor_weights
            self.basis = "anchor-only"
            pending = pending[np.all(np.isclose(pending[:, -2:], self.goal_z), axis=1)] if len(pending) else pending
        # A non-linear per-domain objective (the worst domain's excess): mixtures are scored on
        # the joint per-domain posterior, fidelities priced by the summed loss's GP.
        self.posterior = None
        self.reference_measured = True
        if adso and model.objective is not None and not model.objective.linear:
            fitted_sum, self.posterior = model.objective_posterior(
                rng, now=len(model.trials) if trial_number is None else trial_number,
                exclude_trial=trial_number, z=self.goal_z)
            surrogate, tried = fitted_sum.surrogate, fitted_sum.observations.weights
            self.basis = "per-domain"
            # whether cheap runs earn their place is judged on the smooth summed loss the
            # per-domain model rests on, not on the kinked objective's values
            self.trust = model.trust(fitted_sum)
            self.fidelities = allowed_fidelities(model, self.trust)
            self.reference_measured = measured_at_anchor(self.posterior.ref, fitted_sum, self.goal_z)
            pending = held.pending_inputs(fitted_sum.observations, fitted_sum.axes)
        if len(pending):
            surrogate = _believe(surrogate, pending)
        self.tried = tried
        # the composite acquisition ranks the tried mixtures on its own posterior
        self.incumbents = None if self.posterior is not None else incumbent_weights(surrogate, tried, z=self.goal_z)
        self.rule = settings.acquisition_rule
        self.exponent = 0.99**n_model_trials if settings.method == "paper" else 1.0
        self.overhead = settings.run_overhead if adso else 0.0
        self.surrogate = surrogate
        # Workers asking at the same moment see the same data.  Re-create what an earlier
        # in-flight trial is proposing (same data, its own random stream) and treat it as pending,
        # so that concurrent workers spread out rather than take turns at the same point.  Only
        # the latest one: each re-creation costs a whole proposal, and with many workers on few
        # cores that cost multiplies; claims keep proposals distinct anyway.
        for other in sorted(held.in_flight, key=lambda t: t.number)[-1:]:
            self.exclude(self._best(rng_of(other)))

    def _reference_run(self) -> Proposal | None:
        """A full run of the objective's reference mixture at the anchor, while none has run there.

        An excess over the reference is known only as well as the reference's own losses at the
        goal: unmeasured, their uncertainty enters every mixture's excess (on the paper simulator
        a tried mixture's worst excess stayed +-0.006 nats, most of the 0.008 that can be won)."""
        ref = None if self.posterior is None else self.posterior.ref
        if ref is None or self.reference_measured:
            return None
        pool = self.spec.pool
        if pool is not None and not np.any(np.abs(pool - ref).max(axis=1) <= 1e-7):
            return None  # proposals stay in the pool
        top = max(self.fidelities, key=lambda f: f.relative_cost)
        if any(scale == top.scale and np.abs(np.asarray(w) - ref).max() <= 1e-7 for w, scale in self.taken):
            return None
        return Proposal(ref.copy(), top, 0.0, 0.0, 0.0, basis="reference")

    def _best(self, stream: np.random.Generator) -> Proposal:
        reference = self._reference_run()
        if reference is not None:
            return reference
        if self.posterior is not None:
            acq: Acquisition = CompositeAcquisition(
                self.surrogate, self.posterior, self.fidelities, self.tried,
                run_overhead=self.overhead, goal_z=self.goal_z,
            )
        else:
            acq = Acquisition(
                self.surrogate, self.fidelities, self.incumbents, method=self.rule,
                cost_exponent=self.exponent, run_overhead=self.overhead, goal_z=self.goal_z,
            )
        return optimize_acquisition(acq, self.spec, stream, n_candidates=self.n_candidates, taken=self.taken)

    def seed_replicate(self) -> Proposal | None:
        """The incumbent again at the anchor, with a new seed, where a replicate is due (see
        :mod:`optuna_adso.seed_replicates`); None otherwise.  ADSO's method and the reported
        value only."""
        if self.posterior is not None or self.model.settings.objectives or self.model.objective is not None:
            return None

        def predicted(weights: np.ndarray) -> np.ndarray:
            return self.surrogate.predict(inputs_at(weights, self.goal_z))[0]

        run = seed_replicates.replicate_due(self.model, predicted)
        if run is None:
            return None
        anchor = [f for f in self.model.fidelities() if f.scale == self.model.anchor_scale]
        fidelity = max(anchor, key=lambda f: f.step)
        held = self.model.held_points[run.number]
        assert held is not None
        mean, var = self.surrogate.predict(inputs_at(held.weights[None], self.goal_z))
        return Proposal(held.weights.copy(), fidelity, 0.0, float(mean[0]), float(np.sqrt(max(var[0], 0.0))),
                        basis="seed-replicate", replicate_of=run.number)

    def best(self) -> Proposal:
        """The best (mixture, fidelity) no known run holds."""
        p = self._best(self.rng)
        if p.basis != "reference":
            p.basis = self.basis
        if self.trust is not None and self.trust.decided:
            p.cheap_gain = self.trust.cheap_gain
        if self.imported is not None:
            p.imported_used = self.imported.earned
            p.imported_gain = self.imported.gain if self.imported.decided else None
        return p

    def exclude(self, p: Proposal) -> None:
        """Another run holds ``p``: mark it taken and pending."""
        self.taken.append((p.weights, p.fidelity.scale))
        self.surrogate = _believe(self.surrogate, np.column_stack([p.weights[None], np.array([p.fidelity.z])]))
