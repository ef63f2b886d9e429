"""``adso.report``: Optuna's ``trial.report`` plus the per-domain losses behind the value.

The aggregate is what Optuna, its pruners and the dashboard see; the per-domain values are stored
beside it in the trial (one user attribute per step), where the sampler, :func:`recommend` and
:func:`predict` read them to answer for any :mod:`~optuna_adso.objectives` objective.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import optuna

from optuna_adso import records


def _clean_domains(domains: Mapping[str, float], step: int) -> dict[str, float]:
    if not isinstance(domains, Mapping):
        raise ValueError(f"domains must be a dict {{domain name: loss}}, got {domains!r}")
    clean: dict[str, float] = {}
    dropped = []
    for name, v in domains.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"domains: names must be non-empty strings, got {name!r}")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"domains[{name!r}] must be a number, got {v!r}") from None
        if math.isfinite(x):
            clean[name] = x
        else:
            dropped.append(name)
    if dropped:
        warnings.warn(
            f"step {step}: ignored non-finite per-domain values for {dropped}; the other domains are kept",
            stacklevel=3,
        )
    return clean


def report(trial: optuna.Trial, value: float | Sequence[float] | None, step: int,
           domains: Mapping[str, float] | None = None) -> None:
    """Report ``value`` at ``step`` (as ``trial.report``) and, if given, each domain's loss there.

    ``domains`` maps evaluation-domain names to losses; non-finite ones are dropped with a warning
    (the rest of the report stands), so one diverged domain never corrupts the model.

    In a multi-objective study Optuna keeps no intermediate values (``trial.report`` refuses
    them), so only the per-domain values are stored, and they are required: the sampler computes
    every objective from them.  ``value`` is then ignored (None, or the objectives' values).
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    multi = len(trial.study.directions) > 1
    if multi and not domains:
        raise ValueError(
            "this study has several objectives, and Optuna stores no intermediate values for them: "
            "report each domain's loss, optuna_adso.report(trial, None, step, domains={name: loss})"
        )
    clean = None if domains is None else _clean_domains(domains, step)
    if not multi:
        trial.report(value, step)
    if clean:
        records.write_domain_values(trial, step, clean)
