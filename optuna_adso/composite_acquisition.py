"""The cost-aware acquisition for an objective that is a non-linear function of the per-domain
losses (e.g. the worst domain's excess over a reference mixture).

A GP fitted to such an objective's values sees a function with kinks wherever the worst domain
changes, and the mixtures that beat the reference on every domain form a thin region it cannot
resolve (on the paper simulator, 0.3% of the simplex).  The per-domain losses themselves are
smooth, so the mixtures are scored as in Bayesian optimization of composite functions (Astudillo
& Frazier 2019): the expected improvement is the mean of ``max(best - g(L(w)), 0)`` over joint
draws of the per-domain losses (:class:`~optuna_adso.objective_posterior.ObjectivePosterior`),
and the incumbent is the least posterior mean among the tried mixtures and the reference (which
scores exactly its own value).  How much a cheaper run tells about the goal, and the cost gate,
come from the GP of the mean loss whose kernel the per-domain model shares.
"""

from __future__ import annotations

import numpy as np

from optuna_adso.acquisition import Acquisition, Fidelity
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.surrogate import MultiFidelitySurrogate

N_INCUMBENTS = 8


class CompositeAcquisition(Acquisition):
    """:class:`~optuna_adso.acquisition.Acquisition` with the goal's EI taken from ``posterior``
    (asked at the goal fidelity); ``surrogate`` (the mean loss's GP) prices the fidelities."""

    def __init__(
        self,
        surrogate: MultiFidelitySurrogate,
        posterior: ObjectivePosterior,
        fidelities: list[Fidelity],
        tried: np.ndarray,
        *,
        run_overhead: float = 0.0,
        goal_z: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.posterior = posterior
        uniq = np.unique(np.round(np.atleast_2d(tried), 10), axis=0)
        mean, _ = posterior.moments(uniq)
        order = np.argsort(mean)[:N_INCUMBENTS]
        incumbents, best = uniq[order], float(mean[order[0]]) if len(order) else np.inf
        if posterior.ref is not None:  # the reference scores its own value exactly: a known point
            ref_value = float(posterior.moments(posterior.ref[None])[0][0])
            if ref_value < best or not len(incumbents):
                incumbents = np.vstack([posterior.ref[None], incumbents]) if len(incumbents) else posterior.ref[None]
            best = min(best, ref_value)
        super().__init__(surrogate, fidelities, incumbents, method="info-per-cost",
                         run_overhead=run_overhead, goal_z=goal_z)
        self.target_best = best

    def _ei(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ei = np.maximum(self.target_best - draws, 0.0).mean(axis=0)
        return ei, draws.mean(axis=0), draws.var(axis=0)

    def _ei_and_moments(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._ei(self.posterior.samples(np.atleast_2d(weights)))  # (S, n), common random numbers

    def target_ei(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._ei_and_moments(weights)

    def goal_ei(self, weights: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        return self._ei_and_moments(weights)[0]

    def goal_value(self, weights: np.ndarray) -> np.ndarray:
        """Composite EI times the share of the objective's posterior variance one run would remove."""
        draws, noise_std = self.posterior.samples_and_noise_std(np.atleast_2d(weights))
        ei, _, var = self._ei(draws)
        return ei * var / np.maximum(var + noise_std**2, 1e-300)
