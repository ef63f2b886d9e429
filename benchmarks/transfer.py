"""Transfer baselines: learn from runs below the target, transfer the answer to it.

Both run on any problem, and they are the natural baselines when the target is beyond the
runnable scales.  Each returns a :class:`benchmarks.runner.Trace` exactly as
:func:`benchmarks.runner.run_study` does: one entry per run, the FLOPs spent so far in
``problem.budget_unit`` units, and the regret at the target of the method's current
recommendation.  Every run is full-length (``problem.target_step``) and pays
``problem.cost(scale, target_step)``; run number ``n`` reports the value run_study's trial ``n``
would report at the last step: ``loss + noise(seed, n, RUN_NOISE_STEP, run_noise_std) +
noise(seed, n, target_step, noise_std)``.  A study stops once it has spent ``budget`` units or
made ``max_trials`` runs.

- ``regmix`` (RegMix, arXiv 2407.01492): many runs at the smallest scale on seeded Dirichlet
  mixtures (a concentration drawn log-uniform in [0.2, 2] per mixture, so sparse and central
  mixtures both appear); a regression of the final value on the mixture, either ridge on
  ``[w, w_i w_j (i < j), sqrt(w)]`` or an RBF kernel ridge, whichever (with its penalty and
  length scale) has the lower leave-one-out error; its argmin over a large candidate set on the
  simplex (the uniform mixture, every vertex, every face, sparse and flat interior draws, and the
  mixtures run) is the recommendation at the target.  The first fit comes after
  ``max(8, k + 2)`` runs and then after each batch of ``max(that, n // 4)`` more (and after the
  last run); before it, the uniform mixture.
- ``scaling-law`` (in the spirit of Data Mixing Laws, arXiv 2403.16952, and "Scaling Laws for
  Optimal Data Mixtures", arXiv 2507.09404): mixtures chosen space-filling (the uniform mixture,
  then a seeded scrambled Sobol sequence through the Dirichlet(1) transform), each run at the 3
  largest runnable scales at or below the target, cheapest first.  Once a mixture has all of them,
  ``L(N) = E + A (N / N_top)^-alpha`` is fitted to its final values (scipy's bounded
  ``curve_fit``: ``A >= 0``, ``0.01 <= alpha <= 2``, ``E`` at most the lowest value) and
  extrapolated to the target scale; the recommendation is the mixture with the best
  extrapolation (a failed fit is skipped; a tie keeps the earlier mixture).  With fewer than 3
  runnable scales no law can be fitted and the value at the largest one stands in.  Before any
  fit, the uniform mixture.

Values are handled in "minimize" orientation (negated for a maximized metric), so the same law
serves accuracies.  ``Trace.sampler_seconds`` holds the seconds each run's design and fitting
took.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from benchmarks.problems import Problem, simplex_candidates
from benchmarks.runner import _MAX_TRIALS, RUN_NOISE_STEP, BestObserved, Trace, noise

_SALT = 0x7A45  # separates these streams from the benchmarks' other uses of a seed
_KRR_MAX_POINTS = 600  # kernel ridge fits at most this many runs (a seeded subset)
_CONCENTRATION = (0.2, 2.0)  # RegMix: Dirichlet concentrations, log-uniform in this range


# --- bookkeeping, as runner._Recorder does it ------------------------------------------------


class _Ledger:
    """Pays for runs, draws their noise and records the trace."""

    def __init__(self, problem: Problem, seed: int, budget: float, max_trials: int) -> None:
        self.problem, self.seed, self.budget, self.max_trials = problem, int(seed), float(budget), int(max_trials)
        self.unit = problem.budget_unit
        self.sign = -1.0 if problem.maximize else 1.0
        self.spent = 0.0
        self.flops: list[float] = []
        self.regret: list[float] = []
        self.scales: list[float] = []
        self.trial_regret: list[float] = []
        self.seconds: list[float] = []
        self.cpu: list[float] = []
        self.observed_regret: list[float] = []
        self.observed = BestObserved(problem)
        self.uniform = np.full(problem.k, 1.0 / problem.k)
        self.final = self.uniform
        self._rec_cache: tuple[bytes, float] | None = None
        self._t0 = self._c0 = 0.0

    @property
    def n_runs(self) -> int:
        return len(self.flops)

    @property
    def done(self) -> bool:
        return self.spent >= self.budget * self.unit * (1 - 1e-9) or self.n_runs >= self.max_trials

    def tic(self) -> None:
        """Start timing the method's own work for the next run."""
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def run(self, w: np.ndarray, scale: float) -> float:
        """One full run of ``w`` at ``scale``: its reported final value, minimize orientation."""
        p, number = self.problem, self.n_runs
        step = p.target_step
        value = (
            float(p.loss(w, scale, step))
            + noise(self.seed, number, RUN_NOISE_STEP, p.run_noise_std)
            + noise(self.seed, number, step, p.noise_std)
        )
        self.spent += p.cost(scale, step)
        self._pending = (np.asarray(w, dtype=float), float(scale), self.sign * value)
        return self.sign * value

    def record(self, recommendation: np.ndarray) -> None:
        """Close the run just made: FLOPs, the recommendation's regret, timings."""
        seconds, cpu = time.perf_counter() - self._t0, time.process_time() - self._c0
        w, scale, y = self._pending
        rec = np.asarray(recommendation, dtype=float)
        key = rec.tobytes()
        if self._rec_cache is None or self._rec_cache[0] != key:
            self._rec_cache = (key, float(self.problem.regret(rec)))
        self.flops.append(self.spent / self.unit)
        self.regret.append(self._rec_cache[1])
        self.scales.append(scale)
        self.trial_regret.append(float(self.problem.regret(w)))
        self.seconds.append(seconds)
        self.cpu.append(cpu)
        if self.problem.noisy:  # the best observed full run at the highest scale reached
            self.observed_regret.append(self.observed.update(scale, self.sign * y, w))
        self.final = rec

    def trace(self, method: str, wall: float) -> Trace:
        p = self.problem
        return Trace(
            method=method,
            problem=p.name,
            seed=self.seed,
            budget=self.budget,
            flops=np.array(self.flops),
            regret=np.array(self.regret),
            trial_scale=np.array(self.scales),
            trial_steps=np.full(self.n_runs, float(p.target_step)),
            trial_state=["COMPLETE"] * self.n_runs,
            wall_seconds=wall,
            final_mixture={d: float(x) for d, x in zip(p.domains, self.final)},
            sampler_seconds=np.array(self.seconds),
            sampler_cpu_seconds=np.array(self.cpu),
            best_observed_regret=np.array(self.observed_regret),
            trial_regret=np.array(self.trial_regret),
        )


# --- the simplex -----------------------------------------------------------------------------


def _argmin_candidates(k: int, rng: np.random.Generator) -> np.ndarray:
    """The uniform mixture, every vertex, flat and sparse interior draws and every face."""
    return _clean(simplex_candidates(k, rng, 8000, 8000, min_per_face=40)[0])


def _clean(w: np.ndarray) -> np.ndarray:
    """Rows as valid mixtures: finite, >= 0, summing to 1 (a degenerate row -> uniform)."""
    w = np.where(np.isfinite(w), np.maximum(w, 0.0), 0.0)
    total = w.sum(axis=1, keepdims=True)
    k = w.shape[1]
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / k)


# --- RegMix ----------------------------------------------------------------------------------


def _features(w: np.ndarray) -> np.ndarray:
    k = w.shape[1]
    i, j = np.triu_indices(k, 1)
    return np.column_stack([w, w[:, i] * w[:, j], np.sqrt(w)])


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _fit_ridge(W: np.ndarray, y: np.ndarray) -> tuple[float, Callable[[np.ndarray], np.ndarray]]:
    """Ridge on the quadratic + sqrt features, penalty by exact leave-one-out: (LOO MSE, predictor)."""
    F = _features(W)
    mu, sd = F.mean(0), F.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    X = (F - mu) / sd
    ym = float(y.mean())
    yc = y - ym
    n = len(y)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    Uy = U.T @ yc
    best = (math.inf, 0.0)
    for lam in (s.max() ** 2 if len(s) else 1.0) * np.logspace(-7, 1, 17):
        shrink = s**2 / (s**2 + lam)
        fitted = U @ (shrink * Uy)
        hat = (U**2) @ shrink + 1.0 / n
        loo = (yc - fitted) / np.maximum(1.0 - hat, 1e-9)
        mse = float(np.mean(loo**2))
        if mse < best[0]:
            best = (mse, float(lam))
    lam = best[1]
    coef = Vt.T @ ((s / (s**2 + lam)) * Uy)

    def predict(Wq: np.ndarray) -> np.ndarray:
        return ym + ((_features(Wq) - mu) / sd) @ coef

    return best[0], predict


def _fit_krr(W: np.ndarray, y: np.ndarray) -> tuple[float, Callable[[np.ndarray], np.ndarray]]:
    """RBF kernel ridge around the mean; length scale and penalty by exact leave-one-out."""
    ym, ys = float(y.mean()), float(y.std()) or 1.0
    yc = (y - ym) / ys
    d2 = _sqdist(W, W)
    best: tuple[float, float, float, np.ndarray | None] = (math.inf, 0.0, 0.0, None)
    for ell in (0.1, 0.2, 0.4, 0.8):
        lam_k, Q = np.linalg.eigh(np.exp(-d2 / (2 * ell**2)))
        lam_k = np.maximum(lam_k, 0.0)
        Qy = Q.T @ yc
        for lam in np.logspace(-4, 1, 11):
            inv = 1.0 / (lam_k + lam)
            alpha = Q @ (inv * Qy)
            diag = (Q**2) @ inv
            mse = float(np.mean((alpha / diag) ** 2)) * ys**2
            if mse < best[0]:
                best = (mse, ell, float(lam), alpha)
    mse, ell, _, alpha = best
    assert alpha is not None

    def predict(Wq: np.ndarray) -> np.ndarray:
        out = np.empty(len(Wq))
        for a in range(0, len(Wq), 4096):
            out[a : a + 4096] = np.exp(-_sqdist(Wq[a : a + 4096], W) / (2 * ell**2)) @ alpha
        return ym + ys * out

    return mse, predict


def regmix_recommendation(W: np.ndarray, y: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The argmin (minimize orientation) over ``candidates`` and the run mixtures of the better
    regression of ``y`` on ``W`` by leave-one-out error."""
    ridge_mse, ridge = _fit_ridge(W, y)
    if len(W) > _KRR_MAX_POINTS:
        keep = rng.choice(len(W), _KRR_MAX_POINTS, replace=False)
        krr_mse, krr = _fit_krr(W[keep], y[keep])
    else:
        krr_mse, krr = _fit_krr(W, y)
    predict = krr if krr_mse < ridge_mse else ridge
    pool = np.concatenate([candidates, W])
    pred = predict(pool)
    pred = np.where(np.isfinite(pred), pred, np.inf)
    return pool[int(np.argmin(pred))].copy()


def _regmix(ledger: _Ledger, seed: int) -> None:
    problem = ledger.problem
    k = problem.k
    rng = np.random.default_rng(np.random.SeedSequence([_SALT, int(seed), 1]))
    fit_rng = np.random.default_rng(np.random.SeedSequence([_SALT, int(seed), 2]))
    scale = min(problem.scales)
    candidates: np.ndarray | None = None
    first = max(8, k + 2)
    next_fit, fitted_at = first, 0
    W: list[np.ndarray] = []
    y: list[float] = []
    rec = ledger.uniform
    lo, hi = np.log(_CONCENTRATION)
    while not ledger.done:
        ledger.tic()
        concentration = float(np.exp(rng.uniform(lo, hi)))
        w = _clean(rng.dirichlet(np.full(k, concentration))[None])[0]
        y.append(ledger.run(w, scale))
        W.append(w)
        n = len(y)
        if n >= next_fit or (ledger.done and n >= first and n > fitted_at):
            if candidates is None:
                candidates = _argmin_candidates(k, np.random.default_rng(np.random.SeedSequence([_SALT, int(seed), 3])))
            Wa, ya = np.array(W), np.array(y)
            ok = np.isfinite(ya)
            rec = regmix_recommendation(Wa[ok], ya[ok], candidates, fit_rng)
            fitted_at, next_fit = n, n + max(first, n // 4)
        ledger.record(rec)


# --- per-mixture scaling laws ----------------------------------------------------------------


def sobol_dirichlet_design(k: int, seed: int) -> Iterator[np.ndarray]:
    """Space-filling mixtures: the uniform one, then a scrambled Sobol sequence (seeded) through
    the Dirichlet(1) transform (``-log(1 - u)``, normalized), so that the simplex is covered
    evenly by volume rather than corners first."""
    from scipy.stats import qmc

    yield np.full(k, 1.0 / k)
    sobol = qmc.Sobol(d=k, scramble=True, seed=np.random.default_rng(np.random.SeedSequence([_SALT, int(seed), 4])))
    while True:
        u = sobol.random(256)
        yield from _clean(-np.log1p(-np.minimum(u, 1.0 - 1e-12)))


def _law(x: np.ndarray, E: float, A: float, alpha: float) -> np.ndarray:
    return E + A * np.power(x, -alpha)


def extrapolate(scales: np.ndarray, values: np.ndarray, target: float) -> float:
    """``E + A (N / N_top)^-alpha`` fitted to ``values`` (minimize orientation) at ``scales``,
    read at ``target``; NaN when the fit fails.  Fewer than 3 points: the largest scale's value."""
    from scipy.optimize import OptimizeWarning, curve_fit

    scales, values = np.asarray(scales, dtype=float), np.asarray(values, dtype=float)
    if len(values) < 3 or not np.all(np.isfinite(values)):
        return float(values[np.argmax(scales)]) if len(values) and np.all(np.isfinite(values)) else math.nan
    top = float(scales.max())
    x = scales / top
    lowest = float(values.min())
    span = float(values.max() - lowest)
    tiny = 1e-9 * max(1.0, abs(lowest))
    lower = (lowest - 5.0 * span - tiny, 0.0, 0.01)
    upper = (lowest + tiny, np.inf, 2.0)
    E0 = lowest - 0.5 * span
    A0 = max(float(values[np.argmax(scales)]) - E0, tiny)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(_law, x, values, p0=(E0, A0, 0.3), bounds=(lower, upper), maxfev=5000)
    except (RuntimeError, ValueError):
        return math.nan
    out = float(_law(np.array([target / top]), *params)[0])
    return out if math.isfinite(out) else math.nan


def _scaling_law(ledger: _Ledger, seed: int) -> None:
    problem = ledger.problem
    below = sorted(s for s in problem.scales if s <= problem.target_scale) or sorted(problem.scales)[:1]
    scales = below[-3:]  # the 3 largest runnable scales, cheapest first
    design = sobol_dirichlet_design(problem.k, seed)
    rec, best = ledger.uniform, math.inf
    while not ledger.done:
        ledger.tic()
        w = next(design)
        ys: list[float] = []
        for j, scale in enumerate(scales):
            if j:
                ledger.tic()
            ys.append(ledger.run(w, scale))
            if len(ys) == len(scales):
                pred = extrapolate(np.array(scales), np.array(ys), problem.target_scale)
                if math.isfinite(pred) and pred < best:
                    rec, best = w, pred
            ledger.record(rec)
            if ledger.done:
                break


# --- entry point ------------------------------------------------------------------------------

TRANSFER = {"regmix": _regmix, "scaling-law": _scaling_law}


def run_transfer(problem: Problem, method: str, seed: int, budget: float = 30.0, *, max_trials: int = _MAX_TRIALS) -> Trace:
    """Run the transfer baseline ``method`` on ``problem`` until ``budget`` units are spent."""
    if method not in TRANSFER:
        raise ValueError(f"unknown transfer method {method!r}; choose from {list(TRANSFER)}")
    if not budget > 0:
        raise ValueError(f"budget must be positive, got {budget!r}")
    if max_trials < 1:
        raise ValueError(f"max_trials must be >= 1, got {max_trials!r}")
    problem.optimum_value  # the reference point, computed (or cached) before the clock starts
    problem.uniform_value
    ledger = _Ledger(problem, seed, budget, max_trials)
    t0 = time.perf_counter()
    TRANSFER[method](ledger, seed)
    return ledger.trace(method, time.perf_counter() - t0)
