"""Geometry of the (bounded) probability simplex, where a data mixture lives.

Projections, exact normalization and uniform draws (faces included).  Pure numpy: the sampler,
the acquisition and the recommendation all use it, and none of it knows of Optuna.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class BoundedSimplex(Protocol):
    """What the draws need of a mixture declaration (:class:`~optuna_adso.space.MixtureSpec`)."""

    @property
    def k(self) -> int: ...

    @property
    def lower(self) -> tuple[float, ...]: ...

    @property
    def upper(self) -> tuple[float, ...]: ...

    @property
    def has_bounds(self) -> bool: ...


def project_to_bounded_simplex(v: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Euclidean projection of rows of ``v`` onto {w : sum w = 1, lower <= w <= upper}."""
    v = np.atleast_2d(np.asarray(v, dtype=float))
    lo_tau = (v - upper).min(axis=1) - 1.0
    hi_tau = (v - lower).max(axis=1) + 1.0
    for _ in range(80):  # bisection on the shift; sum(clip(v - tau)) is monotone in tau
        tau = 0.5 * (lo_tau + hi_tau)
        s = np.clip(v - tau[:, None], lower, upper).sum(axis=1)
        too_big = s > 1.0
        lo_tau = np.where(too_big, tau, lo_tau)
        hi_tau = np.where(too_big, hi_tau, tau)
    w = np.clip(v - (0.5 * (lo_tau + hi_tau))[:, None], lower, upper)
    return fix_rounding(w, lower, upper)


def fix_rounding(w: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rows clipped into the bounds with sum exactly 1: the residue goes to weights with room.

    Optuna checks a parameter against its distribution's bounds exactly, so a weight 1e-16 over
    its bound would be silently re-drawn and the trial would run another mixture.
    """
    w = np.clip(np.atleast_2d(np.asarray(w, dtype=float)), lower, upper)
    for _ in range(3):
        residue = 1.0 - w.sum(axis=1)
        room = np.where(residue[:, None] > 0, upper - w, w - lower)
        i = room.argmax(axis=1)
        rows = np.arange(len(w))
        w[rows, i] = np.clip(w[rows, i] + residue, lower[i], upper[i])
    return w


def normalize_rows(w: np.ndarray) -> np.ndarray:
    """Rows made non-negative and summing to one exactly (to float rounding)."""
    w = np.clip(np.atleast_2d(np.asarray(w, dtype=float)), 0.0, None)
    s = w.sum(axis=1, keepdims=True)
    k = w.shape[1]
    w = np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / k)
    # Push the rounding residue onto the largest weight so that sum(w) == 1 to ~1e-16.
    idx = w.argmax(axis=1)
    w[np.arange(len(w)), idx] += 1.0 - w.sum(axis=1)
    return w


def flat_dirichlet(rng: np.random.Generator, size: int) -> np.ndarray:
    """``rng.dirichlet(np.ones(size))``, the same draw to the bit from the same stream, faster.

    numpy draws each Gamma(1) as a standard exponential and scales them by the reciprocal of
    their running sum; its ``dirichlet`` spends most of a small call checking arguments, which
    made it a third of :func:`sample_simplex`.  (tests/test_acquisition.py checks the equality.)"""
    e = rng.standard_exponential(size)
    return e * (1.0 / e.cumsum()[-1])


def sample_simplex(
    rng: np.random.Generator, n: int, spec: BoundedSimplex, face_fraction: float = 0.0
) -> np.ndarray:
    """Uniform draws on the (bounded) simplex; a fraction lands uniformly on random faces.

    Uniform on the simplex is Dirichlet(1, ..., 1).  Optima of data mixtures often sit on faces
    (some domains at zero), which uniform draws never hit, so ``face_fraction`` of the draws pick
    a random subset of domains and are uniform on that face (vertices included).
    """
    k = spec.k
    lower, upper = np.array(spec.lower), np.array(spec.upper)
    w = rng.dirichlet(np.ones(k), size=n)
    n_face = int(round(face_fraction * n))
    for i in range(n_face):
        size = int(rng.integers(1, k))  # 1..k-1 active domains
        active = rng.choice(k, size=size, replace=False)
        w[i] = 0.0
        w[i, active] = flat_dirichlet(rng, size)
    if spec.has_bounds:
        inside = np.all((w >= lower) & (w <= upper), axis=1)
        w = np.where(inside[:, None], w, project_to_bounded_simplex(w, lower, upper))
    return fix_rounding(normalize_rows(w), lower, upper)
