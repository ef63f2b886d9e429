"""What a (scale, step) costs.

The sampler only needs ``cost(scale, step)``: the cumulative compute of a run of model scale
``scale`` stopped after ``step`` steps.  Users give a :class:`FlopsCost` (6 x params x tokens), a
:class:`TableCost` (e.g. a measured FLOPs or GPU-hours table), or any callable
``(params, step) -> cost`` where ``params`` is the trial's parameter dict.
"""

from __future__ import annotations

import copy
import csv
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from optuna_adso.validation import as_positive


class CostModel(Protocol):
    def __call__(self, params: Mapping[str, Any], step: float) -> float: ...


class FlopsCost:
    """Training FLOPs ~ 6 x parameters x tokens (Kaplan et al.), tokens = tokens_per_step x step.

    ``scale_param`` names the trial parameter that holds the parameter count; when omitted the
    sampler fills in its scale parameter.
    """

    def __init__(self, tokens_per_step: float, scale_param: str | None = None) -> None:
        self.tokens_per_step = as_positive(tokens_per_step, "FlopsCost tokens_per_step")
        self.scale_param = scale_param

    def flops(self, n_params: float, step: float) -> float:
        return 6.0 * float(n_params) * self.tokens_per_step * float(step)

    def __call__(self, params: Mapping[str, Any], step: float) -> float:
        if self.scale_param is None or self.scale_param not in params:
            raise KeyError(
                f"FlopsCost needs the scale parameter {self.scale_param!r} in params; got "
                f"{sorted(params)}"
            )
        return self.flops(params[self.scale_param], step)

    def __repr__(self) -> str:
        return f"FlopsCost(tokens_per_step={self.tokens_per_step:g}, scale_param={self.scale_param!r})"

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "flops", "tokens_per_step": self.tokens_per_step, "scale_param": self.scale_param}


class TableCost:
    """Cumulative cost read from a table of (scale, step, cost) rows.

    Linear in steps between rows (and through zero before the first); a scale absent from the
    table is interpolated as a power law between its neighbours (log-log), which is how FLOPs
    grow with parameter count.
    """

    def __init__(
        self, rows: list[tuple[float, float, float]], scale_param: str | None = None
    ) -> None:
        if not rows:
            raise ValueError("TableCost needs at least one (scale, step, cost) row")
        table: dict[float, list[tuple[float, float]]] = {}
        for scale, step, cost in rows:
            as_positive(scale, "TableCost scale")
            if not (math.isfinite(float(cost)) and float(cost) >= 0):
                raise ValueError(f"TableCost cost must be >= 0, got {cost!r} at scale {scale}")
            table.setdefault(float(scale), []).append((float(step), float(cost)))
        self._scales = np.array(sorted(table))
        self._curves = {s: np.array(sorted(table[s])) for s in self._scales}
        self.scale_param = scale_param

    @property
    def rows(self) -> list[tuple[float, float, float]]:
        """The table's (scale, step, cost) rows, sorted."""
        return [(float(s), float(step), float(c)) for s in self._scales for step, c in self._curves[s]]

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "table", "rows": [list(r) for r in self.rows], "scale_param": self.scale_param}

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        scale_column: str,
        step_column: str = "step",
        cost_column: str = "flops",
        scale_multiplier: float = 1.0,
        scale_param: str | None = None,
    ) -> TableCost:
        """Read a CSV; ``scale_multiplier`` converts its scale unit (e.g. 1e6 for millions)."""
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {scale_column, step_column, cost_column} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
            rows = [
                (float(r[scale_column]) * scale_multiplier, float(r[step_column]), float(r[cost_column]))
                for r in reader
            ]
        return cls(rows, scale_param=scale_param)

    def _at_scale(self, scale: float, step: float) -> float:
        curve = self._curves[scale]
        steps = np.concatenate([[0.0], curve[:, 0]])
        costs = np.concatenate([[0.0], curve[:, 1]])
        if step <= steps[-1]:
            return float(np.interp(step, steps, costs))
        return float(costs[-1] * step / steps[-1])  # extrapolate linearly in steps

    def cost(self, scale: float, step: float) -> float:
        scale = float(scale)
        if scale in self._curves:
            return self._at_scale(scale, step)
        s = self._scales
        i = int(np.clip(np.searchsorted(s, scale), 1, len(s) - 1)) if len(s) > 1 else 0
        if len(s) == 1:
            return self._at_scale(s[0], step) * scale / s[0]
        a, b = s[i - 1], s[i]
        ca, cb = self._at_scale(a, step), self._at_scale(b, step)
        if ca <= 0 or cb <= 0:
            return max(ca, cb) * scale / b
        slope = (math.log(cb) - math.log(ca)) / (math.log(b) - math.log(a))
        return float(math.exp(math.log(ca) + slope * (math.log(scale) - math.log(a))))

    def __call__(self, params: Mapping[str, Any], step: float) -> float:
        if self.scale_param is None or self.scale_param not in params:
            raise KeyError(
                f"TableCost needs the scale parameter {self.scale_param!r} in params; got "
                f"{sorted(params)}"
            )
        return self.cost(params[self.scale_param], step)


class ScaleTimesSteps:
    """The default cost, ``scale * step``: FLOPs up to a constant factor (only ratios matter)."""

    def __call__(self, params: Mapping[str, Any], step: float) -> float:
        scale = next(iter(params.values()), 1.0)
        return float(scale) * float(step)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": "scale_times_steps"}

    def __repr__(self) -> str:
        return "ScaleTimesSteps()"


def cost_spec(cost: Any) -> dict[str, Any] | None:
    """What it takes to rebuild ``cost`` exactly in another process, or None if nothing can."""
    # exact types: a subclass may price differently from what its parent's spec rebuilds
    return cost.to_spec() if type(cost) in (FlopsCost, TableCost, ScaleTimesSteps) else None


def cost_from_spec(spec: Mapping[str, Any]) -> FlopsCost | TableCost | ScaleTimesSteps:
    """The cost model :func:`cost_spec` described."""
    kind = spec.get("kind")
    if kind == "flops":
        return FlopsCost(spec["tokens_per_step"], scale_param=spec.get("scale_param"))
    if kind == "table":
        return TableCost([tuple(r) for r in spec["rows"]], scale_param=spec.get("scale_param"))
    if kind == "scale_times_steps":
        return ScaleTimesSteps()
    raise ValueError(f"unknown stored cost model {dict(spec)!r}")


class ScaleStepCost:
    """Any cost model as ``f(scale, step) -> cost``, validated on every call.

    A class rather than a closure so that a sampler holding it pickles (spawned DDP ranks and
    worker processes receive the sampler) whenever the user's cost model does.
    """

    def __init__(self, cost: Callable[[Mapping[str, Any], float], float], scale_param: str | None) -> None:
        self.cost = cost
        self.scale_param = scale_param

    def __call__(self, scale: float, step: float) -> float:
        params = {self.scale_param: scale} if self.scale_param is not None else {}
        value = self.cost(params, step)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"cost({params}, {step}) must return a number, got {value!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"cost({params}, step={step}) returned {value!r}; costs must be finite and >= 0"
            )
        return value


def resolve_cost(
    cost: CostModel | Callable[[Mapping[str, Any], float], float], scale_param: str | None
) -> ScaleStepCost:
    """Turn any cost model into ``f(scale, step) -> cost``, validated on every call.

    A :class:`FlopsCost` or :class:`TableCost` without a ``scale_param`` reads the study's scale
    parameter; it is given one on a copy, never on the user's object.
    """
    if not callable(cost):
        raise TypeError(f"cost must be a FlopsCost, TableCost or callable (params, step) -> cost, got {cost!r}")
    if isinstance(cost, (FlopsCost, TableCost)) and cost.scale_param is None:
        cost = copy.copy(cost)
        cost.scale_param = scale_param
    return ScaleStepCost(cost, scale_param)
