"""Rows -> runs: parse and check each row of a runs file (see :mod:`optuna_adso.runs_io`).

A row is a plain dict (from :mod:`optuna_adso.runs_files`, a DataFrame or a list); a run is its
mixture and scale as written and its reports by step.  Each error names the row ("runs.csv
line 6") so that a user can fix the file; checks against the study (domains, scale choices,
sums) come later, in :mod:`optuna_adso.runs_io`, once every run is read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DOMAIN_PREFIX", "Run", "parse_scale", "read_runs"]

DOMAIN_PREFIX = "domain/"
_SCALE_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_SCALE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


# --- what a run is -------------------------------------------------------------------------------


@dataclass
class Run:
    """One run read from a file: mixture and scale as written, reports by step."""

    run_id: str
    where: str  # the rows it came from, for error messages
    mixture: dict[str, float]
    scale: float | None
    scale_label: str | None
    reports: dict[int, float] = field(default_factory=dict)
    domain_values: dict[int, dict[str, float]] = field(default_factory=dict)
    cost: float | None = None


# --- parsing cells ---------------------------------------------------------------------------------


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: {what} must be a number, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: {what} must be a number, got {value!r}")


def parse_scale(value: Any, names: Mapping[str, float] | None = None) -> float:
    """A scale in parameters: a number, a numeric string, a name in ``names``, or a name like
    ``"20M"``, ``"1.5B"``, ``"350k"``; ValueError otherwise."""
    if names and isinstance(value, str) and value in names:
        return float(names[value])
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        out = float(value)
    else:
        m = _SCALE_RE.match(str(value)) if isinstance(value, str) else None
        if m is None:
            raise ValueError(
                f"scale {value!r} is neither a number nor a name like '20M' or '1.5B' "
                "(pass scale_names={name: parameters} for other names)"
            )
        out = float(m.group(1)) * _SCALE_UNITS[m.group(2).lower()]
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"scale {value!r} must be a positive, finite number of parameters")
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- rows -> runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """How a file names things: the mixture prefix, the scale column, the known domains."""

    mixture_name: str
    scale_name: str
    domains: tuple[str, ...]
    scale_names: Mapping[str, float] | None
    tokens_per_step: float | None


def _row_mixture(row: Mapping[str, Any], cols: _Columns, where: str) -> dict[str, float]:
    raw = row.get("mixture")
    if not _is_missing(raw):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(f"{where}: column 'mixture' is not JSON: {raw!r}") from None
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: column 'mixture' must be a dict domain -> weight, got {raw!r}")
        return {str(d): _number(w, where, f"the weight of {d!r}") for d, w in raw.items()}
    prefix = cols.mixture_name + "/"
    found = {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}
    if not found:
        found = {d: row[d] for d in cols.domains if d in row}
    if not found:
        bare = f", or columns named after the domains {list(cols.domains)}" if cols.domains else ""
        raise ValueError(
            f"{where}: no mixture: give columns '{prefix}<domain>', a JSON column 'mixture'{bare}"
        )
    # an empty cell is a domain the run did not use (0); NaN is an error, reported with its run
    return {d: (0.0 if v is None else _number(v, where, f"the weight of {d!r}")) for d, v in found.items()}


def _row_scale(row: Mapping[str, Any], cols: _Columns, where: str) -> tuple[float | None, str | None]:
    raw = row.get(cols.scale_name, row.get("scale"))
    if _is_missing(raw):
        return None, None
    try:
        return parse_scale(raw, cols.scale_names), str(raw)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _to_step(step: Any, tokens: Any, tps: Any, where: str) -> int:
    """One report's step, from ``step`` or from ``tokens / tokens_per_step``."""
    has_step, has_tokens = not _is_missing(step), not _is_missing(tokens)
    if has_step and has_tokens:
        raise ValueError(f"{where}: gives both 'step' ({step!r}) and 'tokens' ({tokens!r}); give one of them")
    if not has_step and not has_tokens:
        raise ValueError(f"{where}: gives neither 'step' nor 'tokens'")
    if has_step:
        s = _number(step, where, "step")
        if not (math.isfinite(s) and s >= 1 and s == int(s)):
            raise ValueError(f"{where}: step must be a whole number >= 1, got {step!r}")
        return int(s)
    if _is_missing(tps):
        raise ValueError(
            f"{where}: gives 'tokens' ({tokens!r}) but no tokens_per_step to turn them into steps; "
            "pass tokens_per_step=... (or a 'tokens_per_step' column)"
        )
    t = _number(tokens, where, "tokens")
    per = _number(tps, where, "tokens_per_step")
    if not (math.isfinite(per) and per > 0):
        raise ValueError(f"{where}: tokens_per_step must be a positive number, got {tps!r}")
    s = round(t / per)
    if not (math.isfinite(t) and s >= 1):
        raise ValueError(f"{where}: tokens {tokens!r} make {t / per:g} steps at {per:g} tokens per step; expected >= 1")
    return int(s)


def _domain_values(row: Mapping[str, Any], where: str) -> dict[str, float]:
    out = {}
    for k, v in row.items():
        if k.startswith(DOMAIN_PREFIX) and not _is_missing(v):
            x = _number(v, where, f"column {k!r}")
            if math.isfinite(x):
                out[k[len(DOMAIN_PREFIX):]] = x
    return out


def _is_wide(row: Mapping[str, Any]) -> bool:
    """One line per run (lists of steps and values) rather than one row per report."""
    return "steps" in row or "values" in row or isinstance(row.get("tokens"), (list, tuple))


def _points(row: Mapping[str, Any], cols: _Columns, where: str) -> list[tuple[int, Any, dict[str, float], str]]:
    """(step, value, per-domain values, unit) of each report in a long or a wide row."""
    tps = row.get("tokens_per_step")
    tps = cols.tokens_per_step if _is_missing(tps) else tps
    if not _is_wide(row):
        if "value" not in row:
            raise ValueError(f"{where}: no 'value' column: a row of the long format gives the value at its step")
        unit = "tokens" if _is_missing(row.get("step")) else "steps"
        return [(_to_step(row.get("step"), row.get("tokens"), tps, where), row.get("value"), _domain_values(row, where), unit)]
    if "steps" in row and "tokens" in row:
        raise ValueError(f"{where}: gives both 'steps' and 'tokens'; give one of them")
    unit = "steps" if "steps" in row else "tokens"
    xs, values = row.get(unit), row.get("values")
    if not isinstance(xs, Sequence) or isinstance(xs, str) or not isinstance(values, Sequence) or isinstance(values, str):
        raise ValueError(f"{where}: a wide row needs lists '{unit}' and 'values'")
    if len(xs) != len(values):
        raise ValueError(f"{where}: '{unit}' has {len(xs)} entries but 'values' has {len(values)}")
    per_domain = row.get("domain_values") or [{}] * len(xs)
    if len(per_domain) != len(xs):
        raise ValueError(f"{where}: 'domain_values' has {len(per_domain)} entries, '{unit}' {len(xs)}")
    out = []
    for x, v, dv in zip(xs, values, per_domain):
        step = _to_step(x, None, None, where) if unit == "steps" else _to_step(None, x, tps, where)
        dvals = {str(d): _number(y, where, f"domain value {d!r}") for d, y in (dv or {}).items() if not _is_missing(y)}
        out.append((step, v, {d: y for d, y in dvals.items() if math.isfinite(y)}, unit))
    return out


def read_runs(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    mixture_name: str = "mix",
    scale_name: str = "model_size",
    domains: Sequence[str] = (),
    scale_names: Mapping[str, float] | None = None,
    tokens_per_step: float | None = None,
) -> tuple[list[Run], int]:
    """Group ``(where, row)`` pairs into runs, checking each row; (runs, NaN values skipped)."""
    cols = _Columns(mixture_name, scale_name, tuple(domains), scale_names, tokens_per_step)
    runs: dict[str, Run] = {}
    units: dict[str, str] = {}
    n_nan = 0
    for i, (where, row) in enumerate(rows):
        wide = _is_wide(row)
        raw_id = row.get("run")
        if _is_missing(raw_id):
            if not wide:
                raise ValueError(f"{where}: no 'run' column: a row of the long format names its run")
            raw_id = f"line-{i + 1}"
        run_id = str(raw_id)
        mixture = _row_mixture(row, cols, where)
        scale, label = _row_scale(row, cols, where)
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = Run(run_id, where, mixture, scale, label)
        else:
            if mixture != run.mixture:
                raise ValueError(f"run {run_id!r}: {where} gives mixture {mixture}, {run.where} gave {run.mixture}")
            if scale != run.scale:
                raise ValueError(f"run {run_id!r}: {where} gives scale {label!r}, {run.where} gave {run.scale_label!r}")
        for step, value, dvals, unit in _points(row, cols, where):
            if units.setdefault(run_id, unit) != unit:
                raise ValueError(f"run {run_id!r} mixes steps and tokens ({where}); give one unit per run")
            if step in run.reports:
                raise ValueError(f"run {run_id!r}: step {step} is reported twice ({where})")
            v = None if _is_missing(value) else _number(value, where, "value")
            if v is None or not math.isfinite(v):
                n_nan += 1
                continue
            run.reports[step] = v
            if dvals:
                run.domain_values[step] = dvals
        cost = row.get("cost")
        if not _is_missing(cost):
            run.cost = _number(cost, where, "cost")
    return list(runs.values()), n_nan
