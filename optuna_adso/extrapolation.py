"""How well the model extrapolates in scale, measured inside the study: leave the top scale out.

When the target cannot be run, every statement about it is an extrapolation from the runnable
scales, and the GP's own variance says nothing about whether the trend it learned holds one step
further.  The study can test that on itself: condition the GP (same hyperparameters) on the runs
below the top runnable scale only, predict the top scale's finished runs, and compare.  The
standardized errors tell how far to trust a step up in scale; ``recommend`` widens the target's
uncertainty by them (never narrows it), so a model that extrapolated badly once says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optuna_adso.study_model import FittedSurrogate, StudyModel
from optuna_adso.surrogate import MultiFidelitySurrogate, SurrogateFitError

MIN_HELD_OUT = 2


@dataclass(frozen=True)
class ExtrapolationCheck:
    """The top runnable scale's final values, predicted from the smaller scales alone."""

    n_runs: int
    rmse: float  # in the study's units
    z_rms: float  # root mean square of (actual - predicted) / predictive std
    rank_correlation: float  # Spearman's rho between predicted and actual (nan below 3 runs)

    @property
    def inflation(self) -> float:
        """The factor the target's std is widened by: the z-scores' rms, at least 1."""
        return max(1.0, self.z_rms) if math.isfinite(self.z_rms) else 1.0

    def describe(self) -> str:
        rho = "" if math.isnan(self.rank_correlation) else f", rank correlation {self.rank_correlation:.2f}"
        return (
            f"leave-top-scale-out: the smaller scales predict the top runnable scale's {self.n_runs} finished "
            f"runs with RMSE {self.rmse:.4g} (z rms {self.z_rms:.2f}{rho})"
        )


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return math.nan
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def leave_top_scale_out(
    surrogate: MultiFidelitySurrogate, x: np.ndarray, y: np.ndarray, below: np.ndarray, held_out: np.ndarray,
    groups: np.ndarray | None = None,
) -> ExtrapolationCheck | None:
    """Condition ``surrogate``'s hyperparameters on rows ``below`` (the smaller scales) and
    predict rows ``held_out`` (the top scale's final reports).  None when either side is too small."""
    below, held_out = np.asarray(below, dtype=int), np.asarray(held_out, dtype=int)
    if len(held_out) < MIN_HELD_OUT or len(below) < 2:
        return None
    try:
        sub = MultiFidelitySurrogate(surrogate.kind, surrogate.max_points).fit(
            x[below], y[below], n_weights=surrogate.n_weights, init_state=surrogate.state_exact(), maxiter=0,
            groups=None if groups is None else np.asarray(groups)[below],
        )
    except SurrogateFitError:
        return None
    mean, var = sub.predict(x[held_out])
    sd = np.sqrt(var + max(sub.noise_variance, 0.0))
    err = y[held_out] - mean
    return ExtrapolationCheck(
        n_runs=len(held_out),
        rmse=float(np.sqrt(np.mean(err**2))),
        z_rms=float(np.sqrt(np.mean((err / sd) ** 2))),
        rank_correlation=_spearman(mean, y[held_out]),
    )


def check_extrapolation(model: StudyModel, fitted: FittedSurrogate) -> ExtrapolationCheck | None:
    """Leave the study's top runnable scale out of its fitted GP's data and predict it."""
    obs, rows = fitted.observations, fitted.rows
    top = math.log10(model.anchor_scale)
    log_scale, log_step = obs.log_scale[rows], obs.log_step[rows]
    below = np.flatnonzero(log_scale < top - 1e-9)
    held_out = np.flatnonzero(np.isclose(log_scale, top) & np.isclose(log_step, math.log10(model.target.step)))
    x = np.column_stack([obs.weights[rows], fitted.axes.z(log_scale, log_step)])
    return leave_top_scale_out(fitted.surrogate, x, obs.values[rows], below, held_out, obs.trial_numbers[rows])


def std_inflation(model: StudyModel, fitted: FittedSurrogate) -> tuple[float, float]:
    """How much wider the GP's std must be, by its own held-out errors: (at scales the study
    runs, beyond them).  At the top runnable scale's runs (:mod:`optuna_adso.fidelity_trust`) and,
    beyond the runs, also leaving that scale out; never below 1.  (1, 1) for the paper's method,
    which runs no such test."""
    if model.settings.method != "adso":
        return 1.0, 1.0
    inside = model.trust(fitted).inflation(anchor_only=False)
    check = None if model.target_runnable else check_extrapolation(model, fitted)
    return inside, inside if check is None else max(inside, check.inflation)
