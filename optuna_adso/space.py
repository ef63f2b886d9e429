"""Mixture and fidelity declarations, and the trial <-> model-input encoding.

A mixture is declared per trial with :func:`suggest_mixture`; its k weights are stored as ordinary
Optuna float parameters ``<name>/<domain>`` so that optuna-dashboard shows them.  Model scale is
declared with :func:`suggest_scale`.  Both declarations are also written to the study's system
attributes, so that the sampler (in any process) can find them in storage.

The surrogate never sees Optuna objects: :func:`collect_observations` turns the study's trials
into plain arrays ``(weights, log10 scale, log10 step) -> value``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_adso import records
from optuna_adso.pool import MEMBER_TOLERANCE, nearest_member, validate_candidates
from optuna_adso.simplex import normalize_rows, project_to_bounded_simplex
from optuna_adso.validation import as_number, as_positive

_EPS = 1e-12
POOL_INDEX = "pool_index"
_ABSURD = 1e150  # a "value" this large is a bug upstream; squaring it overflows the GP's scaling


@dataclass(frozen=True)
class MixtureSpec:
    """A mixture over named domains with optional per-domain weight bounds, and optionally a
    finite pool of candidate mixtures (weights in ``domains`` order) the study may only run."""

    name: str
    domains: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    candidates: tuple[tuple[float, ...], ...] = ()

    @property
    def pool(self) -> np.ndarray | None:
        """The candidate pool as an (m, k) array; None when the whole simplex is searched."""
        return np.array(self.candidates, dtype=float) if self.candidates else None

    @property
    def pool_param_name(self) -> str:
        """The categorical parameter (pool index) non-ADSO samplers search a pool with."""
        return f"{self.name}/{POOL_INDEX}"

    @property
    def k(self) -> int:
        return len(self.domains)

    def param_name(self, domain: str) -> str:
        return f"{self.name}/{domain}"

    @property
    def param_names(self) -> list[str]:
        return [self.param_name(d) for d in self.domains]

    @property
    def has_bounds(self) -> bool:
        return any(lo > 0.0 for lo in self.lower) or any(hi < 1.0 for hi in self.upper)


@dataclass(frozen=True)
class ScaleSpec:
    """Model scale, a fidelity: the parameter name and the choices a trial may run."""

    name: str
    choices: tuple[float, ...]


def _as_per_domain(
    value: float | Mapping[str, float] | None, domains: Sequence[str], default: float, what: str
) -> list[float]:
    if value is None:
        return [default] * len(domains)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in domains]
        if unknown:
            raise ValueError(f"{what} names unknown domains {unknown}; the domains are {list(domains)}")
        out = [as_number(value.get(d, default), f"{what} for domain {d!r}") for d in domains]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out = [as_number(value, what)] * len(domains)
    else:
        raise ValueError(f"{what} must be a number in [0, 1] or a dict domain -> number, got {value!r}")
    for d, v in zip(domains, out):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{what} for domain {d!r} must be a number in [0, 1], got {v!r}")
    return out


def make_mixture_spec(
    name: str,
    domains: Sequence[str],
    *,
    min_weight: float | Mapping[str, float] | None = None,
    max_weight: float | Mapping[str, float] | None = None,
    available_tokens: Mapping[str, float] | None = None,
    max_epochs: float | None = None,
    total_tokens: float | None = None,
    candidates: Sequence[Mapping[str, float] | Sequence[float]] | None = None,
) -> MixtureSpec:
    """Validate a mixture declaration and turn token budgets into upper bounds on the weights."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"mixture name must be a non-empty string without '/', got {name!r}")
    if isinstance(domains, (str, bytes)) or not isinstance(domains, Sequence):
        raise TypeError(f"domains must be a list of domain names, got {domains!r}")
    domains = list(domains)
    if len(domains) < 2:
        raise ValueError(f"a mixture needs at least two domains, got {domains!r}")
    for d in domains:
        if not isinstance(d, str) or not d or "/" in d:
            raise ValueError(f"each domain must be a non-empty string without '/', got {d!r}")
    dupes = sorted({d for d in domains if domains.count(d) > 1})
    if dupes:
        raise ValueError(f"domains must be unique; {dupes} appear more than once")
    lower = _as_per_domain(min_weight, domains, 0.0, "min_weight")
    upper = _as_per_domain(max_weight, domains, 1.0, "max_weight")
    if available_tokens is not None:
        if total_tokens is None:
            raise ValueError(
                "available_tokens needs total_tokens, the number of tokens the target run trains "
                f"on (a positive number), got total_tokens={total_tokens!r}"
            )
        total_tokens = as_positive(total_tokens, "total_tokens")
        epochs = 1.0 if max_epochs is None else as_positive(max_epochs, "max_epochs")
        if not isinstance(available_tokens, Mapping):
            raise ValueError(f"available_tokens must be a dict domain -> token count, got {available_tokens!r}")
        unknown = [k for k in available_tokens if k not in domains]
        if unknown:
            raise ValueError(f"available_tokens names unknown domains {unknown}")
        for i, d in enumerate(domains):
            if d in available_tokens:
                n = as_number(available_tokens[d], f"available_tokens[{d!r}]")
                if n < 0:
                    raise ValueError(f"available_tokens[{d!r}] must be >= 0, got {n!r}")
                upper[i] = min(upper[i], n * epochs / float(total_tokens))
    elif max_epochs is not None:
        raise ValueError("max_epochs only applies together with available_tokens")
    for d, lo, hi in zip(domains, lower, upper):
        if lo > hi:
            raise ValueError(
                f"domain {d!r}: min_weight {lo:g} exceeds its max weight {hi:g} "
                "(from max_weight or available_tokens * max_epochs / total_tokens)"
            )
    if sum(lower) > 1.0 + 1e-9:
        raise ValueError(f"min_weight sums to {sum(lower):g} > 1: no mixture satisfies it")
    if sum(upper) < 1.0 - 1e-9:
        raise ValueError(
            f"the max weights sum to {sum(upper):g} < 1: not enough tokens or room for any mixture"
        )
    pool: tuple[tuple[float, ...], ...] = ()
    if candidates is not None:
        if POOL_INDEX in domains:
            raise ValueError(f"a mixture with candidates cannot have a domain named {POOL_INDEX!r} (its parameter)")
        pool = validate_candidates(candidates, domains, lower, upper)
    return MixtureSpec(name, tuple(domains), tuple(lower), tuple(upper), pool)


def make_scale_spec(name: str, choices: Sequence[float]) -> ScaleSpec:
    if not isinstance(name, str) or not name:
        raise ValueError(f"scale name must be a non-empty string, got {name!r}")
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
        raise ValueError(f"scale choices for {name!r} must be a non-empty list, got {choices!r}")
    values = []
    for c in choices:
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            raise ValueError(f"scale choices for {name!r} must be numbers, got {c!r}")
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"scale choices for {name!r} must be positive and finite, got {c!r}")
        values.append(float(c))
    if len(set(values)) != len(values):
        raise ValueError(f"scale choices for {name!r} must be unique, got {list(choices)!r}")
    return ScaleSpec(name, tuple(sorted(values)))


# --- Optuna glue -----------------------------------------------------------------------------


def suggest_mixture(
    trial: optuna.Trial,
    name: str,
    domains: Sequence[str],
    *,
    min_weight: float | Mapping[str, float] | None = None,
    max_weight: float | Mapping[str, float] | None = None,
    available_tokens: Mapping[str, float] | None = None,
    max_epochs: float | None = None,
    total_tokens: float | None = None,
    candidates: Sequence[Mapping[str, float] | Sequence[float]] | None = None,
) -> dict[str, float]:
    """Suggest a data mixture: ``{domain: weight}``, weights >= 0 summing to 1.

    Under :class:`~optuna_adso.ADSOSampler` the parameters ``<name>/<domain>`` are the weights.
    Under any other sampler they are latent uniforms turned into a uniform (Dirichlet(1)) draw on
    the simplex, so that random search, QMC, TPE and GP baselines search the simplex fairly.
    The weights are also written to the trial's user attribute ``<name>``.

    ``available_tokens`` (tokens per domain) with ``max_epochs`` (repetition cap) and
    ``total_tokens`` (tokens of the target run) bound each weight by
    ``available_tokens[d] * max_epochs / total_tokens``.

    ``candidates``: a finite pool of mixtures (dicts over exactly ``domains``, or weight lists in
    their order) when only those can be built.  ADSOSampler then proposes and recommends pool
    members only; any other sampler picks one with a categorical parameter
    ``<name>/pool_index``.
    """
    spec = make_mixture_spec(
        name,
        domains,
        min_weight=min_weight,
        max_weight=max_weight,
        available_tokens=available_tokens,
        max_epochs=max_epochs,
        total_tokens=total_tokens,
        candidates=candidates,
    )
    records.declare_mixture(trial.study, name, spec.domains, spec.lower, spec.upper, spec.candidates)
    if spec.candidates:
        return _suggest_pool_member(trial, spec)
    lower, upper = np.array(spec.lower), np.array(spec.upper)
    if getattr(trial.study.sampler, "samples_mixtures_jointly", False):
        raw = np.array(
            [
                trial.suggest_float(spec.param_name(d), lo, hi)
                for d, lo, hi in zip(spec.domains, spec.lower, spec.upper)
            ]
        )
        weights = normalize_rows(raw)[0]
    else:
        u = np.array([trial.suggest_float(spec.param_name(d), 0.0, 1.0) for d in spec.domains])
        expo = -np.log1p(-np.minimum(u, 1.0 - 1e-12))  # Exp(1) draws -> normalized = Dirichlet(1)
        weights = normalize_rows(expo)[0]
    if spec.has_bounds:
        weights = project_to_bounded_simplex(weights, lower, upper)[0]
    mixture = {d: float(x) for d, x in zip(spec.domains, weights)}
    trial.set_user_attr(name, mixture)
    return mixture


def _suggest_pool_member(trial: optuna.Trial, spec: MixtureSpec) -> dict[str, float]:
    """A pool member: the one ADSOSampler proposed (its weights as parameters), or a categorical
    choice of index under any other sampler, so that baselines search the same pool."""
    pool = spec.pool
    assert pool is not None
    if getattr(trial.study.sampler, "samples_mixtures_jointly", False):
        raw = np.array(
            [
                trial.suggest_float(spec.param_name(d), lo, hi)
                for d, lo, hi in zip(spec.domains, spec.lower, spec.upper)
            ]
        )
        index, gap = nearest_member(pool, normalize_rows(raw)[0])
        if gap > MEMBER_TOLERANCE:
            raise ValueError(
                f"trial {trial.number}: mixture {spec.name!r} = {raw.tolist()} is not a member of its "
                f"candidate pool (nearest: candidates[{index}], off by {gap:.3g}); an enqueued or fixed "
                "mixture must be one of the candidates"
            )
    else:
        index = int(trial.suggest_categorical(spec.pool_param_name, list(range(len(pool)))))
    mixture = {d: float(x) for d, x in zip(spec.domains, spec.candidates[index])}
    trial.set_user_attr(spec.name, mixture)
    return mixture


def suggest_scale(trial: optuna.Trial, name: str, choices: Sequence[float]) -> float:
    """Suggest a model scale (e.g. parameter count) among ``choices``; ADSO treats it as a fidelity."""
    spec = make_scale_spec(name, choices)
    check = getattr(trial.study.sampler, "check_scale_declaration", None)
    if check is not None:  # the sampler validates the declaration against its target and cost
        check(trial.study, spec)
    records.declare_scale(trial.study, name, spec.choices)
    return float(trial.suggest_categorical(name, list(spec.choices)))


def mixture_specs_from_attrs(study_attrs: Mapping[str, Any]) -> list[MixtureSpec]:
    return [
        MixtureSpec(
            name, tuple(d["domains"]), tuple(d["lower"]), tuple(d["upper"]),
            tuple(tuple(float(x) for x in c) for c in d.get("candidates", ())),
        )
        for name, d in records.declared_mixtures(study_attrs)
    ]


def scale_specs_from_attrs(study_attrs: Mapping[str, Any]) -> list[ScaleSpec]:
    return [ScaleSpec(name, tuple(choices)) for name, choices in records.declared_scales(study_attrs)]


def _raw_trial_weights(trial: FrozenTrial, spec: MixtureSpec) -> np.ndarray | None:
    """The weights a trial stores, before normalization; None if it has no usable mixture."""
    stored = trial.user_attrs.get(spec.name)
    if isinstance(stored, Mapping) and all(d in stored for d in spec.domains):
        w = np.array([float(stored[d]) for d in spec.domains])
    elif all(p in trial.params for p in spec.param_names):
        w = np.array([float(trial.params[p]) for p in spec.param_names])
    else:
        return None
    if not np.all(np.isfinite(w)) or w.sum() <= 0:
        return None
    return w


def trial_weights(trial: FrozenTrial, spec: MixtureSpec) -> np.ndarray | None:
    """The mixture a trial ran, from its user attribute (any sampler) or its parameters."""
    w = _raw_trial_weights(trial, spec)
    return None if w is None else normalize_rows(w)[0]


def _trials_weights(trials: Sequence[FrozenTrial], spec: MixtureSpec) -> list[np.ndarray | None]:
    """:func:`trial_weights` of every trial, normalized in one call: the same numbers (rows are
    normalized independently), without a dozen numpy calls per trial per question."""
    raw = [_raw_trial_weights(t, spec) for t in trials]
    usable = [w for w in raw if w is not None]
    if not usable:
        return raw
    rows = iter(normalize_rows(np.vstack(usable)))
    return [None if w is None else next(rows) for w in raw]


# --- observations ----------------------------------------------------------------------------


@dataclass
class Observations:
    """Every usable report of a study, as arrays; plus the running trials' proposals."""

    weights: np.ndarray  # (n, k)
    log_scale: np.ndarray  # (n,)
    log_step: np.ndarray  # (n,)
    values: np.ndarray  # (n,) in "minimize" orientation
    trial_numbers: np.ndarray  # (n,)
    pending_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    pending_log_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pending_log_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_ignored_nonfinite: int = 0
    domain_values: list[dict[str, float] | None] = field(default_factory=list)  # per row, if reported

    def __len__(self) -> int:
        return len(self.values)

    @property
    def inputs(self) -> np.ndarray:
        """(n, k + 2): weights, log10 scale, log10 step."""
        return np.column_stack([self.weights, self.log_scale, self.log_step])


def trial_scale(trial: FrozenTrial, scale: ScaleSpec | None, default: float) -> float | None:
    if scale is None:
        return default
    value = trial.params.get(scale.name)
    if value is None:
        return None
    return float(value)


def collect_observations(
    trials: Sequence[FrozenTrial],
    spec: MixtureSpec,
    scale: ScaleSpec | None,
    *,
    target_scale: float,
    target_step: float,
    maximize: bool,
    max_points_per_trial: int = 24,
    per_domain_steps: bool = False,
) -> Observations:
    """Turn trials into observations for the surrogate.

    Every reported step of every trial counts, whatever the trial's state (complete, pruned,
    running, even failed after reporting): partial curves are cheap information.  A complete
    trial's final value with no report at ``target_step`` is added at its last reported step (or at
    ``target_step`` if it never reported).  Long curves are thinned to ``max_points_per_trial``
    log-spaced steps, always keeping the last, so the model's size stays bounded.  NaN and infinite
    values are dropped (with a count for the warning).

    ``per_domain_steps``: a multi-objective study, whose trials keep no intermediate values: a
    row per step with per-domain values, valued 0 (an objective of the domains values them).
    """
    sign = -1.0 if maximize else 1.0
    w_rows, s_rows, t_rows, y_rows, num_rows = [], [], [], [], []
    dv_rows: list[dict[str, float] | None] = []
    pw, ps, pt = [], [], []
    n_bad = 0
    for t, w in zip(trials, _trials_weights(trials, spec)):
        if w is None:
            continue
        s = trial_scale(t, scale, target_scale)
        if s is None or s <= 0:
            continue
        curve = {int(step): v for step, v in t.intermediate_values.items() if step > 0}
        if per_domain_steps:
            curve = {int(step): 0.0 for step in records.domain_values(t) if step > 0}
        elif t.state == TrialState.COMPLETE and t.values is not None and len(t.values) == 1:
            last = max(curve) if curve else int(target_step)
            curve.setdefault(last, t.values[0])
        good = {}
        for step, v in curve.items():
            if v is None or not math.isfinite(v) or abs(v) >= _ABSURD:
                n_bad += 1
            else:
                good[step] = float(v)
        steps = sorted(good)
        per_domain = records.domain_values(t)
        if len(steps) > max_points_per_trial:
            keep_idx = np.unique(
                np.round(
                    np.geomspace(1, len(steps), max_points_per_trial) - 1
                ).astype(int)
            )
            steps = [steps[i] for i in keep_idx]
            if steps[-1] != max(good):
                steps[-1] = max(good)
        for step in steps:
            w_rows.append(w)
            s_rows.append(math.log10(s))
            t_rows.append(math.log10(step))
            y_rows.append(sign * good[step])
            num_rows.append(t.number)
            dv_rows.append(per_domain.get(step))
        if t.state == TrialState.RUNNING:
            stop = records.planned_stop(t.system_attrs) or target_step
            if not steps or steps[-1] < stop:
                pw.append(w)
                ps.append(math.log10(s))
                pt.append(math.log10(max(float(stop), 1.0)))
    k = spec.k
    return Observations(
        weights=np.array(w_rows, dtype=float).reshape(-1, k),
        log_scale=np.array(s_rows, dtype=float),
        log_step=np.array(t_rows, dtype=float),
        values=np.array(y_rows, dtype=float),
        trial_numbers=np.array(num_rows, dtype=int),
        pending_weights=np.array(pw, dtype=float).reshape(-1, k),
        pending_log_scale=np.array(ps, dtype=float),
        pending_log_step=np.array(pt, dtype=float),
        n_ignored_nonfinite=n_bad,
        domain_values=dv_rows,
    )


def warn_nonfinite(n: int) -> None:
    if n:
        warnings.warn(
            f"ignored {n} NaN, infinite or absurdly large (|value| >= {_ABSURD:g}) reported "
            "value(s); they are not fed to the surrogate",
            stacklevel=3,
        )
