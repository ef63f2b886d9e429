"""The predicted trade-off between objectives at the target, from one study's per-domain runs.

Every run that reports per-domain values already measures every objective, so the front can be
asked of any study whose runs report them: a multi-objective one run under
``ADSOSampler(objective=[...])``, or a single-objective one after the fact.  Mixtures are scored
on each objective by the joint per-domain model, and those that no other mixture beats on every
objective (by predicted mean) form the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from optuna_adso.acquisition import candidate_mixtures
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.objectives import MeanLoss, MixtureObjective, parse_objective
from optuna_adso.study_model import SettingsSource, StudyModel
from optuna_adso.surrogate import SurrogateFitError, single_threaded


@dataclass(frozen=True)
class FrontPoint:
    """A mixture on the predicted front: each objective's predicted mean and std at the target."""

    mixture: dict[str, float]
    means: tuple[float, ...]
    stds: tuple[float, ...]


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``values`` (n, m) that no other row beats on every column (minimized)."""
    order = np.lexsort(values.T[::-1])
    keep: list[int] = []
    for i in order:
        v = values[i]
        if not any(np.all(values[j] <= v) and np.any(values[j] < v) for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep, key=lambda i: tuple(values[i])), dtype=int)


def pareto_front(
    study: optuna.Study,
    objectives: Sequence[MixtureObjective | str] | None = None,
    *,
    sampler: SettingsSource | None = None,
    n_candidates: int = 2048,
    seed: int = 0,
) -> list[FrontPoint]:
    """The mixtures predicted Pareto-optimal at the target for ``objectives`` (at least two), with
    their predicted values and uncertainty, sorted by the first objective.  ``objectives`` defaults
    to a multi-objective study's own (``ADSOSampler(objective=[...])``)."""
    if objectives is None:
        objectives = list(StudyModel.of(study, sampler).settings.objectives)
    parsed = [parse_objective(o) for o in objectives]
    if len(parsed) < 2 or any(o is None for o in parsed):
        raise ValueError(f"objectives must list at least two per-domain objectives, got {list(objectives)!r}")
    model = StudyModel.of(study, sampler).with_objective(MeanLoss())
    names = model.reported_domains()
    for o in parsed:
        o.validate(names, model.spec.domains)
    n_trials = len(model.trials)
    rng = np.random.default_rng([seed, model.n_own_trials])
    with single_threaded():
        try:
            fitted = model.fit_surrogate(rng, now=n_trials, maxiter=0)
        except SurrogateFitError as exc:
            raise ValueError(f"the study has no model to predict with yet ({exc})") from None
        domain_model = model.domain_model(fitted, refit_kernel=True)
        tried = np.unique(np.round(fitted.observations.weights, 10), axis=0)
        cands = np.vstack([tried, candidate_mixtures(rng, model.spec, n_candidates, anchors=tried)])
        stats = [ObjectivePosterior(domain_model, o, model.spec.domains, seed=seed).moments(cands) for o in parsed]
    means = np.column_stack([m for m, _ in stats])
    stds = np.column_stack([s for _, s in stats])
    return [
        FrontPoint(dict(zip(model.spec.domains, map(float, cands[i]))), tuple(map(float, means[i])),
                   tuple(map(float, stds[i])))
        for i in non_dominated(means)
    ]
