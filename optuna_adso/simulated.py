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
(uniform - optimum) at the target is 0.05..0.15.

What the small scales say about the target (``small_scales``):

- ``"informative"`` (the default): the law above, nothing else.
- ``"misleading"`` (or ``misleading=True``): a term ``m (1 - q(w)) / (1 + (N / N_mid)^3)``, where
  ``q`` ranks mixtures at the target (0 = best) and ``N_mid`` is the geometric middle of the
  scales, dominates the lower half of the scales and ranks mixtures against the target there.
- ``"uninformative"``: a term ``m u(w) h(N)``, where ``u`` (in [0, 1]) is a random bowl of its
  own, drawn independently of the world and then decorrelated from the target's ranking, and
  ``h`` is ``1 / (1 + (N / N_mid)^3)`` shifted to vanish exactly at the target, dominates the
  lower half of the scales: there the ranking of mixtures has nothing to do with the target's
  (Spearman's rho about 0), while the target itself is the honest world's.

Every scale-dependent term is ``c(w) h(N)`` with ``c >= 0`` and ``h`` decreasing: the loss never
rises with scale at a fixed mixture and step.  Cost: ``6 N tokens_per_step step``.  The target
is the largest scale or, in half of the worlds, one beyond it; ``target_factor`` sets it to
``target_factor`` times the largest scale instead (1: the largest scale itself).
"""

from __future__ import annotations

import math

import numpy as np

SYNTH_SALT = 0x5D50  # separates these streams from any other use of the same seed
TOKENS_PER_STEP = 256 * 1024


SMALL_SCALE_KINDS = ("informative", "uninformative", "misleading")
DECOY_STRENGTH = 4.0  # the uninformative term's spread at the smallest scale / the honest loss's


def _centred_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of ``x``, centred and scaled to unit norm: their dot product is Spearman's rho."""
    ranks = np.argsort(np.argsort(x)).astype(float)
    ranks -= ranks.mean()
    return ranks / np.linalg.norm(ranks)


class SimulatedWorld:
    """The world drawn from ``seed``; ``k`` and ``n_scales`` override the drawn ones.

    ``small_scales`` is one of :data:`SMALL_SCALE_KINDS` (default: ``"misleading"`` when
    ``misleading`` else ``"informative"``); ``target_factor`` (>= 1) puts the target at that
    multiple of the largest scale instead of the drawn one.  With neither, the world is the one
    it always was: the draws happen in a fixed order (the benchmarks' problems are keyed by
    seed, so changing the order would change every world), hence the one long constructor, and
    what the new settings need is drawn from streams of its own.
    """

    def __init__(self, seed: int, k: int | None = None, n_scales: int | None = None,
                 misleading: bool = False, *, small_scales: str | None = None,
                 target_factor: float | None = None) -> None:
        if small_scales is None:
            small_scales = "misleading" if misleading else "informative"
        if small_scales not in SMALL_SCALE_KINDS:
            raise ValueError(f"small_scales must be one of {SMALL_SCALE_KINDS}, got {small_scales!r}")
        if misleading and small_scales != "misleading":
            raise ValueError(f"misleading=True contradicts small_scales={small_scales!r}")
        misleading = small_scales == "misleading"
        if target_factor is not None and not (math.isfinite(target_factor) and target_factor >= 1.0):
            raise ValueError(f"target_factor must be a number >= 1, got {target_factor!r}")
        rng = np.random.default_rng(np.random.SeedSequence([SYNTH_SALT, int(seed)]))
        k_draw, n_draw = int(rng.integers(4, 9)), int(rng.integers(4, 7))
        k = k_draw if k is None else int(k)
        n_scales = n_draw if n_scales is None else int(n_scales)
        if k < 2 or n_scales < 1:
            raise ValueError("need k >= 2 domains and n_scales >= 1")
        self.seed, self.k, self.n_scales, self.misleading = int(seed), k, n_scales, bool(misleading)
        self.small_scales: str = small_scales
        self.domains: list[str] = [f"d{i}" for i in range(k)]
        # fidelities
        ratio = rng.uniform(2.5, 3.5)
        self.scales: list[float] = [float(f"{10e6 * ratio**i:.3g}") for i in range(n_scales)]
        self.beyond = bool(rng.random() < 0.5)  # is the target one scale past the largest?
        self.target_scale: float = float(f"{self.scales[-1] * ratio:.3g}") if self.beyond else self.scales[-1]
        if target_factor is not None:  # the draw above still happens, so every later draw stays
            self.beyond = float(target_factor) > 1.0
            self.target_scale = float(f"{self.scales[-1] * target_factor:.3g}") if self.beyond else self.scales[-1]
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

        self._decoy: tuple[np.ndarray, np.ndarray, float, float, float, float, float] | None = None
        # (with no scale below the target there is nothing to be uninformative about)
        if small_scales == "uninformative" and self.scales[0] < self.target_scale:
            self._decoy = self._draw_decoy(probe[k:], target)

    def _draw_decoy(self, typical: np.ndarray, target: tuple[float, int]) -> tuple[
            np.ndarray, np.ndarray, float, float, float, float, float]:
        """The uninformative term's law, from a stream of its own: ``(c, G, b, lo, hi, m, n_mid)``
        with ``u(w) = clip((r(w) - b L_target(w) - lo) / (hi - lo), 0, 1)`` and the random bowl
        ``r(w) = |G (w - c)|^2`` around a random mixture ``c``.

        ``m`` makes the term's spread over typical mixtures :data:`DECOY_STRENGTH` times the
        honest loss's at the smallest scale, so that it decides the ranking there; ``b`` then
        makes the rank correlation of the smallest scale's loss with the target's 0 over those
        mixtures, so that what little of the honest ranking shows through is cancelled.
        """
        k = self.k
        rng = np.random.default_rng(np.random.SeedSequence([SYNTH_SALT, self.seed, 2]))
        c = rng.dirichlet(np.ones(k))
        G = rng.normal(size=(k, k)) / math.sqrt(k)
        r = (((typical - c) @ G.T) ** 2).sum(axis=1)
        at_target = self._base(typical, *target)
        small = self._base(typical, self.scales[0], self.target_step)
        target_ranks = _centred_ranks(at_target)
        n_mid = math.sqrt(self.scales[0] * self.scales[-1])
        h_small = self._decoy_h(self.scales[0], n_mid)

        def law(b: float) -> tuple[float, float, float]:
            u = r - b * at_target
            lo, hi = float(np.quantile(u, 0.01)), float(np.quantile(u, 0.99))
            u = np.clip((u - lo) / (hi - lo), 0.0, 1.0)
            m = DECOY_STRENGTH * float(np.std(small)) / max(float(np.std(u)), 1e-12) / max(h_small, 1e-12)
            return lo, hi, m

        def rank_corr(b: float) -> float:  # +1 as b -> -inf, -1 as b -> +inf
            lo, hi, m = law(b)
            u = np.clip((r - b * at_target - lo) / (hi - lo), 0.0, 1.0)
            return float(_centred_ranks(small + m * h_small * u) @ target_ranks)

        b_hi = float(np.std(r) / max(float(np.std(at_target)), 1e-300))
        b_lo = -b_hi
        for _ in range(60):  # widen the bracket until the correlation changes sign
            if rank_corr(b_lo) >= 0 and rank_corr(b_hi) <= 0:
                break
            b_lo, b_hi = 2.0 * b_lo, 2.0 * b_hi
        for _ in range(50):
            b = 0.5 * (b_lo + b_hi)
            if rank_corr(b) > 0:
                b_lo = b
            else:
                b_hi = b
        b = 0.5 * (b_lo + b_hi)
        return (c, G, b, *law(b), n_mid)

    def _decoy_h(self, scale: float, n_mid: float) -> float:
        """``1 / (1 + (N / N_mid)^3)`` less its value at the target, floored at 0 and rescaled: ~1
        on the lower half of the scales, exactly 0 from the target on, never increasing in N."""
        h_target = 1.0 / (1.0 + (self.target_scale / n_mid) ** 3)
        return max(0.0, 1.0 / (1.0 + (scale / n_mid) ** 3) - h_target) / (1.0 - h_target)

    def _base(self, w: np.ndarray, scale: float, step: float) -> np.ndarray:
        """The honest loss of mixtures ``w`` (n, k), without the misleading or uninformative term."""
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
        if self._decoy is not None:
            c, G, b, lo, hi, m, n_mid = self._decoy
            r = (((w - c) @ G.T) ** 2).sum(axis=1) - b * self._base(w, self.target_scale, self.target_step)
            out = out + m * self._decoy_h(scale, n_mid) * np.clip((r - lo) / (hi - lo), 0.0, 1.0)
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
