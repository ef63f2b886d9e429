"""What the study's model predicts for mixtures of your choosing, at the target or any fidelity.

``recommend`` answers one question (which mixture); :func:`predict` answers the next ones: how
good would *this* mixture be at 1B, how sure is the model, and how much would one real run
scatter around that.  The benchmark suite scores these intervals (calibration), so they are a
claim that is checked, not decoration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import optuna

from optuna_adso import seed_replicates
from optuna_adso.extrapolation import std_inflation
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.objectives import MeanLoss, MixtureObjective
from optuna_adso.space import MixtureSpec
from optuna_adso.study_model import SettingsSource, StudyModel
from optuna_adso.surrogate import SurrogateFitError, single_threaded

_SUM_TOL = 1e-6


@dataclass(frozen=True)
class Prediction:
    """The model's belief about one mixture at one fidelity (in the study's own units).

    ``mean`` and ``std``: the expected value of a run and the uncertainty about it (what more
    runs would shrink).  ``noise_std``: how far one observed run scatters around that expected
    value (seed, data order); an interval for a single new run is ``std**2 + noise_std**2``
    wide in variance.
    """

    mixture: dict[str, float]
    mean: float
    std: float
    noise_std: float
    fidelity: dict[str, float]

    def interval(self, level: float = 0.9, *, new_run: bool = False) -> tuple[float, float]:
        """The central ``level`` interval for the expected value, or (``new_run``) for the value
        one new run will report: the expected value's uncertainty plus the run-to-run scatter."""
        return normal_interval(self.mean, self.std, self.noise_std if new_run else 0.0, level)


def normal_interval(mean: float, std: float, noise_std: float, level: float) -> tuple[float, float]:
    """``mean +- z sqrt(std^2 + noise_std^2)`` with ``z`` the normal quantile of ``level``."""
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    half = NormalDist().inv_cdf(0.5 + level / 2.0) * math.sqrt(std * std + noise_std * noise_std)
    return mean - half, mean + half


def _as_rows(mixtures: Any, spec: MixtureSpec) -> np.ndarray:
    """Mixtures as an (n, k) array in the study's domain order, each checked."""
    if isinstance(mixtures, Mapping):
        mixtures = [mixtures]
    if isinstance(mixtures, np.ndarray):
        rows = np.atleast_2d(np.asarray(mixtures, dtype=float))
        if rows.ndim != 2 or rows.shape[1] != spec.k:
            raise ValueError(f"mixtures as an array must be (n, {spec.k}) in the order {list(spec.domains)}, "
                             f"got shape {np.shape(mixtures)}")
    elif isinstance(mixtures, Sequence) and not isinstance(mixtures, (str, bytes)) and mixtures:
        out = []
        for i, m in enumerate(mixtures):
            if not isinstance(m, Mapping):
                raise ValueError(f"mixtures[{i}] must be a dict {{domain: weight}}, got {m!r}")
            names = set(m)
            if names != set(spec.domains):
                missing, unknown = sorted(set(spec.domains) - names), sorted(names - set(spec.domains))
                raise ValueError(f"mixtures[{i}] must give a weight for each of {list(spec.domains)}; "
                                 f"missing {missing}, unknown {unknown}")
            out.append([m[d] for d in spec.domains])
        try:
            rows = np.array(out, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"mixture weights must be numbers, got {mixtures!r}") from None
    else:
        raise ValueError(f"mixtures must be a dict {{domain: weight}}, a non-empty list of them or an (n, k) "
                         f"array, got {mixtures!r}")
    for i, row in enumerate(rows):
        if not np.all(np.isfinite(row)) or np.any(row < 0):
            raise ValueError(f"mixtures[{i}]: weights must be finite and >= 0, got {row.tolist()}")
        if abs(row.sum() - 1.0) > _SUM_TOL:
            raise ValueError(f"mixtures[{i}]: weights must sum to 1, got {row.sum():.6g}")
        if np.any(row < np.array(spec.lower) - _SUM_TOL) or np.any(row > np.array(spec.upper) + _SUM_TOL):
            raise ValueError(f"mixtures[{i}] lies outside the study's declared weight bounds "
                             f"{dict(zip(spec.domains, zip(spec.lower, spec.upper)))}")
    return rows


def _fidelity(model: StudyModel, fidelity: Mapping[str, Any] | None) -> tuple[dict[str, float], tuple[float, float]]:
    """The fidelity asked for, as the user writes it and in model coordinates."""
    target = model.target
    if fidelity is None:
        return target.as_dict(), (0.0, 0.0)
    if not isinstance(fidelity, Mapping):
        raise ValueError(f"fidelity must be None (the target) or a dict like {target.as_dict()}, got {fidelity!r}")
    allowed = {"step"} | ({target.scale_param} if target.scale_param else set())
    unknown = sorted(set(fidelity) - allowed)
    if unknown:
        raise ValueError(f"fidelity names unknown parameters {unknown}; expected {sorted(allowed)}")
    step = float(fidelity.get("step", target.step))
    scale = float(fidelity.get(target.scale_param, target.run_scale)) if target.scale_param else 1.0
    if not (math.isfinite(step) and step > 0 and math.isfinite(scale) and scale > 0):
        raise ValueError(f"fidelity values must be positive numbers, got {dict(fidelity)!r}")
    z = model.axes().z([math.log10(scale)], [math.log10(step)])[0]
    asked = {"step": step} | ({target.scale_param: scale} if target.scale_param else {})
    return asked, (float(z[0]), float(z[1]))


def predict(
    study: optuna.Study,
    mixtures: Mapping[str, float] | Sequence[Mapping[str, float]] | np.ndarray,
    fidelity: Mapping[str, Any] | None = None,
    *,
    sampler: SettingsSource | None = None,
    objective: MixtureObjective | str | None = None,
) -> list[Prediction]:
    """The model's :class:`Prediction` for each mixture, at the target unless ``fidelity`` says
    otherwise (e.g. ``{"model_size": 150e6, "step": 5000}``).

    The GP is conditioned on every observation of the study with its stored hyperparameters (no
    refit), as :func:`~optuna_adso.recommend` does; where the target lies beyond the largest
    runnable scale it is the GP whose mean is a power law with a floor
    (:meth:`~optuna_adso.study_model.StudyModel.fit_stated`).  Bad mixtures (unknown or missing domains,
    negative weights, weights that do not sum to 1) are refused before any compute.
    ``objective``: predict another objective than the study's (see :func:`~optuna_adso.recommend`),
    from the runs' per-domain values.  Where the study's runs share one seed, the seed-to-seed
    scatter its replicates measured is added at the target and the anchor (see
    :mod:`optuna_adso.seed_replicates`).
    """
    model = StudyModel.of(study, sampler)
    if objective is not None:
        model = model.with_objective(objective)
    rows = _as_rows(mixtures, model.spec)
    asked, z = _fidelity(model, fidelity)
    rng = np.random.default_rng([0, model.n_own_trials])
    sampled = model.objective is not None and not model.objective.linear
    fit_model = model.with_objective(MeanLoss()) if sampled else model
    try:
        with single_threaded():
            fitted = fit_model.fit_surrogate(rng, now=len(model.trials), maxiter=0)
            if sampled:  # a non-linear objective: sampled from the joint per-domain model
                posterior = ObjectivePosterior(fit_model.domain_model(fitted, refit_kernel=True), model.objective, model.spec.domains, z)
                mean, std = posterior.moments(rows)
                noise = posterior.noise_std(rows)
                return [
                    Prediction(dict(zip(model.spec.domains, map(float, w))), float(m), float(s), float(n), dict(asked))
                    for w, m, s, n in zip(rows, mean, std, noise)
                ]
    except SurrogateFitError as exc:
        raise ValueError(f"the study has no model to predict with yet ({exc})") from None
    with single_threaded():
        if not model.target_runnable:  # a power law with a floor states values, not a straight line
            fitted, _ = model.stated_or_search(fitted, now=len(model.trials))
        x = np.column_stack([rows, np.broadcast_to(np.array(z), (len(rows), 2))])
        mean, var = fitted.surrogate.predict(x)
        inside, beyond = std_inflation(model, fitted)
    var = var * (beyond if z == (0.0, 0.0) else inside) ** 2
    sign = -1.0 if model.maximize else 1.0
    noise_std = math.sqrt(max(fitted.surrogate.noise_variance, 0.0))
    luck = seed_replicates.shared_luck(model) if z in ((0.0, 0.0), model.anchor_z()) else None
    if luck is not None:  # runs that share one seed: their luck is in every value the GP saw
        var, noise_std = luck.added_to(var, noise_std)
    return [
        Prediction(dict(zip(model.spec.domains, map(float, w))), sign * float(m), math.sqrt(max(float(v), 0.0)),
                   noise_std, dict(asked))
        for w, m, v in zip(rows, mean, var)
    ]


def predict_domains(
    study: optuna.Study,
    mixtures: Mapping[str, float] | Sequence[Mapping[str, float]] | np.ndarray,
    fidelity: Mapping[str, Any] | None = None,
    *,
    sampler: SettingsSource | None = None,
) -> list[dict[str, tuple[float, float]]]:
    """Each mixture's predicted loss on every evaluation domain the runs report, as
    ``{domain: (mean, std)}``, from the joint per-domain model (see :mod:`optuna_adso.domain_model`)."""
    model = StudyModel.of(study, sampler).with_objective(MeanLoss())
    rows = _as_rows(mixtures, model.spec)
    _, z = _fidelity(model, fidelity)
    rng = np.random.default_rng([0, model.n_own_trials])
    try:
        with single_threaded():
            fitted = model.fit_surrogate(rng, now=len(model.trials), maxiter=0)
            domain_model = model.domain_model(fitted, refit_kernel=True)
    except SurrogateFitError as exc:
        raise ValueError(f"the study has no model to predict with yet ({exc})") from None
    return domain_model.summaries(np.column_stack([rows, np.broadcast_to(np.array(z), (len(rows), 2))]))
