"""A seeded simulated pre-training world: validation loss of a mixture at any (scale, step).

It lives in the package, not beside the benchmarks, so that ``adso demo --simulated`` runs from
an installed wheel; ``benchmarks.problems.synthetic_world`` wraps the same world as a benchmark
problem.  Pure numpy (plus scipy for :meth:`SimulatedWorld.best_mixture`); no Optuna.

Validation loss is a fixed mix ``v`` of per-domain losses.  Domain ``d`` at ``N`` parameters
after ``D`` tokens::

    L_d = E_d + A_d (N/1e8)^-alpha + B_d (N/1e8)^-g_d (D ((T w)_d + 0.01) / 1e9)^-beta_d

``T`` (transfer, unit diagonal) lets one domain's data help another; ``beta_d`` differ, so
learning curves of mixtures cross over steps; ``g_d`` differ, so which domains are worth data
changes with scale.  An interference term ``c (N/1e8)^-gc w' C w`` (conflicting domains hurt
small models more) moves the optimum with scale too.  ``B`` and ``c`` are scaled so that
(uniform - optimum) at the target is 0.05..0.15.  With ``misleading=True`` a term
``m (1 - q(w)) / (1 + (N / N_mid)^3)``, where ``q`` ranks mixtures at the target (0 = best) and
``N_mid`` is the geometric middle of the scales, dominates the lower half of the scales and
ranks mixtures against the target there.

Every scale-dependent term is ``c(w) h(N)`` with ``c >= 0`` and ``h`` decreasing: the loss never
rises with scale at a fixed mixture and step.  Cost: ``6 N tokens_per_step step``.  The target
is the largest scale or, in half of the worlds, one beyond it.
"""

from __future__ import annotations

import math

import numpy as np

SYNTH_SALT = 0x5D50  # separates these streams from any other use of the same seed
TOKENS_PER_STEP = 256 * 1024


class SimulatedWorld:
    """The world drawn from ``seed``; ``k`` and ``n_scales`` override the drawn ones.

    The draws happen in a fixed order (the benchmarks' problems are keyed by seed, so changing
    the order would change every world), hence the one long constructor.
    """

    def __init__(self, seed: int, k: int | None = None, n_scales: int | None = None,
                 misleading: bool = False) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([SYNTH_SALT, int(seed)]))
        k_draw, n_draw = int(rng.integers(4, 9)), int(rng.integers(4, 7))
        k = k_draw if k is None else int(k)
        n_scales = n_draw if n_scales is None else int(n_scales)
        if k < 2 or n_scales < 1:
            raise ValueError("need k >= 2 domains and n_scales >= 1")
        self.seed, self.k, self.n_scales, self.misleading = int(seed), k, n_scales, bool(misleading)
        self.domains: list[str] = [f"d{i}" for i in range(k)]
        # fidelities
        ratio = rng.uniform(2.5, 3.5)
        self.scales: list[float] = [float(f"{10e6 * ratio**i:.3g}") for i in range(n_scales)]
        self.beyond = bool(rng.random() < 0.5)  # is the target one scale past the largest?
        self.target_scale: float = float(f"{self.scales[-1] * ratio:.3g}") if self.beyond else self.scales[-1]
        self.target_step: int = 10_000
        self.report_steps: list[int] = list(range(500, self.target_step + 1, 500))
        # loss parameters
        self.v = rng.dirichlet(np.ones(k))
        self.E = rng.uniform(1.6, 2.6, k)
        self.A = rng.uniform(0.5, 1.2, k)
        self.alpha = rng.uniform(0.25, 0.4)
        self.B = rng.uniform(0.3, 0.8, k)
        self.beta = rng.uniform(0.15, 0.6, k)
        self.g = rng.uniform(0.0, 0.5, k)
        self.T = np.eye(k) + rng.uniform(0.0, 0.5, (k, k)) * (rng.random((k, k)) < 0.4) * (1 - np.eye(k))
        C = rng.uniform(0.0, 1.0, (k, k)) * (rng.random((k, k)) < 0.3)
        C = np.triu(C, 1)
        self.C = C + C.T
        self.c0 = rng.uniform(0.2, 0.5)
        self.gc = rng.uniform(0.4, 0.8)
        wanted_gap = rng.uniform(0.05, 0.15)
        probe_rng = np.random.default_rng(np.random.SeedSequence([SYNTH_SALT, int(seed), 1]))
        probe = np.concatenate([np.eye(k), probe_rng.dirichlet(np.ones(k), size=4096)])
        uniform = np.full((1, k), 1.0 / k)
        target = (self.target_scale, self.target_step)

        # Scale the mixture-dependent terms so that (uniform - best) at the target is wanted_gap,
        # which keeps a benchmark's noise comparable across worlds.
        gap = float(self._base(uniform, *target)[0] - self._base(probe, *target).min())
        factor = float(np.clip(wanted_gap / max(gap, 1e-9), 0.1, 20.0))
        self.B = self.B * factor
        self.c0 = self.c0 * factor

        self._mislead: tuple[float, float, float, float] | None = None  # (m, q_lo, q_hi, n_mid)
        if misleading:
            q_t = self._base(probe[k:], *target)  # typical mixtures, not the vertices
            q_lo, q_hi = float(q_t.min()), float(np.quantile(q_t, 0.9))
            small = self._base(probe[k:], self.scales[0], self.target_step)
            m = 3.0 * float(np.quantile(small, 0.95) - np.quantile(small, 0.05))
            # h(N) = 1 / (1 + (N / N_mid)^3): ~1 on the lower half of the scales, ~0 near the
            # target; decreasing in N, so the loss still never rises with scale.
            self._mislead = (m, q_lo, q_hi, math.sqrt(self.scales[0] * self.scales[-1]))

    def _base(self, w: np.ndarray, scale: float, step: float) -> np.ndarray:
        """The honest loss of mixtures ``w`` (n, k), without the misleading term."""
        n = scale / 1e8
        tokens = TOKENS_PER_STEP * max(step, 1.0) / 1e9
        d_eff = tokens * (w @ self.T.T + 0.01)  # (n, k)
        per_domain = self.E + self.A * n**-self.alpha + self.B * n ** (-self.g) * d_eff ** (-self.beta)
        interference = self.c0 * n**-self.gc * np.einsum("ni,ij,nj->n", w, self.C, w)
        return per_domain @ self.v + interference

    def loss(self, w: np.ndarray, scale: float, step: float) -> np.ndarray | float:
        """Noiseless validation loss: ``w`` (n, k) -> (n,) array, ``w`` (k,) -> float."""
        single = np.ndim(w) == 1
        w = np.atleast_2d(w)
        out = self._base(w, scale, step)
        if self._mislead is not None:
            m, q_lo, q_hi, n_mid = self._mislead
            q = np.clip((self._base(w, self.target_scale, self.target_step) - q_lo) / (q_hi - q_lo), 0.0, 1.0)
            out = out + m * (1.0 - q) / (1.0 + (scale / n_mid) ** 3)
        return float(out[0]) if single else out

    def cost(self, scale: float, step: float) -> float:
        """Cumulative FLOPs of a run of ``scale`` parameters up to ``step``: 6 N D."""
        return 6.0 * scale * TOKENS_PER_STEP * max(step, 0.0)

    def best_mixture(self, scale: float, step: float, *, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, float]:
        """The best mixture at (scale, step) and its loss, to report how far a result is from it.

        The optimum often sits on a face of the simplex, so the candidates are the vertices,
        uniform draws and draws on random faces; the best few are polished by SLSQP on the
        simplex.  Not a certificate, but within ~1e-6 of the benchmarks' much longer search.
        """
        from scipy.optimize import minimize

        rng = np.random.default_rng(seed)
        k = self.k
        faces = rng.dirichlet(np.ones(k), size=n) * (rng.random((n, k)) < 0.5)
        faces = faces[faces.sum(axis=1) > 0]
        cand = np.concatenate([np.eye(k), rng.dirichlet(np.ones(k), size=n), faces / faces.sum(axis=1, keepdims=True)])
        vals = np.asarray(self.loss(cand, scale, step))
        best_w, best_v = cand[np.argmin(vals)], float(vals.min())
        constraint = {"type": "eq", "fun": lambda x: x.sum() - 1.0}
        for i in np.argsort(vals)[:5]:
            res = minimize(lambda x: float(self.loss(x, scale, step)), cand[i], method="SLSQP",
                           bounds=[(0.0, 1.0)] * k, constraints=[constraint])
            w = np.clip(res.x, 0.0, None)
            w = w / w.sum()
            v = float(self.loss(w, scale, step))
            if v < best_v:
                best_w, best_v = w, v
        return best_w, best_v
