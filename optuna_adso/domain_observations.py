"""The study's observations re-expressed as an objective of the per-domain losses.

A run that reported per-domain values can be scored by any :mod:`~optuna_adso.objectives`
objective after the fact: this module turns the rows of :class:`~optuna_adso.space.Observations`
that carry every needed domain into rows whose value is that objective (rows without them are
left out: a value the objective cannot be computed from says nothing about it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from optuna_adso.objectives import MixtureObjective
from optuna_adso.space import Observations

NO_DOMAIN_VALUES = (
    "the study's runs report no per-domain values; report them with "
    "optuna_adso.report(trial, value, step, domains={name: loss}) (PretrainObjective does)"
)


def domain_names(obs: Observations) -> list[str]:
    """Every evaluation domain any row reports, in the order first seen."""
    seen: dict[str, None] = {}
    for dv in obs.domain_values:
        if dv:
            seen.update(dict.fromkeys(dv))
    return list(seen)


def domain_matrix(obs: Observations, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows that report every domain in ``names`` with a finite value, their losses (n, D))."""
    rows, values = [], []
    for i, dv in enumerate(obs.domain_values):
        if not dv:
            continue
        vals = [dv.get(d, math.nan) for d in names]
        if all(math.isfinite(v) for v in vals):
            rows.append(i)
            values.append(vals)
    return np.array(rows, dtype=int), np.array(values, dtype=float).reshape(-1, len(names))


def subset(obs: Observations, rows: np.ndarray, values: np.ndarray) -> Observations:
    """``obs`` restricted to ``rows``, with ``values`` as the values."""
    return replace(
        obs,
        weights=obs.weights[rows],
        log_scale=obs.log_scale[rows],
        log_step=obs.log_step[rows],
        values=np.asarray(values, dtype=float),
        trial_numbers=obs.trial_numbers[rows],
        domain_values=[obs.domain_values[i] for i in rows],
    )


def objective_observations(
    obs: Observations,
    objective: MixtureObjective,
    mixture_domains: Sequence[str],
    reference_losses: Callable[[Observations, list[str]], np.ndarray] | None = None,
) -> Observations:
    """``obs`` with each value replaced by ``objective`` of that report's per-domain losses.

    ``reference_losses(rows, names)``: the reference mixture's losses (n, D) at each row's
    fidelity, for objectives measured against one; the caller predicts them (the reference is
    rarely run at every scale and step)."""
    names = domain_names(obs)
    if not names:
        raise ValueError(NO_DOMAIN_VALUES)
    objective.validate(names, mixture_domains)
    used = objective.domains_used(names)
    rows, losses = domain_matrix(obs, used)
    kept = subset(obs, rows, np.zeros(len(rows)))
    reference = None
    if objective.reference is not None and len(rows):
        if reference_losses is None:
            raise ValueError(f"{objective!r} needs the reference mixture's losses")
        reference = reference_losses(kept, used)
    kept.values = objective.evaluate(losses, reference, used) if len(rows) else np.zeros(0)
    return kept
