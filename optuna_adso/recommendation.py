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
from dataclasses import dataclass, field

import numpy as np
import optuna

from optuna_adso.acquisition import minimize_target_mean
from optuna_adso.pool import nearest_member
from optuna_adso.space import trial_weights
from optuna_adso.study_model import SettingsSource, StudyModel, settings_for_study
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


def recommend(study: optuna.Study, *, sampler: SettingsSource | None = None, seed: int = 0) -> Recommendation:
    """The mixture with the best predicted value at the target fidelity, at any point of a study.

    ``sampler``: the study's :class:`~optuna_adso.ADSOSampler` when the study was not loaded
    with it and its cost model is not stored (a user callable); otherwise read from the study.
    """
    with single_threaded():
        return _recommend(study, sampler, seed)


def _recommend(study: optuna.Study, sampler: SettingsSource | None, seed: int) -> Recommendation:
    settings = settings_for_study(study, sampler)
    model = StudyModel.load(study, settings)
    if model is None:
        raise ValueError("the study has no mixture yet: run at least one trial that calls suggest_mixture")
    target = settings.target.as_dict()
    spent = model.flops_spent()
    n_trials = len(model.trials)
    rng = np.random.default_rng([seed, n_trials])
    sign = -1.0 if model.maximize else 1.0
    try:
        fitted = model.fit_surrogate(rng, now=n_trials, maxiter=0)
    except SurrogateFitError as exc:
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
    obs = fitted.observations
    surrogate, tried, notes = fitted.surrogate, obs.weights, []
    goal = (0.0, 0.0)
    if settings.method == "adso":
        goal = model.anchor_z()
        check = model.check_anchor(fitted, now=n_trials, maxiter=0)
        if check.trust.decided:
            notes.append(check.trust.describe())
        if check.hedged:
            surrogate, tried = check.anchor_only, check.anchor_weights
        if not model.target_runnable:
            notes.append(
                f"the target lies {settings.target.run_scale / model.anchor_scale:.3g}x beyond the largest "
                f"runnable scale ({model.anchor_scale:g}): this is the best mixture there, whose ranking "
                "is assumed to hold at the target; mean and std are the model's extrapolation"
            )
    anchors = np.unique(np.round(tried, 10), axis=0)
    w, mean, std = minimize_target_mean(surrogate, model.spec, rng, anchors, z=goal)
    w, mean, std, kept = keep_tried_unless_sure(surrogate, w, anchors, z=goal)
    if kept is not None:
        notes.append(kept)
    if goal != (0.0, 0.0):
        at_target_mean, at_target_var = fitted.surrogate.predict_target(w[None])
        mean, std = float(at_target_mean[0]), math.sqrt(float(at_target_var[0]))
    return Recommendation(
        mixture={d: float(x) for d, x in zip(model.spec.domains, w)},
        mean=sign * mean,
        std=std,
        flops_spent=spent,
        target=target,
        n_trials=n_trials,
        n_observations=len(obs),
        notes=notes,
    )
