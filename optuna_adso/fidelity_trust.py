"""Do the cheap fidelities earn their budget?  A held-out test at the runs that matter.

The multi-fidelity GP is only worth its cheap runs if, with them, it predicts the runs at the
*anchor* (the target, or the largest runnable scale when the target cannot be run) better than
from the anchor's own runs alone.  The same GP (same kernel, same hyperparameters) is asked the
same question twice at every complete anchor run: its final value, predicted from all other data,
and from the other anchor-scale data only, with that run's own earlier reports left out both
times (closed-form block leave-one-run-out).  Scores are mean log predictive densities; the cheap
fidelities have earned their place when the first is higher by more than :data:`EARN_MARGIN`.

Until then the sampler behaves like target-only BO (see :mod:`optuna_adso.proposer`): small
scales are misleading in some worlds and merely uninformative in others, and either way a model
that pools them cannot be trusted to say so about itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optuna_adso.surrogate import MultiFidelitySurrogate

MIN_ANCHOR_RUNS = 3
"""Below this many complete anchor runs there is no verdict, and the configured floor applies."""

EARN_MARGIN = 0.2
"""Nats per anchor run the cheap data must add to the held-out prediction to earn its place:
cheap runs with nothing to say still shift it a little either way (0.01-0.14 on the tests'
unrelated worlds; informative ones add several nats)."""

UNEARNED_TARGET_SHARE = 0.85
"""While cheap fidelities have not earned their place, at least this share of the effort goes to
the anchor; the rest keeps testing them (a verdict needs cheap data near the anchor runs)."""


def can_decide(n_complete_anchor_runs: int) -> bool:
    """Whether that many complete anchor runs are enough for the held-out test's verdict."""
    return n_complete_anchor_runs >= MIN_ANCHOR_RUNS


@dataclass(frozen=True)
class FidelityTrust:
    """The verdict of the held-out test: mean log predictive densities per anchor run, with the
    cheap data (``multi_fidelity_score``) and with the anchor scale's data only."""

    n_runs: int
    multi_fidelity_score: float
    anchor_only_score: float
    multi_fidelity_z_rms: float = math.nan  # rms standardized held-out error, with the cheap data
    anchor_only_z_rms: float = math.nan  # and from the anchor scale's data only

    def inflation(self, anchor_only: bool) -> float:
        """How much wider the model's intervals must be to cover the held-out anchor runs (the z
        rms of the model answering, at least 1; 1 without a verdict)."""
        z = self.anchor_only_z_rms if anchor_only else self.multi_fidelity_z_rms
        return max(1.0, z) if self.decided and math.isfinite(z) else 1.0

    @property
    def cheap_gain(self) -> float:
        """What the cheap data adds to the prediction of an anchor run, in nats per run."""
        return self.multi_fidelity_score - self.anchor_only_score

    @property
    def decided(self) -> bool:
        return can_decide(self.n_runs)

    @property
    def earned(self) -> bool:
        """Cheap fidelities predict the anchor better than the anchor's own runs (or no verdict
        yet, in which case they are given the benefit of the doubt under the configured floor)."""
        if not self.decided:
            return True
        return self.cheap_gain > EARN_MARGIN

    def describe(self) -> str:
        if not self.decided:
            return f"{self.n_runs} complete anchor run(s): no verdict on the cheap fidelities yet"
        verdict = "earn their place" if self.earned else "have not earned their place"
        return (
            f"cheap fidelities {verdict}: held-out log density per anchor run "
            f"{self.multi_fidelity_score:.3f} with them vs {self.anchor_only_score:.3f} without "
            f"({self.n_runs} runs)"
        )


def log_density(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    var = np.maximum(var, 1e-300)
    return -0.5 * (np.log(2.0 * math.pi * var) + (y - mean) ** 2 / var)


def assess(
    multi: MultiFidelitySurrogate,
    run_of_row: np.ndarray,
    values: np.ndarray,
    final_rows: np.ndarray,
    anchor_rows: np.ndarray,
) -> FidelityTrust:
    """Score the multi-fidelity GP at the anchor runs' final values, with and without the cheap
    data.

    ``run_of_row`` labels the GP's training rows by run and ``values`` are their values;
    ``final_rows`` are the rows of the anchor runs' final values and ``anchor_rows`` every row at
    the anchor scale (any step).  Both predictions use the same kernel and hyperparameters, so
    the difference is what the cheap runs add, not a better or worse model.
    """
    n = len(final_rows)
    if not can_decide(n):
        return FidelityTrust(n, math.nan, math.nan)
    final_rows = np.asarray(final_rows, dtype=int)
    y = np.asarray(values, dtype=float)[final_rows]
    mean_m, var_m = multi.leave_runs_out(run_of_row, final_rows)
    mean_a, var_a = multi.leave_runs_out(run_of_row, final_rows, among=anchor_rows)
    return FidelityTrust(
        n, float(log_density(y, mean_m, var_m).mean()), float(log_density(y, mean_a, var_a).mean()),
        z_rms(y, mean_m, var_m), z_rms(y, mean_a, var_a),
    )


def z_rms(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Root mean square of the standardized errors: 1 for calibrated predictions."""
    return float(np.sqrt(np.mean((y - mean) ** 2 / np.maximum(var, 1e-300))))
