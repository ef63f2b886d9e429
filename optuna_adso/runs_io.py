"""Runs in and out of files: start a study from ablations you already have, take its runs away.

Nobody starts a mixture search from nothing.  :func:`add_runs` turns earlier runs (a CSV, JSON
Lines or Parquet file, or a list of dicts) into finished trials of a study, with the parameters,
reports and declarations a trial of this package has, so that :class:`~optuna_adso.ADSOSampler`
and :func:`~optuna_adso.recommend` use them like any other run.  Every run is checked before
anything is written: a bad file adds nothing.  An imported trial is marked (user attribute
``adso:imported``) and carries a content hash, so importing the same file twice adds nothing.
:func:`export_runs` writes a study's runs in the same long format.

The long format is one row per (run, step)::

    run,step,value,mix/web,mix/code,mix/books,model_size
    a,100,3.91,0.5,0.3,0.2,20M
    a,1000,3.20,0.5,0.3,0.2,20M

- ``run``: the run's id.  ``step`` or ``tokens`` (converted with ``tokens_per_step``, an argument
  or a column); ``value``: the objective at that step (NaN rows are skipped with a warning).
- the mixture: ``<mixture name>/<domain>`` columns, columns named after the declared domains,
  or a JSON column ``mixture``; weights >= 0 summing to 1 (within 1e-3).
- the scale: a ``<scale name>`` or ``scale`` column, a number or a name like ``"20M"``/``"1.5B"``.
- optional: ``domain/<name>`` per-domain values, ``cost`` (the run's cost, as the source counted it).

JSON Lines also take one line per run: ``{"run": ..., "mixture": {...}, "model_size": ...,
"steps": [...], "values": [...], "domain_values": [{...}, ...]}`` (``tokens`` for ``steps``).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from optuna_adso import records
from optuna_adso.run_rows import DOMAIN_PREFIX, Run, parse_scale, read_runs
from optuna_adso.runs_files import FORMATS, read_rows, rows_to_text, write_rows
from optuna_adso.simplex import fix_rounding
from optuna_adso.space import (
    MixtureSpec,
    ScaleSpec,
    make_mixture_spec,
    make_scale_spec,
    mixture_specs_from_attrs,
    scale_specs_from_attrs,
    trial_weights,
)
from optuna_adso.study_model import read_study

__all__ = ["ImportReport", "Run", "add_runs", "export_runs", "parse_scale", "read_runs"]

SUM_TOLERANCE = 1e-3
"""An imported mixture's weights must sum to 1 within this (they are then normalized)."""

DOMAIN_LOSS_ATTR = "val_losses"  # what the domain-loss plot reads (optuna_adso.visualization)


# --- what an import did -----------------------------------------------------------------------


@dataclass
class ImportReport:
    """What :func:`add_runs` did (or, with ``dry_run``, would do)."""

    source: str
    dry_run: bool
    runs: list[str] = field(default_factory=list)  # ids of the runs imported (or to import)
    trial_numbers: list[int] = field(default_factory=list)  # the trials added (none in a dry run)
    duplicates: list[str] = field(default_factory=list)  # already in the study, or twice in the input
    empty: list[str] = field(default_factory=list)  # no finite value left
    n_points: int = 0
    n_nan: int = 0

    def __str__(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        lines = [f"{verb} {len(self.runs)} runs ({self.n_points} reported points) from {self.source}"]
        if self.runs:
            shown = ", ".join(self.runs[:20]) + (" ..." if len(self.runs) > 20 else "")
            lines.append(f"  runs: {shown}")
        if self.duplicates:
            lines.append(f"  skipped {len(self.duplicates)} duplicates (already in the study or repeated): "
                         + ", ".join(self.duplicates[:20]))
        if self.empty:
            lines.append(f"  skipped {len(self.empty)} runs with no finite value: " + ", ".join(self.empty[:20]))
        if self.n_nan:
            lines.append(f"  skipped {self.n_nan} NaN or infinite values")
        return "\n".join(lines)


# --- runs -> trials ------------------------------------------------------------------------------


def _resolve_mixture(study: optuna.Study, name: str, domains: Sequence[str] | None, runs: Sequence[Run]) -> tuple[MixtureSpec, bool]:
    """The study's declared mixture ``name``, or a new one over ``domains`` (else the runs'
    domains in order of appearance); True when it must be declared."""
    view_specs = {s.name: s for s in _declared_mixtures(study)}
    if name in view_specs:
        spec = view_specs[name]
        if domains is not None and set(domains) != set(spec.domains):
            raise ValueError(
                f"domains={list(domains)} differ from the study's declared mixture {name!r} {list(spec.domains)}"
            )
        return spec, False
    if domains is None:
        domains = list(dict.fromkeys(d for r in runs for d in r.mixture))
    return make_mixture_spec(name, list(domains)), True


def _declared_mixtures(study: optuna.Study) -> list[MixtureSpec]:
    return mixture_specs_from_attrs(records.study_attrs(study))


def _resolve_scale(study: optuna.Study, name: str, scales: Sequence[Any] | None, runs: Sequence[Run],
                   scale_names: Mapping[str, float] | None) -> tuple[ScaleSpec | None, bool]:
    declared = {s.name: s for s in scale_specs_from_attrs(records.study_attrs(study))}
    if declared and name not in declared:
        raise ValueError(f"scale_name={name!r}, but the study declares the scale {sorted(declared)}")
    with_scale = [r for r in runs if r.scale is not None]
    if not with_scale:
        if name in declared:
            raise ValueError(
                f"the runs give no scale (a column {name!r} or 'scale'), but the study declares scale "
                f"{name!r} with choices {list(declared[name].choices)}"
            )
        return None, False
    missing = [r.run_id for r in runs if r.scale is None]
    if missing:
        raise ValueError(f"runs {missing[:10]} give no scale while others do (column {name!r} or 'scale')")
    if name in declared:
        return declared[name], False
    if scales is not None:
        return make_scale_spec(name, [parse_scale(s, scale_names) for s in scales]), True
    return make_scale_spec(name, sorted({r.scale for r in with_scale if r.scale is not None})), True


def _check_weights(run: Run, spec: MixtureSpec) -> np.ndarray:
    """The run's weights in the spec's domain order, checked and normalized."""
    unknown = [d for d in run.mixture if d not in spec.domains]
    if unknown:
        raise ValueError(
            f"run {run.run_id!r} ({run.where}): unknown domains {unknown}; mixture {spec.name!r} "
            f"has domains {list(spec.domains)}"
        )
    w = np.array([run.mixture.get(d, 0.0) for d in spec.domains], dtype=float)
    for d, x in zip(spec.domains, w):
        if not (math.isfinite(x) and x >= 0):
            raise ValueError(f"run {run.run_id!r} ({run.where}): the weight of {d!r} must be finite and >= 0, got {x!r}")
    total = float(w.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"run {run.run_id!r} ({run.where}): mixture weights sum to {total:.6g}, expected 1 "
            f"(within {SUM_TOLERANCE:g})"
        )
    if abs(total - 1.0) > 1e-9:
        w = w / total
    lower, upper = np.array(spec.lower), np.array(spec.upper)
    for d, x, lo, hi in zip(spec.domains, w, lower, upper):
        if not lo - 1e-9 <= x <= hi + 1e-9:
            raise ValueError(
                f"run {run.run_id!r} ({run.where}): the weight of {d!r} is {x:.6g}, outside the "
                f"declared bounds [{lo:g}, {hi:g}] of mixture {spec.name!r}"
            )
    return fix_rounding(w, lower, upper)[0] if abs(total - 1.0) > 1e-9 else w


def _check_scale(run: Run, scale: ScaleSpec | None) -> float | None:
    if scale is None or run.scale is None:
        return None
    for c in scale.choices:
        if math.isclose(run.scale, c, rel_tol=1e-9):
            return c
    raise ValueError(
        f"run {run.run_id!r} ({run.where}): scale {run.scale_label!r} ({run.scale:g} parameters) is not "
        f"one of the declared choices of {scale.name!r}: {[f'{c:g}' for c in scale.choices]} "
        "(pass scale_names={name: parameters} when the file names scales differently)"
    )


def content_hash(weights: Sequence[float], scale: float | None, reports: Mapping[int, float]) -> str:
    """What makes two runs the same run: mixture (to 8 decimals), scale and every report."""
    data = {
        "w": [round(float(x), 8) + 0.0 for x in weights],
        "s": None if scale is None else float(scale),
        "r": [[int(s), float(f"{reports[s]:.12g}")] for s in sorted(reports)],
    }
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]


def _trial_hash(t: FrozenTrial, spec: MixtureSpec, scale: ScaleSpec | None) -> str | None:
    stored = records.import_hash(t)
    if stored is not None:
        return stored
    w = trial_weights(t, spec)
    if w is None:
        return None
    s = t.params.get(scale.name) if scale is not None else None
    reports = {int(k): float(v) for k, v in t.intermediate_values.items() if v is not None and math.isfinite(v)}
    return content_hash(w, None if s is None else float(s), reports)


def _frozen_trial(run: Run, w: np.ndarray, scale_value: float | None, spec: MixtureSpec,
                  scale: ScaleSpec | None, source: str, digest: str) -> FrozenTrial:
    params: dict[str, Any] = {spec.param_name(d): float(x) for d, x in zip(spec.domains, w)}
    dists: dict[str, Any] = {
        spec.param_name(d): FloatDistribution(lo, hi) for d, lo, hi in zip(spec.domains, spec.lower, spec.upper)
    }
    if scale is not None and scale_value is not None:
        params[scale.name] = scale_value
        dists[scale.name] = CategoricalDistribution(list(scale.choices))
    user, system = records.import_attrs(source, run.run_id, digest, run.domain_values, run.cost)
    user[spec.name] = {d: float(x) for d, x in zip(spec.domains, w)}
    last = max(run.reports)
    if last in run.domain_values:
        user[DOMAIN_LOSS_ATTR] = dict(run.domain_values[last])
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=run.reports[last], params=params, distributions=dists,
        user_attrs=user, system_attrs=system, intermediate_values=dict(sorted(run.reports.items())),
    )


def _input_rows(runs: Any, fmt: str | None) -> tuple[list[tuple[str, Mapping[str, Any]]], str]:
    """``(where, row)`` pairs and a source id from a path, a DataFrame or a list of dicts."""
    if isinstance(runs, (str, Path)):
        return read_rows(runs, fmt), Path(runs).name
    if hasattr(runs, "to_dict") and not isinstance(runs, Mapping):  # a pandas DataFrame
        runs = runs.to_dict("records")
    if isinstance(runs, Mapping) or not isinstance(runs, Iterable):
        raise TypeError(f"runs must be a file path, a DataFrame or a list of dicts, got {type(runs).__name__}")
    rows = []
    for i, row in enumerate(runs):
        if not isinstance(row, Mapping):
            raise TypeError(f"runs[{i}] must be a dict, got {type(row).__name__}")
        rows.append((f"runs[{i}]", row))
    return rows, "records"


def _study_names(study: optuna.Study, mixture_name: str | None, scale_name: str | None) -> tuple[str, str, tuple[str, ...]]:
    """(mixture name, scale name, declared domains): the study's own names by default; a name the
    study does not declare next to one it does is refused (one mixture, one scale per study)."""
    mixtures = {s.name: s for s in _declared_mixtures(study)}
    scales = [s.name for s in scale_specs_from_attrs(records.study_attrs(study))]
    if mixture_name is None:
        mixture_name = next(iter(mixtures)) if len(mixtures) == 1 else "mix"
    if scale_name is None:
        scale_name = scales[0] if len(scales) == 1 else "model_size"
    if mixtures and mixture_name not in mixtures:
        raise ValueError(
            f"mixture_name={mixture_name!r}, but the study declares the mixture {sorted(mixtures)}; "
            "ADSOSampler optimizes one mixture per study"
        )
    return mixture_name, scale_name, mixtures[mixture_name].domains if mixture_name in mixtures else ()


def add_runs(
    study: optuna.Study,
    runs: Any,
    *,
    mixture_name: str | None = None,
    scale_name: str | None = None,
    domains: Sequence[str] | None = None,
    scales: Sequence[Any] | None = None,
    scale_names: Mapping[str, float] | None = None,
    tokens_per_step: float | None = None,
    format: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Add runs you already have to ``study`` as finished trials; returns what was added.

    Args:
        runs: a CSV, JSON Lines or Parquet file (see this module's docstring for the columns), a
            pandas DataFrame, or a list of row dicts.
        mixture_name: the name the objective passes to ``suggest_mixture`` (default: the
            study's declared mixture, else ``"mix"``).
        scale_name: the name the objective passes to ``suggest_scale`` (default: the study's
            declared scale, else ``"model_size"``).
        domains: the mixture's domains, when the study declares none yet (default: those the
            runs use).  Pass the ones the objective will declare, or import after its first
            trial, or later trials refuse the declaration.
        scales: the scale choices (numbers or names like ``"20M"``), when the study declares
            none yet (default: those the runs use); the same caveat.
        scale_names: scale names in the file and their parameter counts (``{"tiny": 3.2e6}``);
            names like ``"20M"`` are parsed without it.
        tokens_per_step: turns a ``tokens`` column into steps.
        format: ``"csv"``, ``"jsonl"`` or ``"parquet"`` (default: from the file's suffix).
        source: the id stored in each trial's ``adso:imported`` (default: the file's name).
        dry_run: check everything and report what would be imported; write nothing.

    Raises:
        ValueError: naming the run and row, for a bad mixture (weights not >= 0, not summing to
            1, unknown domains), a scale that is not a declared choice, steps and tokens mixed,
            or tokens without ``tokens_per_step``.  Nothing is added then.
    """
    rows, default_source = _input_rows(runs, format)
    source = source or default_source
    mixture_name, scale_name, declared_domains = _study_names(study, mixture_name, scale_name)
    known_domains = tuple(domains) if domains is not None else declared_domains
    parsed, n_nan = read_runs(rows, mixture_name=mixture_name, scale_name=scale_name, domains=known_domains,
                              scale_names=scale_names, tokens_per_step=tokens_per_step)
    report = ImportReport(source, dry_run, n_nan=n_nan)
    report.empty = [r.run_id for r in parsed if not r.reports]
    parsed = [r for r in parsed if r.reports]
    if not parsed:
        raise ValueError(f"{source}: no run with a finite value to import")
    spec, declare_spec = _resolve_mixture(study, mixture_name, domains, parsed)
    scale, declare_scale = _resolve_scale(study, scale_name, scales, parsed, scale_names)
    checked = [(r, _check_weights(r, spec), _check_scale(r, scale)) for r in parsed]  # all, before any write
    seen = {h for h in (_trial_hash(t, spec, scale) for t in records.all_trials(study)) if h is not None}
    todo = []
    for run, w, s in checked:
        digest = content_hash(w, s, run.reports)
        if digest in seen:
            report.duplicates.append(run.run_id)
            continue
        seen.add(digest)
        todo.append(_frozen_trial(run, w, s, spec, scale, source, digest))
        report.runs.append(run.run_id)
        report.n_points += len(run.reports)
    if n_nan:
        empty = f"; runs left with no finite value, skipped: {report.empty[:10]}" if report.empty else ""
        warnings.warn(f"{source}: skipped {n_nan} NaN or infinite values{empty}", stacklevel=2)
    if dry_run:
        return report
    if declare_spec:
        records.declare_mixture(study, spec.name, spec.domains, spec.lower, spec.upper)
    if declare_scale and scale is not None:
        records.declare_scale(study, scale.name, scale.choices)
    for trial in todo:
        study.add_trial(trial)
    numbers = {records.import_hash(t): t.number for t in records.all_trials(study) if records.is_imported(t)}
    report.trial_numbers = [numbers[records.import_hash(t)] for t in todo]
    return report


# --- trials -> rows ------------------------------------------------------------------------------


def _trial_rows(t: FrozenTrial, run_id: str, spec: MixtureSpec, scale: ScaleSpec | None,
                target_step: float | None) -> list[dict[str, Any]]:
    w = trial_weights(t, spec)
    if w is None or t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return []
    reports = {int(k): float(v) for k, v in t.intermediate_values.items() if v is not None and math.isfinite(v)}
    if not reports and t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
        if target_step is None:
            warnings.warn(f"trial {t.number} reported no step and the study stores no target step; not exported",
                          stacklevel=3)
            return []
        reports = {int(target_step): float(t.value)}
    per_domain = records.domain_values(t)
    final_domains = t.user_attrs.get(DOMAIN_LOSS_ATTR)
    if reports and isinstance(final_domains, Mapping) and max(reports) not in per_domain:
        per_domain[max(reports)] = {str(k): float(v) for k, v in final_domains.items()}
    cost = records.run_cost(t)
    rows = []
    for step in sorted(reports):
        row: dict[str, Any] = {"run": run_id, "step": step, "value": reports[step]}
        row.update({spec.param_name(d): float(x) for d, x in zip(spec.domains, w)})
        if scale is not None:
            row[scale.name] = t.params.get(scale.name)
        row.update({DOMAIN_PREFIX + d: v for d, v in per_domain.get(step, {}).items()})
        if cost is not None:
            row["cost"] = cost
        row["trial"] = t.number
        row["state"] = t.state.name.lower()
        rows.append(row)
    return rows


def runs_to_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """The long-format rows of every finished (complete or pruned) run of ``study``."""
    view = read_study(study)
    if view is None:
        raise ValueError(f"study {study.study_name!r} declares no mixture yet: it has no runs to export")
    config = records.read_config(records.study_attrs(study))
    target_step = float(config["target"]["step"]) if config else None
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for t in sorted(view.trials, key=lambda t: t.number):
        run_id = records.imported_run_id(t)
        if run_id is None or run_id in used:
            run_id = f"trial-{t.number}"
        trial_rows = _trial_rows(t, run_id, view.spec, view.scale, target_step)
        if trial_rows:
            used.add(run_id)
            rows.extend(trial_rows)
    return rows


def export_runs(study: optuna.Study, path_or_format: str | Path) -> str:
    """Write the study's runs in the long format :func:`add_runs` reads.

    ``path_or_format``: a file path (format from its suffix: .csv, .jsonl, .parquet), whose path
    is returned; or ``"csv"``/``"jsonl"``, whose text is returned.
    """
    rows = runs_to_rows(study)
    if isinstance(path_or_format, str) and path_or_format in FORMATS:
        return rows_to_text(rows, path_or_format)
    return str(write_rows(rows, path_or_format))
