"""The answer a study gives: the mixture predicted best AT THE TARGET fidelity.

Never "the best trial": trials ran at mixed scales and step counts, so their raw values are not
comparable.  The surrogate is conditioned on every observation with the last fitted
hyperparameters (no refit: milliseconds), and its posterior mean (plus one std) at the target
is minimized over the simplex.

Two hedges keep it from being reckless.  While the cheap fidelities have not earned their place
(:mod:`optuna_adso.fidelity_trust`), the model is the anchor's own runs alone, as target-only BO
would have it.  When the target cannot be run, the answer is the best mixture at the largest
runnable scale (what transferring a proxy's optimum does), not an extrapolation nobody checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna

from optuna_adso import seed_replicates
from optuna_adso.acquisition import candidate_mixtures, minimize_target_mean
from optuna_adso.constraints import FEASIBLE_PROBABILITY, feasibility
from optuna_adso.domain_model import DomainModel
from optuna_adso.domain_observations import NO_DOMAIN_VALUES
from optuna_adso.extrapolation import ExtrapolationCheck, check_extrapolation
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.objectives import DomainConstraint, MeanLoss, MixtureObjective
from optuna_adso.pool import nearest_member
from optuna_adso.prediction import normal_interval
from optuna_adso.space import trial_weights
from optuna_adso.study_model import FittedSurrogate, SettingsSource, StudyModel, measured_at_anchor, settings_for_study
from optuna_adso.surrogate import MultiFidelitySurrogate, SurrogateFitError, inputs_at, single_threaded


@dataclass
class Recommendation:
    """The recommended mixture with its predicted value at the target (mean and std)."""

    mixture: dict[str, float]
    mean: float
    std: float
    flops_spent: float
    target: dict[str, float]
    n_trials: int
    n_observations: int
    notes: list[str] = field(default_factory=list)
    objective: str = "value"  # what mean and std are of: the reported value, or an objective's key
    domains: dict[str, tuple[float, float]] = field(default_factory=dict)  # per-domain (mean, std)
    feasible_probability: float | None = None  # that every constraint holds (None: no constraints)
    noise_std: float = math.nan  # how far one run's value scatters around the expected value
    beyond_data: float = 1.0  # target scale / largest runnable scale (1: the target is run)
    extrapolation: ExtrapolationCheck | None = None  # leave-top-scale-out, when the target is not run

    def interval(self, level: float = 0.9, *, new_run: bool = False) -> tuple[float, float]:
        """The central ``level`` interval for the expected value at the target, or (``new_run``)
        for what one training run of the mixture will report there."""
        return normal_interval(self.mean, self.std, self.noise_std if new_run else 0.0, level)

    def __str__(self) -> str:
        weights = ", ".join(f"{d}={w:.3f}" for d, w in self.mixture.items())
        return (
            f"recommended mixture at {self.target}: {weights}\n"
            f"predicted value {self.mean:.4f} +- {self.std:.4f} after {self.n_trials} trials, "
            f"{self.flops_spent:.3g} cost units spent"
        )


def flops_spent(study: optuna.Study, sampler: SettingsSource | None = None) -> float:
    """Total cost of every run so far: each paid up to the last step it reported."""
    model = StudyModel.load(study, settings_for_study(study, sampler))
    return 0.0 if model is None else model.flops_spent()


# How many standard deviations (of the predicted difference) an untried mixture must beat the
# best tried one by before it is recommended instead.  The untried one is the minimum over
# thousands of candidates, so its predicted advantage is biased in its favour (the winner's
# curse); one std let a target-only GP of ten noiseless runs trade a run at 0.45 of the gap for
# an extrapolation at 0.83 that it put 1.4 std ahead (synth-18, seed 2).
SURE_MARGIN = 2.0


def keep_tried_unless_sure(
    surrogate: MultiFidelitySurrogate,
    w: np.ndarray,
    tried: np.ndarray,
    *,
    z: tuple[float, float] = (0.0, 0.0),
    margin: float = SURE_MARGIN,
) -> tuple[np.ndarray, float, float, str | None]:
    """``w`` if it was tried, or if the model puts it ``margin`` std of the difference ahead of
    the best tried mixture (lowest mean + std at ``z``); otherwise that tried mixture.

    Returns (weights, mean, std, note): the note says why a tried mixture was kept, else None.
    """
    mean_w, var_w = surrogate.predict(inputs_at(w[None], z))
    if len(tried) == 0 or np.min(np.abs(tried - w).sum(axis=1)) < 1e-6:
        return w, float(mean_w[0]), math.sqrt(float(var_w[0])), None
    mean_t, var_t = surrogate.predict(inputs_at(tried, z))
    best = tried[int(np.argmin(mean_t + np.sqrt(var_t)))]
    m_w, m_b, v_w, v_b, cov = surrogate.predict_pairs(inputs_at(w[None], z), inputs_at(best[None], z))
    sd_diff = math.sqrt(max(float(v_w[0] + v_b[0] - 2.0 * cov[0]), 1e-24))
    lead = float(m_b[0] - m_w[0]) / sd_diff
    if lead >= margin:
        return w, float(m_w[0]), math.sqrt(float(v_w[0])), None
    note = (
        f"kept the best tried mixture: the untried optimum of the model was only {lead:.2f} std "
        f"ahead of it (at least {margin:g} needed)"
    )
    return best, float(m_b[0]), math.sqrt(float(v_b[0])), note


def recommend(
    study: optuna.Study,
    *,
    sampler: SettingsSource | None = None,
    seed: int = 0,
    objective: MixtureObjective | str | None = None,
    constraints: Sequence[DomainConstraint] = (),
) -> Recommendation:
    """The mixture with the best predicted value at the target fidelity, at any point of a study.

    ``sampler``: the study's :class:`~optuna_adso.ADSOSampler` when the study was not loaded
    with it and its cost model is not stored (a user callable); otherwise read from the study.
    ``objective``: answer for another objective than the study's (``"value"``: the reported
    value; ``MeanLoss()``, ``DomainLoss(name)``, ``WorstExcessLoss("uniform")``, ...), from the
    same runs' per-domain values, with no new training.  ``constraints``: per-domain
    :class:`~optuna_adso.objectives.DomainConstraint` s the recommendation must meet with
    probability at least :data:`~optuna_adso.constraints.FEASIBLE_PROBABILITY`; when no
    candidate does, the one likeliest to is returned with a note and its probability.
    """
    with single_threaded():
        return _recommend(study, sampler, seed, objective, list(constraints))


def _recommend(
    study: optuna.Study, sampler: SettingsSource | None, seed: int,
    objective: MixtureObjective | str | None = None, constraints: list[DomainConstraint] | None = None,
) -> Recommendation:
    settings = settings_for_study(study, sampler)
    model = StudyModel.load(study, settings)
    if model is None:
        raise ValueError("the study has no mixture yet: run at least one trial that calls suggest_mixture")
    if objective is not None:
        model = model.with_objective(objective)
    elif model.settings.objectives:
        keys = ", ".join(o.key for o in model.settings.objectives)
        raise ValueError(
            f"this study has several objectives ({keys}): ask optuna_adso.pareto_front(study) for the predicted "
            "front, or recommend(study, objective=...) for one of them"
        )
    constraints = constraints or []
    for i, c in enumerate(constraints):
        if not isinstance(c, DomainConstraint):
            raise ValueError(f"constraints[{i}] must be an optuna_adso.DomainConstraint, got {c!r}")
        c.validate(model.reported_domains(), model.spec.domains)
    target = settings.target.as_dict()
    spent = model.flops_spent()
    n_trials = len(model.trials)
    rng = np.random.default_rng([seed, model.n_own_trials])  # imported runs shift no stream
    sign = -1.0 if model.maximize else 1.0
    sampled = model.objective is not None and not model.objective.linear
    # A non-linear objective is answered by sampling the joint per-domain model, fitted with the
    # kernel of the mean loss; any other by the study's GP on the objective's values.
    fit_model = model.with_objective(MeanLoss()) if sampled else model
    try:
        fitted = fit_model.fit_surrogate(rng, now=n_trials, maxiter=0)
    except SurrogateFitError as exc:
        return _no_model_yet(model, spent, target, n_trials, exc)
    obs = fitted.observations
    surrogate, tried, notes = fitted.surrogate, obs.weights, []
    goal = (0.0, 0.0)
    calibration = 1.0  # how much the held-out anchor runs say the model's std must be widened
    answering = fitted.surrogate  # the GP whose noise is one new run's scatter
    if settings.method == "adso":
        goal = model.anchor_z()
        check = fit_model.check_anchor(fitted, now=n_trials, maxiter=0)
        hedged = check.hedged and not sampled
        calibration = check.anchor_only_inflation() if hedged else check.trust.inflation(anchor_only=False)
        if check.trust.decided:
            notes.append(check.trust.describe())
        if hedged:
            surrogate, tried = check.anchor_only, check.anchor_weights
            answering = check.anchor_only
        if not model.target_runnable:
            notes.append(
                f"the target lies {settings.target.run_scale / model.anchor_scale:.3g}x beyond the largest "
                f"runnable scale ({model.anchor_scale:g}): this is the best mixture there, whose ranking "
                "is assumed to hold at the target; mean and std are the model's extrapolation"
            )
    anchors = np.unique(np.round(tried, 10), axis=0)
    # The per-domain kernel is re-fitted (a second or two) only where the answer rests on it.
    domain_model = _domain_model(fit_model, fitted, refit=sampled or bool(constraints))
    if sampled:
        if domain_model is None:
            raise ValueError(f"{model.objective!r} needs per-domain values: {NO_DOMAIN_VALUES}")
        posterior = ObjectivePosterior(domain_model, model.objective, model.spec.domains, goal, seed=seed)
        w, mean, std, kept = _minimize_sampled(posterior, model, rng, anchors)
        if not measured_at_anchor(posterior.ref, fitted, goal):
            notes.append(
                "the reference mixture has no run at the top runnable scale: every excess is a difference to "
                "its predicted losses there, so few mixtures can be shown to beat it; run it once there "
                "(ADSOSampler does when it optimizes this objective)"
            )
    else:
        w, mean, std = minimize_target_mean(surrogate, model.spec, rng, anchors, z=goal)
        w, mean, std, kept = keep_tried_unless_sure(surrogate, w, anchors, z=goal)
    if kept is not None:
        notes.append(kept)
    feasible = None
    if constraints:
        if domain_model is None:
            raise ValueError(f"constraints need per-domain values: {NO_DOMAIN_VALUES}")
        if sampled:
            score = posterior.moments
        else:
            def score(ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                m, v = surrogate.predict(inputs_at(ws, goal))
                return m, np.sqrt(v)
        w, mean, std, feasible, note = _meet_constraints(score, domain_model, model, constraints, w, anchors, rng, goal)
        if note:
            notes.append(note)
    extrapolation = None
    if goal != (0.0, 0.0):
        # Beyond the runs, the GP with a power law with a floor as its mean states the value
        # (:meth:`StudyModel.fit_stated`); the search's straight line chose the mixture.
        stated = fitted if sampled else _stated(fit_model, fitted, n_trials, notes)
        extrapolation = check_extrapolation(fit_model, stated)
        if extrapolation is not None:
            notes.append(extrapolation.describe())
        if sampled:
            at_target = ObjectivePosterior(domain_model, model.objective, model.spec.domains, seed=seed)
            m_t, s_t = at_target.moments(w[None])
            mean, std = float(m_t[0]), float(s_t[0])
        else:
            at_target_mean, at_target_var = stated.surrogate.predict_target(w[None])
            answering = stated.surrogate  # beyond the runs the stating GP answers, as predict's does
            calibration = check.trust.inflation(anchor_only=False)
            mean, std = float(at_target_mean[0]), math.sqrt(float(at_target_var[0]))
        if extrapolation is not None:
            calibration = max(calibration, extrapolation.inflation)
    if calibration > 1.0:
        std *= calibration
        notes.append(f"the std is widened {calibration:.2f}x: the model's held-out errors at the top runnable "
                     "scale's runs were that much larger than it claimed")
    noise_std = (float(posterior.noise_std(w[None])[0]) if sampled
                 else math.sqrt(max(answering.noise_variance, 0.0)))
    luck = None if sampled else seed_replicates.shared_luck(model)
    if luck is not None:  # runs that share one seed: their luck is in every value the GP saw
        var, noise_std = luck.added_to(std * std, noise_std)
        std = math.sqrt(var)
    note = seed_replicates.luck_note(model, luck)
    if note is not None:
        notes.append(note)
    return Recommendation(
        mixture={d: float(x) for d, x in zip(model.spec.domains, w)},
        mean=sign * mean,
        std=std,
        flops_spent=spent,
        target=target,
        n_trials=n_trials,
        n_observations=len(obs),
        notes=notes,
        objective="value" if model.objective is None else model.objective.key,
        domains=_domain_predictions(domain_model, w),
        feasible_probability=feasible,
        noise_std=noise_std,
        beyond_data=settings.target.run_scale / model.anchor_scale,
        extrapolation=extrapolation,
    )


def _stated(model: StudyModel, fitted: FittedSurrogate, now: int, notes: list[str]) -> FittedSurrogate:
    """The GP that states values beyond the runs, or ``fitted`` (with a note) where it cannot be fitted."""
    stated, note = model.stated_or_search(fitted, now=now)
    if note is not None:
        notes.append(note)
    return stated


def _no_model_yet(model: StudyModel, spent: float, target: dict[str, float], n_trials: int,
                  exc: Exception) -> Recommendation:
    tried = [trial_weights(t, model.spec) for t in model.trials]
    tried = [w for w in tried if w is not None]
    w = tried[-1] if tried else np.full(model.spec.k, 1.0 / model.spec.k)
    pool = model.spec.pool
    if pool is not None:  # the pool member nearest to it: a recommendation is always buildable
        w = pool[nearest_member(pool, w)[0]]
    return Recommendation(
        dict(zip(model.spec.domains, map(float, w))), math.nan, math.nan, spent, target,
        n_trials, 0, [f"no model yet ({exc}); returning the latest tried mixture"],
    )


def _minimize_sampled(
    posterior: ObjectivePosterior, model: StudyModel, rng: np.random.Generator, anchors: np.ndarray
) -> tuple[np.ndarray, float, float, str | None]:
    """The mixture of least ``mean + std`` of a sampled objective; the best tried one unless the
    winner is SURE_MARGIN std of the (jointly sampled) difference ahead of it."""
    cands = np.vstack([anchors, candidate_mixtures(rng, model.spec, 2048, anchors=anchors)])
    mean, std = posterior.moments(cands)
    score = mean + std
    i = int(np.argmin(score))
    if i < len(anchors) or len(anchors) == 0:
        return cands[i], float(mean[i]), float(std[i]), None
    b = int(np.argmin(score[: len(anchors)]))
    lead = posterior.lead(cands[i], cands[b])
    if lead >= SURE_MARGIN:
        return cands[i], float(mean[i]), float(std[i]), None
    note = (
        f"kept the best tried mixture: the untried optimum of the model was only {lead:.2f} std "
        f"ahead of it (at least {SURE_MARGIN:g} needed)"
    )
    return cands[b], float(mean[b]), float(std[b]), note


def _domain_model(model: StudyModel, fitted, refit: bool = False) -> DomainModel | None:
    """The joint per-domain model, when the runs reported per-domain values."""
    if not model.reported_domains():
        return None
    try:
        return model.domain_model(fitted, refit_kernel=refit)
    except SurrogateFitError:
        return None


def _domain_predictions(domain_model: DomainModel | None, w: np.ndarray) -> dict[str, tuple[float, float]]:
    return {} if domain_model is None else domain_model.summaries(inputs_at(w[None], (0.0, 0.0)))[0]


def _meet_constraints(
    score_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    domain_model: DomainModel,
    model: StudyModel,
    constraints: list[DomainConstraint],
    w: np.ndarray,
    anchors: np.ndarray,
    rng: np.random.Generator,
    z: tuple[float, float],
) -> tuple[np.ndarray, float, float, float, str | None]:
    """The best mixture (lowest mean + std) that meets every constraint with probability at
    least FEASIBLE_PROBABILITY; the likeliest to meet them when none does."""
    cands = np.vstack([w[None], candidate_mixtures(rng, model.spec, 2048, anchors=anchors)])
    feas = feasibility(domain_model, cands, constraints, model.spec.domains, z)
    mean, std = score_of(cands)
    ok = feas.probability >= FEASIBLE_PROBABILITY
    what = "; ".join(c.describe() for c in constraints)
    if ok[0]:
        i, note = 0, None
    elif ok.any():
        score = np.where(ok, mean + std, np.inf)
        i = int(np.argmin(score))
        note = f"constrained ({what}): the unconstrained choice met them with probability {feas.probability[0]:.2f}"
    else:
        i = int(np.lexsort((feas.violation, -feas.probability))[0])
        note = (
            f"INFEASIBLE: no candidate meets ({what}) with probability {FEASIBLE_PROBABILITY:g}; this is "
            f"the likeliest (probability {feas.probability[i]:.2f}, predicted violation {feas.violation[i]:.4g})"
        )
    return cands[i], float(mean[i]), float(std[i]), float(feas.probability[i]), note
