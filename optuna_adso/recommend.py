"""The answer a study gives: the mixture predicted best AT THE TARGET fidelity.

Never "the best trial": trials ran at mixed scales and step counts, so their raw values are not
comparable.  The surrogate is conditioned on every observation with the last fitted
hyperparameters (no refit: milliseconds), and its posterior mean at the target is minimized
over the simplex.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import optuna

from optuna_adso.acquisition import minimize_target_mean
from optuna_adso.sampler import CONFIG_ATTR, ADSOSampler, read_study
from optuna_adso.space import trial_weights
from optuna_adso.surrogate import SurrogateFitError, single_threaded


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


def sampler_for_study(study: optuna.Study, sampler: ADSOSampler | None = None) -> ADSOSampler:
    """The study's ADSOSampler: the one given, the study's own, or one rebuilt from storage.

    ADSOSampler writes its target and costs to the study's system attributes, so a process that
    never constructed a sampler (a dashboard, the ``adso`` command, a pruner under another
    sampler) still answers for the same target.
    """
    if sampler is not None:
        return sampler
    if isinstance(study.sampler, ADSOSampler):
        return study.sampler
    raw = study._storage.get_study_system_attrs(study._study_id).get(CONFIG_ATTR)
    if raw is None:
        raise ValueError(
            "recommend() needs the study's target: pass sampler=ADSOSampler(target=..., cost=...) "
            "or load the study with that sampler"
        )
    cfg = json.loads(raw)
    target = {"step": cfg["target"]["step"]}
    if cfg["target"]["scale_param"] is not None:
        target[cfg["target"]["scale_param"]] = cfg["target"]["scale"]
    table = {float(k): v for k, v in cfg["cost_at_target_step"].items()}
    step = cfg["target"]["step"]

    def stored_cost(params, s):  # the declared cost, assumed linear in steps
        scale = next(iter(params.values()), 1.0)
        return table.get(float(scale), math.nan) * s / step

    return ADSOSampler(target, stored_cost, method=cfg.get("method", "adso"), seed=0)


def flops_spent(study: optuna.Study, sampler: ADSOSampler) -> float:
    """Total cost of every run so far: each paid up to the last step it reported."""
    data = read_study(study)
    if data is None:
        return 0.0
    return sum(sampler.trial_cost(t, data)[1] for t in data.trials)


def recommend(study: optuna.Study, *, sampler: ADSOSampler | None = None, seed: int = 0) -> Recommendation:
    """The mixture with the best predicted value at the target fidelity, at any point of a study."""
    with single_threaded():
        return _recommend(study, sampler, seed)


def _recommend(study: optuna.Study, sampler: ADSOSampler | None, seed: int) -> Recommendation:
    sampler = sampler_for_study(study, sampler)
    data = read_study(study)
    if data is None:
        raise ValueError("the study has no mixture yet: run at least one trial that calls suggest_mixture")
    target = {"step": sampler.target.step}
    if sampler.target.scale_param is not None:
        target[sampler.target.scale_param] = sampler.target.scale
    spent = flops_spent(study, sampler)
    n_trials = len(data.trials)
    rng = np.random.default_rng([seed, n_trials])
    sign = -1.0 if data.maximize else 1.0
    try:
        surrogate, obs, _ = sampler.fit_surrogate(data, rng, now=n_trials, maxiter=0)
    except SurrogateFitError as exc:
        tried = [trial_weights(t, data.spec) for t in data.trials]
        tried = [w for w in tried if w is not None]
        w = tried[-1] if tried else np.full(data.spec.k, 1.0 / data.spec.k)
        return Recommendation(
            dict(zip(data.spec.domains, map(float, w))), math.nan, math.nan, spent, target,
            n_trials, 0, [f"no model yet ({exc}); returning the latest tried mixture"],
        )
    anchors = np.unique(np.round(obs.weights, 10), axis=0)
    w, mean, std = minimize_target_mean(surrogate, data.spec, rng, anchors)
    return Recommendation(
        mixture={d: float(x) for d, x in zip(data.spec.domains, w)},
        mean=sign * mean,
        std=std,
        flops_spent=spent,
        target=target,
        n_trials=n_trials,
        n_observations=len(obs),
    )
