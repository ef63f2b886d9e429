"""Cost-aware acquisition and its optimizer on (simplex x fidelities).

Knows nothing of Optuna.  Two acquisition rules:

* ``info_per_cost`` (ADSO's default): the expected improvement *at the goal* of mixture w (the
  target, or the largest runnable scale when the target cannot be run: ``T`` below),
  times the fraction of the target's posterior variance at w that a run at fidelity f would
  remove, divided by the run's cost relative to a target run::

      a(w, f) = EI_T(w) * rho^2(w, f) / (cost(f) / cost(T)),
      rho^2 = Cov[y_f(w), y_T(w)]^2 / ((Var[y_f(w)] + noise) * Var[y_T(w)])

  Cheap fidelities win while the model believes they speak for the target; once the cheap
  fidelity at promising mixtures is known (or learned to be uncorrelated), ``rho^2`` collapses
  and the rule pays for expensive runs.  (A multi-fidelity augmented EI, Huang et al. 2006, with
  squared posterior correlation so that it is a variance fraction per unit cost.)
* ``ei_per_cost`` (the paper's method): EI at the candidate's own fidelity, against the best
  predicted value at that fidelity, divided by cost^alpha.

The optimizer scores a large candidate set on the simplex (uniform draws, faces and vertices,
and neighbours of the best mixtures), then refines the best pairs by local moves that also step
onto faces.  With ``info_per_cost`` the mixtures are chosen first, by the same rule at the goal
itself, ``EI_T(w) * Var_T(w) / (Var_T(w) + noise)`` (:meth:`Acquisition.goal_value`), and then
paired with a fidelity: by EI alone, noisy goal runs kept landing beside the incumbent.  It is vectorized and takes well under a second.  When the mixture declares a pool
of candidates (:mod:`optuna_adso.pool`), the pool members are the candidate set and nothing is
refined: every proposal and recommendation is a pool member.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from optuna_adso.simplex import normalize_rows, project_to_bounded_simplex, sample_simplex
from optuna_adso.space import MixtureSpec
from optuna_adso.surrogate import MultiFidelitySurrogate, inputs_at


@dataclass(frozen=True)
class Fidelity:
    """A runnable (scale, stop step) pair in model coordinates, with its relative cost."""

    scale: float
    step: float
    z: tuple[float, float]
    relative_cost: float  # cost / cost of one target run


@dataclass
class Proposal:
    weights: np.ndarray
    fidelity: Fidelity
    score: float
    target_mean: float
    target_std: float
    # which model proposed it, and what the cheap data added at the anchor runs (nats per run;
    # see optuna_adso.fidelity_trust): stored with the claim, for users and benchmarks to read
    basis: str = "multi-fidelity"
    cheap_gain: float | None = None
    imported_gain: float | None = None  # the same for imported small runs (fidelity_trust.ImportedTrust)
    imported_used: bool | None = None
    replicate_of: int | None = None  # a seed replicate: the trial whose mixture it repeats


def expected_improvement(mean: np.ndarray, var: np.ndarray, best: float) -> np.ndarray:
    """EI for minimization, computed stably (log-space tail for tiny values is unnecessary here)."""
    sd = np.sqrt(np.maximum(var, 1e-18))
    u = (best - mean) / sd
    return sd * (u * norm.cdf(u) + norm.pdf(u))


def candidate_mixtures(
    rng: np.random.Generator, spec: MixtureSpec, n: int, anchors: np.ndarray | None = None
) -> np.ndarray:
    """Uniform draws, draws on faces, all vertices (when allowed), and neighbours of anchors;
    the pool members alone when the mixture declares a pool."""
    pool = spec.pool
    if pool is not None:
        return pool
    parts = [sample_simplex(rng, n, spec, face_fraction=0.35)]
    vertices = np.eye(spec.k)
    if spec.has_bounds:
        vertices = project_to_bounded_simplex(vertices, np.array(spec.lower), np.array(spec.upper))
    parts.append(vertices)
    parts.append(np.full((1, spec.k), 1.0 / spec.k))
    if anchors is not None and len(anchors):
        parts.append(local_moves(rng, anchors, spec, per_anchor=max(8, n // (4 * len(anchors)))))
    return np.unique(np.round(np.vstack(parts), 12), axis=0)


def local_moves(
    rng: np.random.Generator, anchors: np.ndarray, spec: MixtureSpec, per_anchor: int
) -> np.ndarray:
    """Neighbours of each anchor: Gaussian steps of several sizes, plus moves onto faces.

    A third of the moves drop one domain (its weight goes to the others in proportion), which
    lands exactly on a face of the simplex, where data-mixture optima often sit.
    """
    k = spec.k
    lower, upper = np.array(spec.lower), np.array(spec.upper)
    out = []
    for a in np.atleast_2d(anchors):
        sizes = rng.choice([0.01, 0.04, 0.12], size=(per_anchor, 1))
        steps = rng.normal(size=(per_anchor, k)) * sizes
        steps -= steps.mean(axis=1, keepdims=True)
        moved = np.clip(a + steps, 0.0, None)
        n_face = per_anchor // 3
        drop = rng.integers(0, k, size=n_face)
        faced = np.repeat(a[None], n_face, axis=0)
        faced[np.arange(n_face), drop] = 0.0
        moved[:n_face] = faced
        out.append(normalize_rows(moved))
    moved = np.vstack(out)
    inside = np.all((moved >= lower) & (moved <= upper), axis=1)
    if spec.has_bounds and not inside.all():
        moved[~inside] = project_to_bounded_simplex(moved[~inside], lower, upper)
    return moved


class Acquisition:
    """Scores (mixtures x fidelities) with a fitted surrogate."""

    def __init__(
        self,
        surrogate: MultiFidelitySurrogate,
        fidelities: list[Fidelity],
        incumbent_weights: np.ndarray,
        *,
        method: str = "info-per-cost",
        cost_exponent: float = 1.0,
        run_overhead: float = 0.0,
        goal_z: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """``goal_z``: the fidelity whose value the runs should improve, in model coordinates:
        the target, or the largest runnable scale when the target cannot be run."""
        if method not in ("info-per-cost", "ei-per-cost"):
            raise ValueError(f"unknown acquisition {method!r}; expected 'info-per-cost' or 'ei-per-cost'")
        self.surrogate = surrogate
        self.fidelities = fidelities
        self.method = method
        self.cost_exponent = cost_exponent
        self.run_overhead = run_overhead  # fixed cost of any run, in target runs (launch, eval)
        self.noise = surrogate.noise_variance
        self.prior_std = surrogate.mixture_prior_std()
        self.goal_z = (float(goal_z[0]), float(goal_z[1]))
        # The costliest fidelity offered (the goal's full run) is never gated: something must run.
        self.max_cost = max((f.relative_cost for f in fidelities), default=1.0)
        target_mean, _ = surrogate.predict(inputs_at(incumbent_weights, self.goal_z))
        self.target_best = float(target_mean.min())
        self.incumbent_weights = incumbent_weights
        self._best_at: dict[tuple[float, float], float] = {}

    def _best_at_fidelity(self, f: Fidelity) -> float:
        if f.z not in self._best_at:
            mean, _ = self.surrogate.predict(inputs_at(self.incumbent_weights, f.z))
            self._best_at[f.z] = float(mean.min())
        return self._best_at[f.z]

    def target_ei(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EI at the goal fidelity, with its posterior mean and variance there."""
        mean, var = self.surrogate.predict(inputs_at(weights, self.goal_z))
        return expected_improvement(mean, var, self.target_best), mean, var

    def goal_ei(self, weights: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        """EI at the goal of ``weights``, given the surrogate's goal mean and variance there
        (a composite objective overrides this: see :mod:`optuna_adso.composite_acquisition`)."""
        return expected_improvement(mean, var, self.target_best)

    def goal_value(self, weights: np.ndarray) -> np.ndarray:
        """EI at the goal, times the share of the goal's posterior variance at w that one noisy
        run there would remove (augmented EI, Huang et al. 2006).  Plain EI keeps paying for
        near-duplicates of the incumbent, where a noisy run mostly re-measures the noise: with
        noisy runs the anchor's proposals crawled along one ridge."""
        ei, _, var = self.target_ei(weights)
        return ei * var / (var + self.noise)

    def score(self, weights: np.ndarray, f: Fidelity) -> np.ndarray:
        """Acquisition values of ``weights`` (m, k) at fidelity ``f``."""
        return self.score_rows(weights, [f] * len(weights))

    def score_fidelities(self, w: np.ndarray) -> np.ndarray:
        """Acquisition values of one mixture ``w`` (k,) at every fidelity, in one model query."""
        return self.score_rows(np.repeat(np.asarray(w)[None], len(self.fidelities), axis=0), self.fidelities)

    def score_rows(self, weights: np.ndarray, fids: Sequence[Fidelity]) -> np.ndarray:
        """Acquisition values of row ``i``: mixture ``weights[i]`` run at fidelity ``fids[i]``."""
        z = np.array([f.z for f in fids], dtype=float).reshape(len(fids), 2)
        cost = np.array([f.relative_cost for f in fids], dtype=float)
        xf = np.column_stack([weights, z])
        if self.method == "ei-per-cost":
            mean, var = self.surrogate.predict(xf)
            best = np.array([self._best_at_fidelity(f) for f in fids])
            ei = expected_improvement(mean, var, best)
            return ei / np.maximum(cost, 1e-12) ** self.cost_exponent
        xt = inputs_at(weights, self.goal_z)
        _, mean_t, var_f, var_t, cov = self.surrogate.predict_pairs(xf, xt)
        rho2 = cov**2 / ((var_f + self.noise) * var_t)
        ei = self.goal_ei(weights, mean_t, var_t)
        paid = np.maximum(cost + self.run_overhead, 1e-12) ** self.cost_exponent
        score = ei * np.clip(rho2, 0.0, 1.0) / paid
        # MF-GP-UCB's rule (Kandasamy et al. 2016): a cheaper fidelity is only worth running where
        # it is still uncertain, by more than sqrt(relative cost, overhead included) of the prior
        # std.  Without it a noiseless GP finds "new" information in every tiny move of w, and the
        # sampler would spend thousands of near-free runs instead of paying for the target.
        gamma = np.sqrt(cost + self.run_overhead) * self.prior_std
        exempt = cost >= self.max_cost * (1.0 - 1e-9)
        return np.where(exempt | (np.sqrt(var_f) >= gamma), score, 0.0)


def _refine(
    f, w: np.ndarray, value: float, spec: MixtureSpec, rng: np.random.Generator, rounds: int
) -> tuple[np.ndarray, float]:
    """Greedy local search maximizing ``f`` (vectorized over rows) from ``w``; a pool member
    stays put (its neighbours are not in the pool)."""
    if spec.candidates:
        return w, value
    for _ in range(rounds):
        moves = np.vstack([w[None], local_moves(rng, w[None], spec, per_anchor=48)])
        s = f(moves)
        i = int(np.argmax(s))
        if s[i] > value:
            value, w = float(s[i]), moves[i]
    return w, value


def _mask_taken(
    scores: np.ndarray, weights: np.ndarray, f: Fidelity, taken: Sequence[tuple[np.ndarray, float]]
) -> np.ndarray:
    """Scores with every (mixture, scale) another run holds set to -inf."""
    held = [w for w, scale in taken if scale == f.scale]
    if not held:
        return scores
    same = np.abs(weights[:, None, :] - np.asarray(held)[None, :, :]).max(axis=2) <= 1e-7
    return np.where(same.any(axis=1), -np.inf, scores)


def optimize_acquisition(
    acq: Acquisition,
    spec: MixtureSpec,
    rng: np.random.Generator,
    *,
    n_candidates: int = 1024,
    n_screen: int = 64,
    n_refine_rounds: int = 3,
    taken: Sequence[tuple[np.ndarray, float]] = (),
) -> Proposal:
    """Best (mixture, fidelity) that no other run holds.

    ``info-per-cost`` works in two stages: the mixtures come from maximizing EI at the target (so
    every run is spent on a mixture that is a good bet for the target), then each of the best
    three is paired with the fidelity that buys the most target information per unit cost there.
    ``ei-per-cost`` maximizes over mixtures and fidelities jointly, as the paper does.
    ``taken`` lists the (weights, scale) pairs of runs in flight: concurrent workers must not
    run the same mixture at the same scale, and vertices attract several at once.
    """

    def score(m: np.ndarray, f: Fidelity) -> np.ndarray:
        return _mask_taken(acq.score(m, f), m, f, taken)

    cands = candidate_mixtures(rng, spec, n_candidates, anchors=acq.incumbent_weights[:4])
    ei_t, _, _ = acq.target_ei(cands)
    best: tuple[float, np.ndarray, int] = (-np.inf, cands[0], len(acq.fidelities) - 1)
    if acq.method == "info-per-cost":
        order = np.argsort(-acq.goal_value(cands))
        for rank, i in enumerate(order[:32]):
            if rank >= 3 and np.isfinite(best[0]):
                break  # the three best starts are refined; more only while all are taken
            w = cands[i]
            if rank < 3:
                w, _ = _refine(acq.goal_value, w, -np.inf, spec, rng, n_refine_rounds)
            values = acq.score_fidelities(w)
            for j, f in enumerate(acq.fidelities):
                values[j] = _mask_taken(values[j : j + 1], w[None], f, taken)[0]
            j = int(np.argmax(values))
            if values[j] > best[0]:
                best = (float(values[j]), w, j)
    else:
        screened = cands
        if len(cands) > 4 * n_screen:
            screened = cands[np.argsort(-ei_t)[: 4 * n_screen]]
            screened = np.vstack([screened, cands[rng.choice(len(cands), n_screen, replace=False)]])
        per_fidelity = []
        for j, f in enumerate(acq.fidelities):
            s = score(screened, f)
            i = int(np.argmax(s))
            per_fidelity.append((float(s[i]), screened[i], j))
        per_fidelity.sort(key=lambda t: -t[0])
        for value, w, j in per_fidelity[:3]:  # refine the three best fidelities
            f = acq.fidelities[j]
            w, value = _refine(lambda m, f=f: score(m, f), w, value, spec, rng, n_refine_rounds)
            if value > best[0]:
                best = (value, w, j)
    value, w, j = best
    if spec.candidates and not np.isfinite(value):
        warnings.warn(
            f"every member of the candidate pool of {spec.name!r} has run (or is running) at every "
            "fidelity on offer; this trial repeats one: the pool is exhausted, stop the study",
            stacklevel=2,
        )
    w = w if spec.candidates else normalize_rows(w)[0]  # a pool member exactly as declared
    _, mean_t, var_t = acq.target_ei(w[None])
    return Proposal(w, acq.fidelities[j], float(value), float(mean_t[0]), float(np.sqrt(var_t[0])))


def minimize_target_mean(
    surrogate: MultiFidelitySurrogate,
    spec: MixtureSpec,
    rng: np.random.Generator,
    anchors: np.ndarray,
    *,
    risk_aversion: float = 1.0,
    n_candidates: int = 2048,
    n_refine_rounds: int = 4,
    z: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, float, float]:
    """The mixture minimizing ``mean + risk_aversion * std`` at the target: (weights, mean, std).

    A little risk aversion keeps a recommendation away from mixtures whose good predicted value
    is an extrapolation nobody checked (the posterior mean alone can be fooled far from data).
    ``z`` asks at another fidelity instead (model coordinates; the target is (0, 0)).
    """

    def objective(w: np.ndarray) -> np.ndarray:
        mean, var = surrogate.predict(inputs_at(w, z))
        return -(mean + risk_aversion * np.sqrt(var))

    cands = candidate_mixtures(rng, spec, n_candidates, anchors=anchors)
    values = objective(cands)
    best_w, best_v = cands[int(np.argmax(values))], float(values.max())
    for start in np.argsort(-values)[:4]:
        w, v = _refine(objective, cands[start], float(values[start]), spec, rng, n_refine_rounds)
        if v > best_v:
            best_w, best_v = w, v
    best_w = best_w if spec.candidates else normalize_rows(best_w)[0]
    mean, var = surrogate.predict(inputs_at(best_w[None], z))
    return best_w, float(mean[0]), float(np.sqrt(var[0]))
