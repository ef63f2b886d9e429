"""The posterior of a non-linear per-domain objective (e.g. the worst domain's excess over a
reference mixture), by sampling the joint per-domain model.

The objective is a function of *differences* to the reference at the same fidelity, so it is
sampled from the joint posterior of ``L(w) - L(reference)``: that difference is far surer than
either loss (both are predicted from the same runs), and it is exactly zero at the reference.
The same normal draws serve every mixture (common random numbers), so rankings do not flicker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from optuna_adso.domain_model import DomainModel
from optuna_adso.objectives import MixtureObjective, reference_weights
from optuna_adso.surrogate import inputs_at

N_SAMPLES = 512


class ObjectivePosterior:
    """Samples of ``objective`` at mixtures, at model fidelity ``z`` (the target by default)."""

    def __init__(
        self,
        model: DomainModel,
        objective: MixtureObjective,
        mixture_domains: Sequence[str],
        z: tuple[float, float] = (0.0, 0.0),
        n_samples: int = N_SAMPLES,
        seed: int = 0,
    ) -> None:
        self.model, self.objective, self.z = model, objective, z
        self.names = list(model.names)
        ref = objective.reference
        self.ref = None if ref is None else reference_weights(ref, mixture_domains, "the objective's reference")
        self._chol = np.linalg.cholesky(model.scale + 1e-12 * np.eye(len(self.names)))
        rng = np.random.default_rng(seed)
        self._eps = rng.standard_normal((2, n_samples, len(self.names)))

    def _x(self, w: np.ndarray) -> np.ndarray:
        return inputs_at(np.atleast_2d(w), self.z)

    def _diff_moments(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means (n, D) of L(w) - L(ref) (or L(w) with no reference) and shared variance factors (n,)."""
        x = self._x(w)
        if self.ref is None:
            mean, var = self.model.moments(x)
        else:
            mean, var = self.model.difference_to(x, self._x(self.ref[None]))
        return mean, np.clip(var, 0.0, None)

    def _values(self, mean: np.ndarray, factor: np.ndarray, eps: np.ndarray) -> np.ndarray:
        draws = mean[None] + np.sqrt(factor)[None, :, None] * (eps @ self._chol.T)[:, None, :]
        zero = np.zeros(len(self.names))
        return np.asarray(self.objective.evaluate(draws, zero, self.names))  # (S, n)

    def samples(self, w: np.ndarray) -> np.ndarray:
        """Posterior draws of the objective at each mixture (S, n)."""
        mean, factor = self._diff_moments(w)
        return self._values(mean, factor, self._eps[0])

    def moments(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of the objective at each mixture."""
        s = self.samples(w)
        return s.mean(axis=0), s.std(axis=0)

    def noise_std(self, w: np.ndarray) -> np.ndarray:
        """How far one run's objective value scatters around its expectation (per mixture)."""
        return self.samples_and_noise_std(w)[1]

    def samples_and_noise_std(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`samples` and :meth:`noise_std` from one posterior query."""
        mean, factor = self._diff_moments(w)
        exact = self._values(mean, factor, self._eps[0])
        noisy = self._values(mean, factor + self.model.noise, self._eps[0]).std(axis=0)
        return exact, np.sqrt(np.clip(noisy**2 - exact.std(axis=0) ** 2, 0.0, None))

    def lead(self, w: np.ndarray, best: np.ndarray) -> float:
        """How many std of the difference ``w`` is predicted to beat ``best`` by (jointly sampled)."""
        xw, xb = self._x(w), self._x(best)
        mw, vw = self._diff_moments(w)
        mb, vb = self._diff_moments(best)
        cov = self.model.cross(xw, xb)
        if self.ref is not None:
            xr = self._x(self.ref)
            cov = cov - self.model.cross(xw, xr) - self.model.cross(xb, xr) + self.model.cross(xr, xr)
        rho = float(np.clip(cov[0] / math.sqrt(max(vw[0] * vb[0], 1e-30)), -1.0, 1.0))
        e1, e2 = self._eps
        eb = rho * e1 + math.sqrt(max(1.0 - rho * rho, 0.0)) * e2
        d = self._values(mb, vb, eb)[:, 0] - self._values(mw, vw, e1)[:, 0]
        return float(d.mean() / max(d.std(), 1e-12))
