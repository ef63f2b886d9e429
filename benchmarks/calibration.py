"""Is ``adso.predict`` honest?  Coverage of its intervals of the noiseless truth at the target.

At fixed fractions of the budget the runner asks :func:`optuna_adso.predict` about the
recommendation and a fixed set of probe mixtures (Dirichlet draws, faces, vertices) and keeps
``z = (truth - mean) / std`` for each.  A calibrated model puts 50/80/90/95% of the z inside
the central 50/80/90/95% interval of a standard normal, with mean z near 0 and RMS z near 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from scipy.stats import norm

CHECK_FRACTIONS = (0.25, 0.5, 1.0)
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
KINDS = ("recommendation", "interior", "face", "vertex")
_PROBE_SALT = 0xCA1B


def probe_mixtures(k: int, seed: int = 0, n_interior: int = 16, n_face: int = 8) -> tuple[np.ndarray, list[str]]:
    """A fixed probe set on the simplex: Dirichlet(1) draws, draws on random faces, vertices."""
    rng = np.random.default_rng(np.random.SeedSequence([_PROBE_SALT, int(k), int(seed)]))
    interior = rng.dirichlet(np.ones(k), size=n_interior)
    faces = np.zeros((n_face, k))
    for i in range(n_face):
        active = rng.choice(k, size=int(rng.integers(2, k)) if k > 2 else 1, replace=False)
        faces[i, active] = rng.dirichlet(np.ones(len(active)))
    vertices = np.eye(k)
    kinds = ["interior"] * n_interior + ["face"] * n_face + ["vertex"] * k
    return np.vstack([interior, faces, vertices]), kinds


def calibration_record(
    study: optuna.Study, problem: Any, recommendation: np.ndarray, fraction: float, sampler: Any = None,
) -> dict[str, Any] | None:
    """``{"fraction", "kind", "z", "std"}`` for the recommendation and the probes, or None while the
    study has no model to predict with."""
    import optuna_adso as adso

    probes, kinds = probe_mixtures(problem.k)
    rows = np.vstack([np.asarray(recommendation, dtype=float)[None], probes])
    rows = rows / rows.sum(axis=1, keepdims=True)
    try:
        preds = adso.predict(study, rows, sampler=sampler)
    except ValueError:
        return None
    truth = np.asarray(problem.value_at_target(rows), dtype=float)
    mean = np.array([p.mean for p in preds])
    std = np.array([max(p.std, 1e-12) for p in preds])
    z = (truth - mean) / std
    return {"fraction": float(fraction), "kind": ["recommendation", *kinds],
            "z": [float(v) for v in z], "std": [float(v) for v in std]}


def summarize(records: Iterable[Mapping[str, Any]], kinds: Sequence[str] = KINDS) -> dict[str, dict[str, float]]:
    """Per kind (and ``all``): coverage at each level, mean z, RMS z and the number of z."""
    pooled: dict[str, list[float]] = {k: [] for k in (*kinds, "all")}
    for rec in records:
        for kind, z in zip(rec["kind"], rec["z"]):
            if math.isfinite(z) and kind in pooled:
                pooled[kind].append(z)
                pooled["all"].append(z)
    out = {}
    for kind, zs in pooled.items():
        z = np.asarray(zs, dtype=float)
        row = {"n": float(len(z))}
        for level in COVERAGE_LEVELS:
            half = norm.ppf(0.5 + level / 2)
            row[f"cover{int(level * 100)}"] = float(np.mean(np.abs(z) <= half)) if len(z) else math.nan
        row["mean_z"] = float(z.mean()) if len(z) else math.nan
        row["rms_z"] = float(np.sqrt(np.mean(z**2))) if len(z) else math.nan
        out[kind] = row
    return out
