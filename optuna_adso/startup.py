"""The startup design: the runs a study makes before its model is trusted.

The uniform mixture first, then each run as far from every held mixture as a few hundred draws
allow (with a candidate pool: its members only, the one nearest uniform first); scales are
visited in turn, big ones stopped early when stops are planned.  Independent draws cluster in the
middle of the simplex, where mixtures differ little: a model fitted on them learns that mixtures
hardly matter and then only crawls around its first good point.

The anchor's (top runnable scale's) first run is the uniform mixture too, not a far draw.  Far
draws are vertices and faces, at the anchor often several times the uniform-optimum gap off;
while the cheap scales have not earned their place the anchor's own runs are the whole model
(target-only BO), and one central run there anchors it, gives the recommendation a safe
incumbent and shows the uniform mixture at two scales.  On the never-loses suite's runnable
worlds whose small scales mislead or say nothing it cut the median final regret by 30-50% on
five of seven (synth-00, -09, -10, -11, -13) and raised it on two (synth-16, -18), and it slowed
synth-05, whose small scales teach (docs/benchmarks-history.md, 2026-12-05).
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from optuna_adso import records
from optuna_adso.acquisition import Fidelity, Proposal
from optuna_adso.pool import nearest_member
from optuna_adso.simplex import project_to_bounded_simplex, sample_simplex
from optuna_adso.study_model import HOLDING_STATES, StudyModel

STARTUP_MAX_RELATIVE_COST = 0.25
"""A startup run at a big scale stops where it has cost this many target runs, if it can."""


def n_startup(model: StudyModel, n_startup_trials: int | None) -> int:
    """The number of startup runs: as configured, or one per scale and at least 3."""
    if n_startup_trials is not None:
        return n_startup_trials
    return max(3, len(model.scale.choices) if model.scale is not None else 0)


def startup_weights(study: optuna.Study, trial: FrozenTrial, model: StudyModel, rng: np.random.Generator) -> np.ndarray:
    """This startup trial's mixture: the uniform one first, and again at the anchor's first run;
    otherwise, of candidates drawn from ``rng``, the one farthest from every mixture another run
    holds.

    Stored on the trial, so that every parameter of it (and a retry) agrees.
    """
    stored = records.startup_weights(study, trial)
    if stored is not None:
        return np.array(stored, dtype=float)
    spec = model.spec
    uniform = np.full(spec.k, 1.0 / spec.k)
    if spec.has_bounds:
        uniform = project_to_bounded_simplex(uniform[None], np.array(spec.lower), np.array(spec.upper))[0]
    pool = spec.pool
    if pool is not None:  # a pool: its member nearest the uniform mixture first
        uniform = pool[nearest_member(pool, uniform)[0]]
    # where the study has cheaper scales, its first run (uniform) is at the smallest one
    at_anchor = len(model.scale_choices) > 1 and math.isclose(startup_fidelity(trial, model).scale, model.anchor_scale)
    held = []
    anchor_holds_uniform = False
    earlier = False
    for other in model.trials:
        if other.number == trial.number or other.state not in HOLDING_STATES or model.is_borrowed(other):
            continue  # imported small runs: the startup a cold study makes (see fit_surrogate)
        earlier = earlier or other.number < trial.number
        point = model.held_points[other.number]
        other_start = records.stored_startup_weights(other)
        if point is not None:
            held.append(point.weights)
            anchor_holds_uniform = anchor_holds_uniform or (
                math.isclose(point.scale, model.anchor_scale) and np.abs(point.weights - uniform).max() <= 1e-7)
        elif other_start is not None:
            held.append(np.array(other_start, dtype=float))
    if not held and earlier:
        # Workers starting at once: an earlier trial that holds nothing yet is taking the uniform
        # mixture, so this one keeps away from it rather than run it twice.
        held.append(uniform)
    if at_anchor and not anchor_holds_uniform:
        w = uniform  # the first run where it counts is the safe default, and a point shared with a cheap scale
    elif held:
        cands = pool if pool is not None else sample_simplex(rng, 256, spec, face_fraction=0.0)
        gaps = np.linalg.norm(cands[:, None, :] - np.asarray(held)[None, :, :], axis=2).min(axis=1)
        w = cands[int(np.argmax(gaps))]
    else:
        w = uniform
    records.write_startup_weights(study, trial, w)
    return w


def startup_fidelity(trial: FrozenTrial, model: StudyModel) -> Fidelity:
    """Startup runs visit every scale in turn, big ones stopped early (when stops are planned)."""
    fids = model.fidelities()
    scales = sorted({f.scale for f in fids})
    # counted among the study's own trials, so a warm start visits the scales as a cold one does
    n_borrowed = sum(1 for t in model.trials if t.number < trial.number and model.is_borrowed(t))
    scale = scales[(trial.number - n_borrowed) % len(scales)]
    options = [f for f in fids if f.scale == scale]
    affordable = [f for f in options if f.relative_cost <= STARTUP_MAX_RELATIVE_COST]
    return max(affordable, key=lambda f: f.step) if affordable else min(options, key=lambda f: f.step)


def startup_proposal(study: optuna.Study, trial: FrozenTrial, model: StudyModel, rng: np.random.Generator) -> Proposal:
    fid = startup_fidelity(trial, model)
    return Proposal(startup_weights(study, trial, model, rng), fid, 0.0, math.nan, math.nan, basis="startup")
