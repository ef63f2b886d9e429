"""Benchmark problems: a noiseless ``loss(weights, scale, step)``, a cost table and a target.

Two families:

- :func:`paper_simulator`: the MLP that arXiv 2503.21023 fitted to 472 real pre-training runs on
  SlimPajama (5 domains, 20M to 1B parameters, up to 19,500 steps), with its FLOPs table.  The
  files are not shipped with the project; see ``docs`` or the error message for where to get them.
  Any of its 11 outputs, the mean domain CE or the worst domain CE's excess over the uniform
  mixture is an objective, ``max_scale`` caps the runs below the 1B target, and its 7 domain CEs
  are the per-domain losses (:meth:`Problem.domain_losses`) that per-domain objectives read.
- :func:`synthetic_world`: seeded worlds of our own, Chinchilla-like learning curves with domain
  transfer and interference, where the optimum moves with scale (and, with ``misleading=True``,
  the small scales rank mixtures against the target; with ``small_scales="uninformative"`` their
  ranking is unrelated to the target's).  :func:`synth_family_settings` draws the settings of a
  family of such worlds from an index and :func:`synth_family_world` builds one, its noise given
  as a share of its own (uniform - optimum) gap.

Every problem knows its target fidelity, the uniform mixture's value there and the optimum there,
so that :meth:`Problem.regret` is 0 at the optimum and 1 at the uniform mixture.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from optuna_adso import simulated as _simulated

LossFn = Callable[[np.ndarray, float, float], np.ndarray]
DomainFn = Callable[[np.ndarray, float, float], np.ndarray]  # (n, k) weights -> (n, D) losses
CostFn = Callable[[float, float], float]

PAPER_DOMAINS = ["wikipedia", "stackexchange", "github", "arxiv", "book"]
PAPER_SIZES_M = [20.0, 60.0, 150.0, 300.0, 500.0, 700.0, 1000.0]
PAPER_TARGET_STEP = 19_500
PAPER_ENV_VAR = "ADSO_PAPER_SIMULATOR"
# objective -> (output indices averaged, maximize).  The MLP's 11 outputs: train CE, the CE on
# CommonCrawl, C4, Wikipedia, StackExchange, Github, ArXiv and Book, then HellaSwag, PIQA and
# ARC-Easy accuracy; plus the mean of the 7 domain CEs.
PAPER_OBJECTIVES: dict[str, tuple[tuple[int, ...], bool]] = {
    "train_ce": ((0,), False),
    "commoncrawl": ((1,), False),
    "c4": ((2,), False),
    "wikipedia": ((3,), False),
    "stackexchange": ((4,), False),
    "github": ((5,), False),
    "arxiv": ((6,), False),
    "book": ((7,), False),
    "mean_ce": ((1, 2, 3, 4, 5, 6, 7), False),
    "hellaswag": ((8,), True),
    "piqa": ((9,), True),
    "arc_easy": ((10,), True),
}
# Objectives made of the 7 domain CEs but not their average (issue 20): ``worst_excess`` is the
# max over them of CE_d(w) - CE_d(uniform) at the same size and step (uniform scores 0, the
# optimum is negative: every domain beats uniform there).  Minimized.
PAPER_EXCESS_OBJECTIVES = ("worst_excess",)
# the MLP's outputs 1..7: the evaluation domains a per-domain report names (not the 5 mixed ones)
PAPER_DOMAIN_CE = ("commoncrawl", "c4", "wikipedia", "stackexchange", "github", "arxiv", "book")
_PAPER_CE_COLS = [1, 2, 3, 4, 5, 6, 7]
# objective -> what ADSOSampler(objective=...) optimizes for it from the per-domain CEs
# (optuna_adso.parse_objective's spelling); objectives not made of the domain CEs have none
PAPER_DOMAIN_OBJECTIVES: dict[str, str] = {
    **{name: f"domain:{name}" for name in PAPER_DOMAIN_CE},
    "mean_ce": "mean",
    "worst_excess": "worst-excess",
}
# caps of the capped variants, in millions of parameters: runs up to the cap, target still 1B
PAPER_CAPS_M = (500, 300)

# Optima are expensive enough (a second or two) to compute once per process and problem.
_OPTIMUM_CACHE: dict[Any, tuple[np.ndarray, float, float]] = {}


@dataclass
class Problem:
    """A data-mixture benchmark: domains, fidelities, a noiseless loss and a cost."""

    name: str
    domains: list[str]
    scales: list[float]
    report_steps: list[int]
    target_scale: float
    target_step: int
    maximize: bool
    noise_std: float
    loss_fn: LossFn = field(repr=False)
    cost_fn: CostFn = field(repr=False)
    cache_key: Any = field(default=None, repr=False)
    description: str = field(default="", repr=False)
    run_noise_std: float = 0.0  # one offset per run, shared by all its reports (seed, hardware, order)
    # the mixtures a data pipeline can build (n, k), when only those may run (see with_pool)
    pool: np.ndarray | None = field(default=None, repr=False)
    # per-domain losses (n, k) -> (n, D), noiseless, and their names: what a run can report with
    # optuna_adso.report(..., domains=); None where the problem has only its scalar
    domain_fn: DomainFn | None = field(default=None, repr=False)
    domain_names: list[str] | None = None
    # the per-domain objective that is this problem's value (parse_objective's spelling: "mean",
    # "worst-excess", "domain:NAME"), for ADSOSampler(objective=...); None when there is none
    domain_objective: str | None = None

    def __post_init__(self) -> None:
        self.report_steps = [int(s) for s in self.report_steps]
        if sorted(self.report_steps) != self.report_steps or self.report_steps[-1] != self.target_step:
            raise ValueError("report_steps must ascend and end at target_step")
        self.scales = [float(s) for s in self.scales]

    @property
    def k(self) -> int:
        return len(self.domains)

    def as_weights(self, weights: Any) -> np.ndarray:
        """Weights as an array in domain order; accepts a {domain: weight} mapping."""
        if isinstance(weights, Mapping):
            weights = [float(weights[d]) for d in self.domains]
        w = np.asarray(weights, dtype=float)
        if w.shape[-1] != self.k:
            raise ValueError(f"{self.name}: weights need {self.k} columns, got shape {w.shape}")
        return w

    def loss(self, weights: Any, scale: float, step: float) -> np.ndarray | float:
        """Noiseless value at (scale, step); ``weights`` (k,) -> float, (n, k) -> (n,)."""
        w = self.as_weights(weights)
        single = w.ndim == 1
        out = np.asarray(self.loss_fn(np.atleast_2d(w), float(scale), float(step)), dtype=float)
        return float(out[0]) if single else out

    def domain_losses(self, weights: Any, scale: float, step: float) -> np.ndarray:
        """Noiseless per-domain losses at (scale, step), columns in :attr:`domain_names` order;
        ``weights`` (k,) -> (D,), (n, k) -> (n, D).  A problem without them raises."""
        if self.domain_fn is None or self.domain_names is None:
            raise ValueError(f"{self.name}: this problem has no per-domain losses")
        w = self.as_weights(weights)
        out = np.asarray(self.domain_fn(np.atleast_2d(w), float(scale), float(step)), dtype=float)
        return out[0] if w.ndim == 1 else out

    def cost(self, scale: float, step: float) -> float:
        """Cumulative FLOPs of a run of ``scale`` parameters up to ``step``."""
        return float(self.cost_fn(float(scale), float(step)))

    @property
    def target_cost(self) -> float:
        """One full run at the target fidelity."""
        return self.cost(self.target_scale, self.target_step)

    @property
    def target_runnable(self) -> bool:
        return self.target_scale in self.scales

    @property
    def top_scale(self) -> float:
        """The largest scale a run may have: the target's when it is runnable."""
        return self.target_scale if self.target_runnable else max(s for s in self.scales if s <= self.target_scale)

    @property
    def budget_unit(self) -> float:
        """The budget unit: one full run at the target, or at the top runnable scale when the
        target cannot be run."""
        return self.cost(self.top_scale, self.target_step)

    @property
    def noisy(self) -> bool:
        return self.noise_std > 0 or self.run_noise_std > 0

    def value_at_target(self, weights: Any) -> np.ndarray | float:
        return self.loss(weights, self.target_scale, self.target_step)

    # --- reference points at the target ---------------------------------------------------

    @cached_property
    def _optimum(self) -> tuple[np.ndarray, float, float]:
        key = self.cache_key
        if key is not None and key in _OPTIMUM_CACHE:
            return _OPTIMUM_CACHE[key]
        sign = -1.0 if self.maximize else 1.0

        def f(w: np.ndarray) -> np.ndarray:
            return sign * np.asarray(
                self.loss_fn(w, float(self.target_scale), float(self.target_step)), dtype=float
            )

        t0 = time.perf_counter()
        w, v = minimize_on_simplex(f, self.k, seed=0)
        result = (w, sign * v, time.perf_counter() - t0)
        if key is not None:
            _OPTIMUM_CACHE[key] = result
        return result

    @cached_property
    def optimum_weights(self) -> np.ndarray:
        return self._optimum[0].copy()

    @cached_property
    def optimum_value(self) -> float:
        return self._optimum[1]

    @property
    def optimum_seconds(self) -> float:
        """Wall time the optimum search took (when it ran in this process)."""
        return self._optimum[2]

    @cached_property
    def uniform_value(self) -> float:
        return float(self.value_at_target(np.full(self.k, 1.0 / self.k)))

    def regret(self, weights: Any) -> float | np.ndarray:
        """(value - optimum) / (uniform - optimum) at the target: 0 = optimum, 1 = uniform.

        The same formula serves both directions (numerator and gap flip sign together).
        ``weights`` (k,) or a {domain: weight} mapping -> float; (n, k) -> (n,).
        """
        value = self.value_at_target(self.as_weights(weights))
        gap = self.uniform_value - self.optimum_value
        if gap == 0:
            return 0.0 if np.ndim(value) == 0 else np.zeros(np.shape(value))
        out = (np.asarray(value) - self.optimum_value) / gap
        return float(out) if out.ndim == 0 else out


# --- optimum search on the simplex -------------------------------------------------------------


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the probability simplex (sort-based, exact)."""
    v = np.asarray(v, dtype=float)
    shape = v.shape
    v = v.reshape(-1, shape[-1])
    k = v.shape[1]
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    ind = np.arange(1, k + 1)
    cond = u - css / ind > 0
    rho = k - 1 - np.argmax(cond[:, ::-1], axis=1)  # last index where cond holds
    theta = css[np.arange(len(v)), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0).reshape(shape)


def _evaluate(f: Callable[[np.ndarray], np.ndarray], w: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    if len(w) <= chunk:
        return f(w)
    return np.concatenate([f(w[i : i + chunk]) for i in range(0, len(w), chunk)])


def simplex_candidates(
    k: int, rng: np.random.Generator, n_interior: int, n_faces_total: int, min_per_face: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform, vertices, interior (flat and sparse Dirichlet) and every face (at least
    ``min_per_face`` draws each); with support ids."""
    rows = [np.full((1, k), 1.0 / k), np.eye(k)]
    support = [np.full(1, -1), np.arange(k)]  # -1: interior; faces get their own id
    rows.append(rng.dirichlet(np.ones(k), size=n_interior))
    rows.append(rng.dirichlet(np.full(k, 0.3), size=n_interior // 2))
    support += [np.full(n_interior, -1), np.full(n_interior // 2, -1)]
    faces = [s for size in range(2, k) for s in itertools.combinations(range(k), size)]
    per_face = max(min_per_face, n_faces_total // max(1, len(faces)))
    for fid, face in enumerate(faces):
        block = np.zeros((per_face, k))
        block[:, face] = rng.dirichlet(np.ones(len(face)), size=per_face)
        rows.append(block)
        support.append(np.full(per_face, k + fid))
    return np.concatenate(rows), np.concatenate(support)


def _projected_descent(
    f: Callable[[np.ndarray], np.ndarray], w: np.ndarray, fw: np.ndarray, iters: int = 150
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized projected gradient descent with a line search over a ladder of step sizes.

    The gradient's tangent part comes from forward differences towards each vertex
    (``w + h (e_i - w)`` stays in the simplex), so ``f`` is never evaluated outside it.
    """
    m, k = w.shape
    eye = np.eye(k)
    h = 1e-6
    ladder = np.geomspace(0.5, 1e-7, 20)
    active = np.ones(m, dtype=bool)
    for _ in range(iters):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        W = w[idx]
        probes = W[:, None, :] + h * (eye[None] - W[:, None, :])
        d = (_evaluate(f, probes.reshape(-1, k)).reshape(len(idx), k) - fw[idx, None]) / h
        g = d - d.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        direction = -g / np.where(norm > 0, norm, 1.0)
        trial = project_to_simplex(W[:, None, :] + ladder[None, :, None] * direction[:, None, :])
        ft = _evaluate(f, trial.reshape(-1, k)).reshape(len(idx), len(ladder))
        j = ft.argmin(axis=1)
        best = ft[np.arange(len(idx)), j]
        improved = best < fw[idx] - 1e-13
        w[idx[improved]] = trial[np.flatnonzero(improved), j[improved]]
        fw[idx[improved]] = best[improved]
        active[idx[~improved]] = False
    return w, fw


def _pairwise_search(
    f: Callable[[np.ndarray], np.ndarray], w: np.ndarray, fw: float, iters: int = 400
) -> tuple[np.ndarray, float]:
    """Pattern search moving mass between pairs of domains; handles kinks that stall gradients."""
    k = len(w)
    pairs = np.array([(i, j) for i in range(k) for j in range(k) if i != j])
    amounts = np.geomspace(1.0, 1e-9, 28)
    for _ in range(iters):
        t = np.minimum(amounts[None, :], w[pairs[:, 0], None])  # cannot move more than w_i
        cand = np.repeat(w[None, None, :], len(amounts), axis=1).repeat(len(pairs), axis=0)
        rows = np.arange(len(pairs))[:, None]
        cols = np.arange(len(amounts))[None, :]
        cand[rows, cols, pairs[:, 0, None]] -= t
        cand[rows, cols, pairs[:, 1, None]] += t
        cand = np.clip(cand.reshape(-1, k), 0.0, None)
        fc = f(cand)
        b = int(fc.argmin())
        if not fc[b] < fw - 1e-13:
            break
        w, fw = cand[b], float(fc[b])
    return w, fw


def minimize_on_simplex(
    f: Callable[[np.ndarray], np.ndarray],
    k: int,
    *,
    seed: int = 0,
    n_interior: int = 60_000,
    n_faces_total: int = 120_000,
    n_starts: int = 24,
) -> tuple[np.ndarray, float]:
    """Global minimum of a vectorized ``f: (n, k) -> (n,)`` over the probability simplex.

    A large sample (uniform and sparse Dirichlet, every vertex, every face), then projected
    gradient descent from the best few starts and the best start of each face, then a pairwise
    pattern search from the best results.
    """
    rng = np.random.default_rng(seed)
    cand, support = simplex_candidates(k, rng, n_interior, n_faces_total)
    vals = _evaluate(f, cand)
    order = np.argsort(vals)
    starts = list(order[:n_starts])
    # the best point of each face (and of the interior), so that no face is left unexplored
    for s in np.unique(support):
        members = np.flatnonzero(support == s)
        starts.append(members[np.argmin(vals[members])])
    starts = np.unique(np.array(starts))
    w, fw = _projected_descent(f, cand[starts].copy(), vals[starts].copy())
    best = np.argsort(fw)[:4]
    results = [_pairwise_search(f, w[i].copy(), float(fw[i])) for i in best]
    w_best, f_best = min(results, key=lambda r: r[1])
    w_best = w_best / w_best.sum()
    return w_best, float(f(w_best[None])[0])


# --- the paper's simulator ---------------------------------------------------------------------


def _default_data_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paper_simulator"


def paper_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where the simulator's files are: the argument, $ADSO_PAPER_SIMULATOR, or ../shared/data."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(PAPER_ENV_VAR)
    if env:
        return Path(env)
    return _default_data_dir()


def paper_data_available(data_dir: str | os.PathLike | None = None) -> bool:
    d = paper_data_dir(data_dir)
    return (d / "mlp.npz").is_file() and (d / "flops.csv").is_file()


class PaperMLP:
    """The simulator's MLP in numpy: 9 raw features -> 11 metrics."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.layers = [(z[f"W{i}"], z[f"b{i}"]) for i in range(4)]
            self.mask = z["feature_mask"].astype(bool)
            self.x_mean, self.x_std = z["X_mean"], z["X_std"]
            self.y_mean, self.y_std = z["y_mean"], z["y_std"]
            self.metric_names = [str(s) for s in z["metric_names"]]
            self.feature_names = [str(s) for s in z["feature_names"]]
        expected = [f"w_{d}" for d in PAPER_DOMAINS]
        if self.feature_names[:5] != expected:
            raise ValueError(f"{path}: unexpected features {self.feature_names}")

    def __call__(self, weights: np.ndarray, size_m: np.ndarray | float, step: np.ndarray | float) -> np.ndarray:
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        n = len(w)
        raw = np.empty((n, 9))
        raw[:, :5] = w
        raw[:, 5] = size_m
        raw[:, 6:8] = self.x_mean[6:8]  # d_model and n_heads: masked out, any value works
        raw[:, 8] = step
        x = ((raw - self.x_mean) / self.x_std)[:, self.mask]
        for i, (W, b) in enumerate(self.layers):
            x = x @ W.T + b
            if i < 3:
                np.maximum(x, 0.0, out=x)
        return x * self.y_std + self.y_mean


class _FlopsTable:
    """Cumulative FLOPs per (size, step): linear in steps per size, log-log between sizes."""

    def __init__(self, path: Path) -> None:
        table: dict[float, list[tuple[float, float]]] = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                table.setdefault(float(row["size_m"]) * 1e6, []).append((float(row["step"]), float(row["flops"])))
        self.sizes = np.array(sorted(table))
        self.curves = {}
        for s in self.sizes:
            c = np.array(sorted(table[s]))
            self.curves[s] = (np.concatenate([[0.0], c[:, 0]]), np.concatenate([[0.0], c[:, 1]]))

    def _at(self, size: float, step: float) -> float:
        steps, flops = self.curves[size]
        if step <= steps[-1]:
            return float(np.interp(step, steps, flops))
        return float(flops[-1] * step / steps[-1])

    def __call__(self, scale: float, step: float) -> float:
        if step <= 0:
            return 0.0
        exact = np.flatnonzero(np.isclose(self.sizes, scale, rtol=1e-9))
        if len(exact):
            return self._at(self.sizes[exact[0]], step)
        i = int(np.clip(np.searchsorted(self.sizes, scale), 1, len(self.sizes) - 1))
        a, b = self.sizes[i - 1], self.sizes[i]
        ca, cb = self._at(a, step), self._at(b, step)
        slope = math.log(cb / ca) / math.log(b / a)
        return float(ca * (scale / a) ** slope)


_PAPER_FILES: dict[Path, tuple[PaperMLP, _FlopsTable]] = {}


def _load_paper_files(d: Path) -> tuple[PaperMLP, _FlopsTable]:
    d = d.resolve()
    if d not in _PAPER_FILES:
        missing = [name for name in ("mlp.npz", "flops.csv") if not (d / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"paper simulator files {missing} not found in {d}. They are derived from the public "
                "repository namkoong-lab/data-recipes (commit e80dcd8: "
                "opt_algos/data_models/20250119_174726_j8mad2i5/checkpoints/checkpoint_latest.pt and "
                "opt_algos/flops_dataset.csv); see README.md in the paper_simulator data folder for "
                "the format. Pass data_dir=... or set $" + PAPER_ENV_VAR + " to the folder holding "
                "mlp.npz and flops.csv."
            )
        _PAPER_FILES[d] = (PaperMLP(d / "mlp.npz"), _FlopsTable(d / "flops.csv"))
    return _PAPER_FILES[d]


def paper_simulator(
    objective: str = "stackexchange", data_dir: str | None = None, max_scale: float | None = None
) -> Problem:
    """The ADSO paper's simulator (5 SlimPajama domains, 20M..1B params, target 1B at 19,500 steps).

    Objectives (:data:`PAPER_OBJECTIVES`, :data:`PAPER_EXCESS_OBJECTIVES`): any of the MLP's 11
    outputs, ``"train_ce"``, the CEs ``"commoncrawl"``, ``"c4"``, ``"wikipedia"``,
    ``"stackexchange"`` (the paper's default), ``"github"``, ``"arxiv"``, ``"book"`` (minimized),
    the accuracies ``"hellaswag"``, ``"piqa"``, ``"arc_easy"`` (maximized), ``"mean_ce"``, the mean of the 7 domain CEs (minimized), or
    ``"worst_excess"``: the largest of the 7 domain CEs' excess over the uniform mixture's at the
    same size and step (minimized; uniform scores 0 at every fidelity, the optimum is negative, so
    the regret's gap is the optimum's margin below uniform on its worst domain).

    Every problem carries the 7 domain CEs as its per-domain losses
    (:meth:`Problem.domain_losses`, :data:`PAPER_DOMAIN_CE`) and, for the objectives made of them,
    the matching per-domain objective (:data:`PAPER_DOMAIN_OBJECTIVES`).

    ``max_scale`` (parameters) keeps only the sizes up to it runnable: the target stays 1B at
    step 19,500 but is never run (``Problem.top_scale`` and ``budget_unit`` are then the cap's),
    and the name says so (``paper-stackexchange-cap500m``).
    """
    if objective not in PAPER_OBJECTIVES and objective not in PAPER_EXCESS_OBJECTIVES:
        choices = sorted(PAPER_OBJECTIVES) + list(PAPER_EXCESS_OBJECTIVES)
        raise ValueError(f"unknown objective {objective!r}; choose from {choices}")
    scales = [s * 1e6 for s in PAPER_SIZES_M]
    name = f"paper-{objective}"
    capped = max_scale is not None and float(max_scale) < scales[-1]
    if capped:
        scales = [s for s in scales if s <= float(max_scale)]
        if not scales:
            raise ValueError(f"max_scale {max_scale:g} is below the smallest size, {PAPER_SIZES_M[0]:g}M")
        name += f"-cap{scales[-1] / 1e6:g}m"
    d = paper_data_dir(data_dir).resolve()
    mlp, flops = _load_paper_files(d)
    outputs, maximize = PAPER_OBJECTIVES.get(objective, (tuple(_PAPER_CE_COLS), False))
    cols = list(outputs)

    def domain_fn(w: np.ndarray, scale: float, step: float) -> np.ndarray:
        return mlp(w, scale / 1e6, step)[:, _PAPER_CE_COLS]

    if objective == "worst_excess":
        uniform = np.full((1, len(PAPER_DOMAINS)), 1.0 / len(PAPER_DOMAINS))

        def loss_fn(w: np.ndarray, scale: float, step: float) -> np.ndarray:
            # the reference at the same size and step, so that uniform is exactly 0 everywhere
            return (domain_fn(w, scale, step) - domain_fn(uniform, scale, step)).max(axis=1)
    else:

        def loss_fn(w: np.ndarray, scale: float, step: float) -> np.ndarray:
            y = mlp(w, scale / 1e6, step)
            return y[:, cols].mean(axis=1)

    description = f"paper simulator, {objective} ({'maximize' if maximize else 'minimize'})"
    if capped:
        description += f", runs capped at {scales[-1] / 1e6:g}M: the 1B target is never run"
    return Problem(
        name=name,
        domains=list(PAPER_DOMAINS),
        scales=scales,
        report_steps=list(range(500, PAPER_TARGET_STEP + 1, 500)),
        target_scale=1e9,
        target_step=PAPER_TARGET_STEP,
        maximize=maximize,
        noise_std=0.0,
        loss_fn=loss_fn,
        cost_fn=flops,
        cache_key=("paper", objective, str(d)),  # the cap leaves the target, hence the optimum, alone
        description=description,
        domain_fn=domain_fn,
        domain_names=list(PAPER_DOMAIN_CE),
        domain_objective=PAPER_DOMAIN_OBJECTIVES.get(objective),
    )


# --- synthetic worlds --------------------------------------------------------------------------

# The world itself is the package's (``adso demo --simulated`` runs it from a wheel); these names
# stay importable from here.
_SYNTH_SALT, TOKENS_PER_STEP = _simulated.SYNTH_SALT, _simulated.TOKENS_PER_STEP


def synthetic_world(
    seed: int,
    k: int | None = None,
    n_scales: int | None = None,
    noise_std: float = 0.01,
    misleading: bool = False,
    *,
    small_scales: str | None = None,
    target_factor: float | None = None,
    run_noise_std: float = 0.0,
) -> Problem:
    """A seeded world with Chinchilla-like learning curves whose optimum moves with scale.

    :class:`optuna_adso.simulated.SimulatedWorld` (its docstring has the law) as a benchmark
    problem with per-report noise ``noise_std`` and a per-run offset of std ``run_noise_std``.
    ``B`` and ``c`` are scaled so that (uniform - optimum) at the target is 0.05..0.15, which
    keeps ``noise_std`` comparable across worlds.  The target is the largest scale or, in half of
    the worlds, one beyond it (never run); ``target_factor`` puts it at that multiple of the
    largest scale instead.  ``small_scales``: ``"informative"``, ``"uninformative"`` or
    ``"misleading"`` (the same as ``misleading=True``).
    """
    world = _simulated.SimulatedWorld(
        seed, k=k, n_scales=n_scales, misleading=misleading, small_scales=small_scales, target_factor=target_factor
    )
    k, n_scales, scales, beyond, target_scale = world.k, world.n_scales, world.scales, world.beyond, world.target_scale
    misleading, uninformative = world.misleading, world.small_scales == "uninformative"
    name = f"synthetic-{seed}" + ("-misleading" if misleading else "") + ("-uninformative" if uninformative else "")
    cache_key: tuple[Any, ...] = ("synthetic", int(seed), k, n_scales, bool(misleading))
    if uninformative:
        cache_key += ("uninformative",)
    if target_factor is not None:
        cache_key += (("target_factor", float(target_factor)),)
    if target_factor is not None and beyond:
        where = f" ({target_scale / scales[-1]:.3g}x the largest scale, never run)"
    else:
        where = " (beyond the scales)" if beyond else ""
    return Problem(
        name=name,
        domains=list(world.domains),
        scales=list(scales),
        report_steps=list(world.report_steps),
        target_scale=target_scale,
        target_step=world.target_step,
        maximize=False,
        noise_std=float(noise_std),
        run_noise_std=float(run_noise_std),
        loss_fn=world.loss,
        cost_fn=world.cost,
        cache_key=cache_key,
        description=(
            f"synthetic world seed={seed}: {k} domains, scales {scales[0]:.3g}..{scales[-1]:.3g}, "
            f"target {target_scale:.3g}{where}"
            f"{', misleading small scales' if misleading else ''}"
            f"{', uninformative small scales' if uninformative else ''}"
        ),
    )


# --- the synthetic family ----------------------------------------------------------------------

# The family's settings come from a stream of their own.  The salt was picked (the 39th tried)
# for a family of 24 that spans every setting: 4 to 12 domains, 3 to 6 scales, all three kinds of
# small scales each with runnable and beyond targets and with and without noise.
_FAMILY_SALT = 0xFA57
FAMILY_SEED_OFFSET = 1000  # world seeds of the family: clear of the hand-picked synthetic-<seed>


def synth_family_settings(index: int, salt: int = _FAMILY_SALT) -> dict[str, Any]:
    """The settings of the family's world ``index``, drawn from the index.

    4 to 12 domains; 3 to 6 runnable scales; small scales informative, uninformative or
    misleading (equally likely); the target the largest runnable scale (half the worlds) or 2x
    to 8x beyond it; no noise (a quarter of the worlds) or a total std of 2% to 20% of the
    (uniform - optimum) gap at the target, of which a drawn share of the variance is a per-run
    offset and the rest per-report noise.  The result is :func:`synth_family_world`'s keywords.
    """
    rng = np.random.default_rng(np.random.SeedSequence([_simulated.SYNTH_SALT, salt, int(index)]))
    k = int(rng.integers(4, 13))
    n_scales = int(rng.integers(3, 7))
    small_scales = str(_simulated.SMALL_SCALE_KINDS[int(rng.integers(3))])
    target_factor = 1.0 if rng.random() < 0.5 else round(float(rng.uniform(2.0, 8.0)), 1)
    noise = 0.0 if rng.random() < 0.25 else round(float(rng.uniform(0.02, 0.20)), 3)
    run_share = round(float(rng.uniform(0.0, 1.0)), 2)
    return {
        "seed": FAMILY_SEED_OFFSET + int(index),
        "k": k,
        "n_scales": n_scales,
        "small_scales": small_scales,
        "target_factor": target_factor,
        "noise": noise,
        "run_noise_share": run_share if noise > 0 else 0.0,
    }


def synth_family_world(
    seed: int,
    k: int,
    n_scales: int,
    small_scales: str,
    target_factor: float,
    noise: float,
    run_noise_share: float,
    name: str | None = None,
) -> Problem:
    """A world of the synthetic family: :func:`synthetic_world` with its noise set relative to
    its own (uniform - optimum) gap at the target (so building one searches for its optimum).

    ``noise`` is the total std of a reported value as a share of the gap;
    ``run_noise_share`` of its variance is the per-run offset (``run_noise_std``), the rest
    per-report noise (``noise_std``).
    """
    if not (0.0 <= noise and 0.0 <= run_noise_share <= 1.0):
        raise ValueError(f"need noise >= 0 and 0 <= run_noise_share <= 1, got {noise!r}, {run_noise_share!r}")
    problem = synthetic_world(
        seed, k=k, n_scales=n_scales, noise_std=0.0, small_scales=small_scales, target_factor=target_factor
    )
    gap = problem.uniform_value - problem.optimum_value
    run_std = noise * math.sqrt(run_noise_share) * gap
    report_std = noise * math.sqrt(1.0 - run_noise_share) * gap
    problem.noise_std, problem.run_noise_std = report_std, run_std
    if name is not None:
        problem.name = name
    scales = problem.scales
    if problem.target_runnable:
        where = "the largest runnable scale"
    else:
        where = f"{problem.target_scale / scales[-1]:.3g}x beyond the largest runnable scale, never run"
    noise_text = (
        f"noise {noise:.0%} of the gap (per-run offset {run_std / gap:.1%}, per report {report_std / gap:.1%})"
        if noise > 0 else "no noise"
    )
    problem.description = (
        f"synthetic family world seed={seed}: {problem.k} domains, {len(scales)} scales "
        f"{scales[0]:.3g}..{scales[-1]:.3g}, target {problem.target_scale:.3g} ({where}), "
        f"{small_scales} small scales, {noise_text}"
    )
    return problem


# --- candidate pools -------------------------------------------------------------------------

_POOL_SALT = 0x9001


def with_pool(problem: Problem, n: int = 64, seed: int = 0) -> Problem:
    """``problem`` where only ``n`` mixtures can be built: the uniform mixture and ``n - 1`` seeded
    Dirichlet draws, each with its own concentration log-uniform in [0.2, 2] (RegMix's recipe:
    some near a vertex, some near uniform).  Its optimum is the pool's best member, so regret 0
    is the best buildable mixture and 1 the uniform one."""
    if n < 2:
        raise ValueError(f"a pool needs at least 2 mixtures, got n={n!r}")
    rng = np.random.default_rng(np.random.SeedSequence([_POOL_SALT, int(seed), int(n)]))
    alphas = np.exp(rng.uniform(math.log(0.2), math.log(2.0), size=n - 1))
    draws = np.vstack([rng.dirichlet(np.full(problem.k, a)) for a in alphas])
    draws = np.maximum(draws, 0.0)
    draws /= draws.sum(axis=1, keepdims=True)
    pool = np.vstack([np.full(problem.k, 1.0 / problem.k), draws])
    pooled = replace(
        problem, name=f"{problem.name}-pool{n}", pool=pool, cache_key=None,
        description=f"{problem.description}; only {n} mixtures can be built (uniform and {n - 1} "
        "Dirichlet draws); regret against the best of them",
    )
    values = np.asarray(pooled.value_at_target(pool), dtype=float)
    best = int(np.argmax(values) if problem.maximize else np.argmin(values))
    pooled.__dict__["_optimum"] = (pool[best].copy(), float(values[best]), 0.0)  # the pool's best
    return pooled
