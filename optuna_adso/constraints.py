"""Per-domain constraints on a recommendation: how likely a mixture meets them, and the choice.

Each :class:`~optuna_adso.objectives.DomainConstraint` is judged on the joint per-domain model
(:mod:`optuna_adso.domain_model`): ``at_most`` by the predicted loss of that domain, and
``not_worse_than`` by the predicted *difference* to the reference mixture, whose correlation with
the candidate (same runs, same kernel) makes it much surer than two separate intervals would.
The probability that every constraint holds is taken as the product of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from optuna_adso.domain_model import DomainModel
from optuna_adso.objectives import DomainConstraint, reference_weights
from optuna_adso.surrogate import inputs_at

FEASIBLE_PROBABILITY = 0.9
"""A mixture counts as feasible when every constraint holds with at least this probability."""


@dataclass(frozen=True)
class Feasibility:
    probability: np.ndarray  # (n,) that every constraint holds
    violation: np.ndarray  # (n,) the largest predicted violation (0 where every mean is inside)


def feasibility(
    model: DomainModel,
    weights: np.ndarray,
    constraints: Sequence[DomainConstraint],
    mixture_domains: Sequence[str],
    z: tuple[float, float] = (0.0, 0.0),
) -> Feasibility:
    """Probability that each row of ``weights`` meets every constraint at fidelity ``z``."""
    weights = np.atleast_2d(weights)
    x = inputs_at(weights, z)
    prob = np.ones(len(weights))
    violation = np.zeros(len(weights))
    mean = cov = None
    for c in constraints:
        d = model.names.index(c.name)
        if c.at_most is not None:
            if mean is None:
                mean, cov = model.predict(x)
            m, s = mean[:, d], np.sqrt(cov[:, d, d])
            prob *= norm.cdf((c.at_most - m) / s)
            violation = np.maximum(violation, m - c.at_most)
        else:
            ref = reference_weights(c.not_worse_than, mixture_domains, f"DomainConstraint({c.name!r}) not_worse_than")
            diff, dcov = model.predict_differences(x, inputs_at(np.tile(ref, (len(weights), 1)), z))
            m, s = diff[:, d], np.sqrt(dcov[:, d, d])
            prob *= norm.cdf(-m / s)
            violation = np.maximum(violation, m)
    return Feasibility(prob, np.maximum(violation, 0.0))
