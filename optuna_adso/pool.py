"""Candidate pools: a study that may only run mixtures from a finite list.

Often only a handful of blends can be built (tokenized shards exist for them, or a data team
signed them off).  Searching the whole simplex would then propose mixtures nobody can train, so
the pool is declared with the mixture (in the study's storage, like every declaration) and the
startup design, the acquisition and the recommendation score its members instead of searching.
Pure numpy; knows nothing of Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SUM_TOLERANCE = 1e-3
"""A candidate's weights must sum to 1 within this (they are then normalized exactly)."""

MEMBER_TOLERANCE = 1e-6
"""A mixture within this (largest weight difference) of a pool member is that member."""


def validate_candidates(
    candidates: Any, domains: Sequence[str], lower: Sequence[float], upper: Sequence[float]
) -> tuple[tuple[float, ...], ...]:
    """The pool as normalized weight tuples in ``domains`` order; ValueError naming the bad index.

    Each candidate is a dict ``{domain: weight}`` over exactly ``domains`` or a list of
    ``len(domains)`` weights; weights are finite, >= 0, within the declared bounds, and sum to 1.
    """
    if isinstance(candidates, (str, bytes, Mapping)) or not isinstance(candidates, Sequence) or not candidates:
        raise ValueError(f"candidates must be a non-empty list of mixtures, got {candidates!r}")
    k = len(domains)
    out: list[tuple[float, ...]] = []
    for i, c in enumerate(candidates):
        where = f"candidates[{i}]"
        if isinstance(c, Mapping):
            missing = [d for d in domains if d not in c]
            unknown = [d for d in c if d not in domains]
            if missing or unknown:
                raise ValueError(
                    f"{where} must give a weight for exactly the domains {list(domains)}; "
                    f"missing {missing}, unknown {unknown}"
                )
            raw = [c[d] for d in domains]
        elif isinstance(c, Sequence) and not isinstance(c, (str, bytes)) and len(c) == k:
            raw = list(c)
        else:
            raise ValueError(f"{where} must be a dict domain -> weight or a list of {k} weights, got {c!r}")
        weights = []
        for d, x in zip(domains, raw):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
                raise ValueError(f"{where}: the weight of {d!r} must be a finite number >= 0, got {x!r}")
            weights.append(float(x))
        total = sum(weights)
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"{where}: weights sum to {total:.6g}, expected 1 (within {SUM_TOLERANCE:g})")
        # as written when they sum to 1 up to rounding: users look for their own numbers
        w = tuple(weights) if abs(total - 1.0) <= 1e-9 else tuple(x / total for x in weights)
        for d, x, lo, hi in zip(domains, w, lower, upper):
            if not lo - 1e-9 <= x <= hi + 1e-9:
                raise ValueError(f"{where}: the weight of {d!r} is {x:.6g}, outside its bounds [{lo:g}, {hi:g}]")
        for j, earlier in enumerate(out):
            if max(abs(a - b) for a, b in zip(w, earlier)) <= MEMBER_TOLERANCE:
                raise ValueError(f"{where} repeats candidates[{j}]")
        out.append(tuple(min(max(x, lo), hi) for x, lo, hi in zip(w, lower, upper)))
    return tuple(out)


def nearest_member(pool: np.ndarray, w: np.ndarray) -> tuple[int, float]:
    """(index, largest weight difference) of the pool member closest to ``w``."""
    gaps = np.abs(np.asarray(pool) - np.asarray(w)[None, :]).max(axis=1)
    i = int(np.argmin(gaps))
    return i, float(gaps[i])
