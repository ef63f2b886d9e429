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

IMPORTED_EVIDENCE = 3.0
"""Nats the imported runs must add over all the held-out anchor runs together (the log of the
ratio of the two models' held-out likelihoods; 3 nats is odds of 20 to 1) before they are used:
a mean gain over three to six anchor runs is noise.  The paper simulator's misleading 20M swarm
cleared the per-run margin there (0.45 to 0.69 nats per run over 3 to 6 runs, 2.1 to 2.7 in
all) and steered a StackExchange study for six trials; it fell to 0 once the study had 7 runs."""

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
    multi_fidelity_std_factor: float = math.nan  # see latent_inflation, with the cheap data
    anchor_only_std_factor: float = math.nan  # and from the anchor scale's data only

    def inflation(self, anchor_only: bool) -> float:
        """How much wider the model's std of the expected value must be for its held-out anchor
        runs to be covered (at least 1; 1 without a verdict): :func:`latent_inflation` where
        the noise is known, else the z rms of the model answering."""
        if not self.decided:
            return 1.0
        factor = self.anchor_only_std_factor if anchor_only else self.multi_fidelity_std_factor
        if math.isfinite(factor):
            return max(1.0, factor)
        z = self.anchor_only_z_rms if anchor_only else self.multi_fidelity_z_rms
        return max(1.0, z) if math.isfinite(z) else 1.0

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
    noise = multi.noise_variance
    return FidelityTrust(
        n, float(log_density(y, mean_m, var_m).mean()), float(log_density(y, mean_a, var_a).mean()),
        z_rms(y, mean_m, var_m), z_rms(y, mean_a, var_a),
        latent_inflation(y, mean_m, var_m, noise), latent_inflation(y, mean_a, var_a, noise),
    )


def latent_inflation(y: np.ndarray, mean: np.ndarray, var: np.ndarray, noise_var: float) -> float:
    """The factor c >= 1 on the std of the expected value that makes held-out errors standard:
    mean((y - mean)^2 / (c^2 (var - noise) + noise)) = 1.

    ``var`` is the predictive variance of one run (the expected value's plus the run noise).
    Widening that whole variance by the z rms, as before, leaves the expected value's interval
    too narrow wherever the noise is most of it: the excess error is the model's, not the runs'
    (the noise is fitted on every report), so only the model's part is widened.
    """
    y, mean, var = (np.asarray(a, dtype=float) for a in (y, mean, var))
    noise = max(float(noise_var), 0.0) if math.isfinite(noise_var) else 0.0
    latent = np.maximum(var - noise, 1e-12 * np.maximum(var, 1e-300))
    resid2 = (y - mean) ** 2

    def excess(c: float) -> float:
        return float(np.mean(resid2 / (c * c * latent + noise))) - 1.0

    if len(y) == 0 or excess(1.0) <= 0.0:
        return 1.0
    lo, hi = 1.0, 2.0
    while excess(hi) > 0.0 and hi < 1e6:
        lo, hi = hi, hi * 2.0
    for _ in range(60):  # bisection in log space: the excess falls monotonically in c
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) > 0.0 else (lo, mid)
    return hi


def z_rms(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Root mean square of the standardized errors: 1 for calibrated predictions."""
    return float(np.sqrt(np.mean((y - mean) ** 2 / np.maximum(var, 1e-300))))


# -- imported runs ---------------------------------------------------------------------------------
# Runs imported from elsewhere (a swarm of small proxies, earlier ablations) are cheap data the
# study did not choose: a swarm at a scale whose best mixture is not the target's pulls the
# model's target landscape towards its own optimum (the paper simulator's 20M optimum is 47-65%
# of the uniform-optimum gap off at 1B).  They must earn their place like the study's own cheap
# runs, against the study's own data this time: the GP with them and the GP without them (each
# with its own hyperparameters) predict the study's complete anchor runs, held out.


@dataclass(frozen=True)
class ImportedTrust:
    """The verdict on imported runs below the anchor scale: held-out mean log density per
    complete anchor run from the model with them, from the model of the study's own runs, and
    from the anchor's runs alone (the model with them, conditioned on the anchor rows only)."""

    n_runs: int
    with_imported_score: float
    own_score: float
    anchor_only_score: float = math.nan

    @property
    def decided(self) -> bool:
        return can_decide(self.n_runs)

    @property
    def gain(self) -> float:
        """What the imported runs add to the prediction of an anchor run, in nats per run, over
        the better of the study's own model and the anchor's runs alone."""
        rival = self.own_score if math.isnan(self.anchor_only_score) else max(self.own_score, self.anchor_only_score)
        return self.with_imported_score - rival

    @property
    def earned(self) -> bool:
        """The imported runs predict the anchor runs better than the study's own data and the
        anchor's runs alone.  Beating the own model is not enough: early on it can be much worse
        than either (few runs, overconfident), and a swarm that only beat it steered studies into
        target-only BO's results.  No verdict yet: not earned, since a study must not be misled
        more than its own runs would mislead it (until then it is the study a cold start would be)."""
        return self.decided and self.gain > EARN_MARGIN and self.n_runs * self.gain > IMPORTED_EVIDENCE

    def describe(self) -> str:
        if not self.decided:
            return (f"{self.n_runs} own complete anchor run(s): imported runs below the anchor scale "
                    "are left out until they can be tested")
        verdict = "are used" if self.earned else "are left out"
        return (f"imported runs below the anchor scale {verdict}: held-out log density per anchor run "
                f"{self.with_imported_score:.3f} with them vs {self.own_score:.3f} from the study's own runs and "
                f"{self.anchor_only_score:.3f} from the anchor's runs alone ({self.n_runs} runs)")


def held_out_score(multi: MultiFidelitySurrogate, run_of_row: np.ndarray, values: np.ndarray,
                   final_rows: np.ndarray, among: np.ndarray | None = None) -> float:
    """Mean log predictive density of the ``final_rows`` (one per run), each predicted from the
    other runs' rows (only those in ``among``, if given) with its own run's reports left out."""
    final_rows = np.asarray(final_rows, dtype=int)
    mean, var = multi.leave_runs_out(run_of_row, final_rows, among=among)
    return float(log_density(np.asarray(values, dtype=float)[final_rows], mean, var).mean())


def assess_imported(
    with_imported: tuple[MultiFidelitySurrogate, np.ndarray, np.ndarray, np.ndarray],
    own: tuple[MultiFidelitySurrogate, np.ndarray, np.ndarray, np.ndarray],
    anchor_rows: np.ndarray | None = None,
) -> ImportedTrust:
    """Score the models at the complete anchor runs.

    Each argument is (GP, run label of each training row, values of the training rows, rows of
    the anchor runs' final values); both name the same runs' final rows, in their own row order.
    ``anchor_rows``: the rows of ``with_imported`` at the anchor scale, for the anchor-only score.
    """
    n = len(own[3])
    if not can_decide(n) or len(with_imported[3]) != n:
        return ImportedTrust(n, math.nan, math.nan)
    anchor_only = math.nan if anchor_rows is None else held_out_score(*with_imported, among=anchor_rows)
    return ImportedTrust(n, held_out_score(*with_imported), held_out_score(*own), anchor_only)
