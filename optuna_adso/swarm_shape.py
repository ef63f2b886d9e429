"""What a swarm of imported small runs teaches even where its values mislead: the loss surface's shape.

A swarm (RegMix's 256 small proxies, an earlier project's ablations) is tested before its values
enter the study's model (see :mod:`optuna_adso.fidelity_trust`), and on the paper simulator a 20M
swarm never passes: the target's optimum of the mean of seven domain losses lies at the swarm's
42nd percentile.  Yet which domains move the loss, and how sharply, carries over from scale to
scale far better than where the optimum lies: fitted on the same 256 mixtures, the mixture
kernel's lengthscales at 20M and at the top scale differ by a factor 1.2 to 2.2 (rms log ratio),
while a GP on a handful of target runs can only guess them.

So the swarm's lengthscales centre the prior of the multi-fidelity GPs the study fits
(:data:`~optuna_adso.surrogate.SHAPE_LOG_SD` wide) until the study has three complete anchor
runs, when the held-out test can first judge the cheap data; later fits start from what the early
ones stored, under the kind's own prior.  The anchor-only GP, the hedge that proposes while cheap
data has not earned its place, keeps GPSampler's prior: the hedge is target-only BO, and a bet on
the swarm there sent one mean-CE study in twenty into the 0.05 trap that a cold study escapes.
Kept on for the whole study, the prior cost a world whose own cheap runs teach the lengthscales
(synth-05) its median and tail; so even early it is tested as imported values are
(:func:`shape_holds`): at each early refit the GP is fitted with and without it, and the shaped
one is dropped where it predicts the study's own runs, each held out, worse by more than the
margin the cheap fidelities must clear.  On synth-05 that halved the 90th percentile of ten seeds
(0.0174 to 0.0087) and changed nothing on the paper simulator's two problems.
"""

from __future__ import annotations

import numpy as np

from optuna_adso.fidelity_trust import EARN_MARGIN, MIN_ANCHOR_RUNS, held_out_score
from optuna_adso.surrogate import MultiFidelitySurrogate, SurrogateFitError, mixture_kernel, target_inputs

MIN_SWARM_RUNS = 32
"""Fewer imported runs at one scale than this teach no shape: a GP on them guesses as much as
the study's own."""


def swarm_shape(weights: np.ndarray, values: np.ndarray, *, max_points: int = 400) -> np.ndarray | None:
    """Lengthscales (one per domain) of a mixture-only GP fitted to a swarm's final values at one
    scale; None with fewer than :data:`MIN_SWARM_RUNS` finite runs or where the fit fails.

    The first ``max_points`` finite runs are used (the fit is cubic in their number), in the
    order given, so that the answer depends on the data only.
    """
    weights = np.asarray(weights, dtype=float)
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values) & np.all(np.isfinite(weights), axis=1)
    weights, values = weights[finite][:max_points], values[finite][:max_points]
    if len(values) < MIN_SWARM_RUNS or float(np.std(values)) <= 0.0:
        return None
    try:
        gp = MultiFidelitySurrogate("mixture").fit(target_inputs(weights), values, n_weights=weights.shape[1])
    except SurrogateFitError:
        return None
    assert gp.model is not None
    lengthscales = mixture_kernel(gp.model.covar_module).lengthscale.detach().numpy().ravel()
    return lengthscales.astype(float) if np.all(np.isfinite(lengthscales)) else None


def shape_holds(
    shaped: MultiFidelitySurrogate,
    plain: MultiFidelitySurrogate,
    run_of_row: np.ndarray,
    values: np.ndarray,
    final_rows: np.ndarray,
) -> bool:
    """Whether the GP fitted under the swarm's shape predicts the study's own runs about as well
    as the GP fitted without it, worse by at most :data:`~optuna_adso.fidelity_trust.EARN_MARGIN`
    nats per run: the mean log density of each run's last report (``final_rows``, training rows
    of both) from every other run's rows (block leave-one-run-out, each GP with its own
    hyperparameters).  The margin keeps noise from deciding: most early verdicts differ by 0.0 to
    0.1 nats.  With fewer than three runs to score there is no verdict and the shape stands: a GP
    on two runs' reports guesses its lengthscales as much as the swarm does.
    """
    final_rows = np.asarray(final_rows, dtype=int)
    if len(final_rows) < MIN_ANCHOR_RUNS:
        return True
    loss = held_out_score(plain, run_of_row, values, final_rows) - held_out_score(shaped, run_of_row, values, final_rows)
    return loss <= EARN_MARGIN
