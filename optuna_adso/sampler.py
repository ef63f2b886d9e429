"""ADSOSampler: the Optuna glue.  Observations in (from storage), parameters out.

Everything the sampler knows is read from the study's storage at each call: the mixture and scale
declarations (study system attributes), every trial's reports, and the last fitted
hyperparameters (a trial system attribute, used to warm-start the next fit).  The sampler object
holds only its configuration, so any number of workers in any number of processes can share one
study, and a seeded single-worker study is reproducible.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_adso.acquisition import Acquisition, Fidelity, Proposal, optimize_acquisition
from optuna_adso.cost import resolve_cost
from optuna_adso.space import (
    STOP_STEP_ATTR,
    MixtureSpec,
    Observations,
    ScaleSpec,
    collect_observations,
    mixture_specs_from_attrs,
    project_to_bounded_simplex,
    sample_simplex,
    scale_specs_from_attrs,
    trial_scale,
    trial_weights,
    warn_nonfinite,
)
from optuna_adso.surrogate import (
    FidelityAxes,
    MultiFidelitySurrogate,
    SurrogateFitError,
    single_threaded,
    thin_observations,
)
from optuna_adso.validation import as_number, as_positive

_logger = logging.getLogger(__name__)

GP_STATE_ATTR = "adso:gp_state"
PROPOSAL_ATTR = "adso:proposal"
CONFIG_ATTR = "adso:config"
STARTUP_ATTR = "adso:startup_weights"
_STEP_AXIS_FRACTION = 0.1  # the step axis reaches down to this fraction of the target step
_HOLDING_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)  # trials that hold a point
METHODS = {"adso": ("coregionalized", "info-per-cost"), "paper": ("product-rbf", "ei-per-cost")}


@dataclass(frozen=True)
class Target:
    """Where the mixture will be used: a scale (maybe never run) and a step count."""

    step: float
    scale_param: str | None
    scale: float | None

    @classmethod
    def parse(cls, target: Mapping[str, Any]) -> Target:
        if not isinstance(target, Mapping):
            raise TypeError(f"target must be a dict like {{'model_size': 1e9, 'step': 20000}}, got {target!r}")
        if "step" not in target:
            raise ValueError(f"target must give the target 'step' (training steps), got {dict(target)!r}")
        step = as_positive(target["step"], "target['step']")
        others = [k for k in target if k != "step"]
        if len(others) > 1:
            raise ValueError(
                f"target names several parameters {others}; give one scale parameter and 'step'"
            )
        if others:
            name = others[0]
            return cls(step, name, as_positive(target[name], f"target[{name!r}]"))
        return cls(step, None, None)

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "scale_param": self.scale_param, "scale": self.scale})


@dataclass
class StudyData:
    """What a study's storage says, gathered once per sampler call."""

    spec: MixtureSpec
    scale: ScaleSpec | None
    trials: list[FrozenTrial]
    maximize: bool


def read_study(study: Study) -> StudyData | None:
    """Declarations and trials straight from storage (works under HyperbandPruner's views too)."""
    storage, study_id = study._storage, study._study_id
    attrs = storage.get_study_system_attrs(study_id)
    specs = mixture_specs_from_attrs(attrs)
    if not specs:
        return None
    if len(specs) > 1:
        raise ValueError(
            f"ADSOSampler optimizes one mixture per study; this study declares {[s.name for s in specs]}"
        )
    scales = scale_specs_from_attrs(attrs)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    maximize = storage.get_study_directions(study_id)[0] == StudyDirection.MAXIMIZE
    return StudyData(specs[0], scales[0] if scales else None, trials, maximize)


class ADSOSampler(BaseSampler):
    """Multi-fidelity, multi-scale Bayesian optimization of a data mixture for a target model.

    Args:
        target: where the mixture will be used, e.g. ``{"model_size": 1e9, "step": 20_000}``.
            The scale may be one that is never run.
        cost: what a (scale, step) costs: :class:`~optuna_adso.FlopsCost`,
            :class:`~optuna_adso.TableCost` or any callable ``(params, step) -> cost``.  Only
            ratios matter; the default ``scale * step`` is FLOPs up to a constant.
        seed: seed of all the sampler's randomness.
        method: ``"adso"`` (coregionalized GP, information about the target per unit cost) or
            ``"paper"`` (the paper's product-RBF GP with EI per cost^alpha).
        n_startup_trials: space-filling trials (the uniform mixture, then each as far from the
            others as a few hundred draws allow) before the model is used (default: one per
            scale, at least 3).
        max_points: bound on observations fed to the GP, so cost stays flat as studies grow.
        stop_fractions: fractions of the target step at which the sampler may plan to stop a
            run, used only under ``ADSOPruner(planned_stops=True)``, which honours them.
        min_target_share: the least share of the compute spent so far that must have gone to
            the top runnable scale (the target's, or the closest below it) before the sampler
            buys more cheap runs.  A floor under robustness: however the model misjudges
            small scales, ADSO keeps doing what target-only BO does with that share.
        run_overhead: fixed cost of any run (launch, evaluation), in target runs; it keeps
            the sampler from preferring thousands of near-free runs.
    """

    samples_mixtures_jointly = True

    def __init__(
        self,
        target: Mapping[str, Any],
        cost: Callable[[Mapping[str, Any], float], float] | None = None,
        *,
        seed: int | None = None,
        method: str = "adso",
        n_startup_trials: int | None = None,
        max_points: int = 320,
        stop_fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
        min_target_share: float = 0.5,
        run_overhead: float = 0.1,
        n_candidates: int = 1024,
    ) -> None:
        self.target = Target.parse(target)
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        self.method = method
        if cost is None:
            cost = _default_cost
        if not callable(cost):
            raise TypeError(f"cost must be a FlopsCost, TableCost or callable (params, step) -> cost, got {cost!r}")
        self._cost_fn = resolve_cost(cost, self.target.scale_param)
        self.cost = cost
        if n_startup_trials is not None and (not isinstance(n_startup_trials, int) or n_startup_trials < 1):
            raise ValueError(f"n_startup_trials must be a positive int, got {n_startup_trials!r}")
        self.n_startup_trials = n_startup_trials
        if not isinstance(max_points, int) or max_points < 20:
            raise ValueError(f"max_points must be an int >= 20, got {max_points!r}")
        self.max_points = max_points
        if isinstance(stop_fractions, (str, bytes)) or not isinstance(stop_fractions, Sequence):
            raise ValueError(f"stop_fractions must be a list of fractions in (0, 1] including 1.0, got {stop_fractions!r}")
        fractions = sorted(as_number(f, "stop_fractions") for f in stop_fractions)
        if not fractions or fractions[0] <= 0 or fractions[-1] != 1.0:
            raise ValueError(f"stop_fractions must be in (0, 1] and include 1.0, got {stop_fractions!r}")
        self.stop_fractions = tuple(fractions)
        self.min_target_share = as_number(min_target_share, "min_target_share")
        if not (0.0 <= self.min_target_share < 1.0):
            raise ValueError(f"min_target_share must be in [0, 1), got {min_target_share!r}")
        self.run_overhead = as_number(run_overhead, "run_overhead")
        if self.run_overhead < 0.0:
            raise ValueError(f"run_overhead must be >= 0 (in target runs), got {run_overhead!r}")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 16:
            raise ValueError(f"n_candidates must be an int >= 16, got {n_candidates!r}")
        self.n_candidates = n_candidates
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is None else seed

    # -- cost ---------------------------------------------------------------------------------
    def run_cost(self, scale: float, step: float) -> float:
        return self._cost_fn(scale, step)

    @property
    def target_cost(self) -> float:
        return self.run_cost(self.target.scale if self.target.scale is not None else 1.0, self.target.step)

    # -- declarations -------------------------------------------------------------------------
    def check_scale_declaration(self, study: Study, spec: ScaleSpec) -> None:
        """Called by suggest_scale before any compute: the declaration must fit the target."""
        if self.target.scale_param is None:
            raise ValueError(
                f"scale {spec.name!r} is declared but the sampler's target has no scale; use "
                f"target={{{spec.name!r}: <target scale>, 'step': {self.target.step:g}}}"
            )
        if spec.name != self.target.scale_param:
            raise ValueError(
                f"unknown target parameter {self.target.scale_param!r}: the study's scale "
                f"parameter is {spec.name!r}"
            )
        assert self.target.scale is not None
        if self.target.scale < min(spec.choices):
            raise ValueError(
                f"target[{spec.name!r}] = {self.target.scale:g} lies below every proxy scale "
                f"{list(spec.choices)}; the target must be at or above the proxies (fidelity grows "
                "with scale)"
            )
        costs = {s: self.run_cost(s, self.target.step) for s in spec.choices}
        if self.target_cost <= 0:
            raise ValueError("the cost of a target run must be positive")
        config = {
            "target": json.loads(self.target.to_json()),
            "method": self.method,
            "cost_at_target_step": {repr(s): c for s, c in costs.items()}
            | {repr(self.target.scale): self.target_cost},
        }
        text = json.dumps(config)
        if len(text) < 2000:
            study._storage.set_study_system_attr(study._study_id, CONFIG_ATTR, text)

    # -- Optuna hooks -------------------------------------------------------------------------
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        attrs = study._storage.get_study_system_attrs(study._study_id)
        space: dict[str, BaseDistribution] = {}
        for spec in mixture_specs_from_attrs(attrs)[:1]:
            for d, lo, hi in zip(spec.domains, spec.lower, spec.upper):
                space[spec.param_name(d)] = FloatDistribution(lo, hi)
        for sc in scale_specs_from_attrs(attrs):
            if sc.name == self.target.scale_param:
                space[sc.name] = CategoricalDistribution(list(sc.choices))
        return space

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        data = read_study(study)
        if data is None:
            return {}
        given = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
        if all(name in given for name in data.spec.param_names):
            return {}  # a retried or enqueued trial: its mixture is given, not proposed
        t0 = time.perf_counter()
        with single_threaded():
            proposal = self._propose(study, trial, data)
        params = {data.spec.param_name(d): float(x) for d, x in zip(data.spec.domains, proposal.weights)}
        if data.scale is not None:
            params[data.scale.name] = proposal.fidelity.scale
        self._record(study, trial, proposal, time.perf_counter() - t0)
        return {k: v for k, v in params.items() if k in search_space}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        data = read_study(study)
        if data is not None:
            if param_name in data.spec.param_names:
                w = self._startup_weights(study, trial, data)
                lo, hi = param_distribution.low, param_distribution.high  # type: ignore[attr-defined]
                return float(np.clip(w[data.spec.param_names.index(param_name)], lo, hi))
            if data.scale is not None and param_name == data.scale.name:
                proposal = self._startup_proposal(study, trial, data)
                self._record(study, trial, proposal, 0.0)
                return proposal.fidelity.scale
        rng_seed = int(np.random.default_rng([self._seed, trial.number, 7]).integers(2**31))
        return RandomSampler(seed=rng_seed).sample_independent(
            study, trial, param_name, param_distribution
        )

    # -- the proposal -------------------------------------------------------------------------
    def _rng(self, trial: FrozenTrial, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self._seed, trial.number, stream])

    def _startup_weights(self, study: Study, trial: FrozenTrial, data: StudyData) -> np.ndarray:
        """A space-filling start: the uniform mixture first, then, of candidates drawn for this
        trial, the one farthest from every mixture another run holds.

        Independent draws cluster in the middle of the simplex, where mixtures differ little: a
        model fitted on them learns that mixtures hardly matter and then only crawls around its
        first good point.  Stored on the trial, so that every parameter of it (and a retry) agrees.
        """
        stored = study._storage.get_trial_system_attrs(trial._trial_id).get(STARTUP_ATTR)
        if stored is not None:
            return np.array(stored, dtype=float)
        spec = data.spec
        held = []
        for other in data.trials:
            if other.number == trial.number or other.state not in _HOLDING_STATES:
                continue
            point = self._held_point(other, spec)
            other_start = other.system_attrs.get(STARTUP_ATTR)
            if point is not None:
                held.append(point[0])
            elif other_start is not None:
                held.append(np.array(other_start, dtype=float))
        if held:
            cands = sample_simplex(self._rng(trial, 1), 256, spec, face_fraction=0.0)
            gaps = np.linalg.norm(cands[:, None, :] - np.asarray(held)[None, :, :], axis=2).min(axis=1)
            w = cands[int(np.argmax(gaps))]
        else:
            w = np.full(spec.k, 1.0 / spec.k)
            if spec.has_bounds:
                w = project_to_bounded_simplex(w[None], np.array(spec.lower), np.array(spec.upper))[0]
        study._storage.set_trial_system_attr(trial._trial_id, STARTUP_ATTR, [float(x) for x in w])
        return w

    def fidelities(self, data: StudyData, *, plan_stops: bool = True) -> list[Fidelity]:
        """Every runnable (scale, stop step); only full runs unless ADSOPruner honours stops."""
        target_cost = self.target_cost
        scales = list(data.scale.choices) if data.scale is not None else [self.target.scale or 1.0]
        fractions = self.stop_fractions if plan_stops else (1.0,)
        axes = self.axes(data)
        out = []
        for s in scales:
            for frac in fractions:
                step = max(1.0, round(frac * self.target.step))
                z = axes.z([math.log10(s)], [math.log10(step)])[0]
                out.append(Fidelity(s, step, (float(z[0]), float(z[1])), self.run_cost(s, step) / target_cost))
        return out

    def axes(self, data: StudyData) -> FidelityAxes:
        t_scale = self.target.scale or 1.0
        min_scale = min(data.scale.choices) if data.scale is not None else t_scale
        # The step axis spans at least a tenth of the target step whatever stops are planned, so
        # that the model's coordinates (and hence its priors) do not depend on that setting.
        min_step = min(_STEP_AXIS_FRACTION, *self.stop_fractions) * self.target.step
        return FidelityAxes.from_ranges(
            math.log10(t_scale), math.log10(self.target.step), math.log10(min_scale), math.log10(min_step)
        )

    def _n_startup(self, data: StudyData) -> int:
        if self.n_startup_trials is not None:
            return self.n_startup_trials
        return max(3, len(data.scale.choices) if data.scale is not None else 0)

    def _startup_fidelity(self, study: Study, trial: FrozenTrial, data: StudyData) -> Fidelity:
        """Startup runs visit every scale in turn, big ones stopped early (when a stop is honoured)."""
        fids = self.fidelities(data, plan_stops=_plans_stops(study))
        scales = sorted({f.scale for f in fids})
        scale = scales[trial.number % len(scales)]
        options = [f for f in fids if f.scale == scale]
        affordable = [f for f in options if f.relative_cost <= 0.25]
        return max(affordable, key=lambda f: f.step) if affordable else min(options, key=lambda f: f.step)

    def _startup_proposal(self, study: Study, trial: FrozenTrial, data: StudyData) -> Proposal:
        fid = self._startup_fidelity(study, trial, data)
        return Proposal(self._startup_weights(study, trial, data), fid, 0.0, math.nan, math.nan)

    def fit_surrogate(
        self,
        data: StudyData,
        rng: np.random.Generator,
        *,
        now: int,
        exclude_trial: int | None = None,
        maxiter: int | None = None,
    ) -> tuple[MultiFidelitySurrogate, Observations, FidelityAxes]:
        """Fit the GP on the study's observations, warm-started from the last stored state.

        Hyperparameters are re-optimized on a schedule (see :func:`_refit_due`); in between, the
        stored ones are reused and the GP is only conditioned on the new data (milliseconds).
        """
        obs = collect_observations(
            [t for t in data.trials if t.number != exclude_trial],
            data.spec,
            data.scale,
            target_scale=self.target.scale or 1.0,
            target_step=self.target.step,
            maximize=data.maximize,
        )
        warn_nonfinite(obs.n_ignored_nonfinite)
        if len(obs) < 2:
            raise SurrogateFitError("fewer than two finite observations")
        axes = self.axes(data)
        z = axes.z(obs.log_scale, obs.log_step)
        x = np.column_stack([obs.weights, z])
        # Keep the points nearest the target fidelity when the study outgrows max_points.
        priority = -np.abs(z).sum(axis=1)
        idx = thin_observations(len(x), self.max_points, priority, rng)
        kind = METHODS[self.method][0]
        latest = _latest_gp_state(data.trials, kind)
        init_state = latest[0] if latest else None
        if maxiter is None and latest is not None and not _refit_due(latest[1], now):
            maxiter = 0  # condition on the new data with the stored hyperparameters
        surrogate = MultiFidelitySurrogate(kind, self.max_points).fit(
            x[idx], obs.values[idx], n_weights=data.spec.k, init_state=init_state, maxiter=maxiter
        )
        surrogate.refitted = maxiter != 0
        return surrogate, obs, axes

    def _propose(self, study: Study, trial: FrozenTrial, data: StudyData) -> Proposal:
        n_before = sum(1 for t in data.trials if t.number < trial.number and trial_weights(t, data.spec) is not None)
        if n_before < self._n_startup(data):
            return self._startup_proposal(study, trial, data)
        rng = self._rng(trial)
        try:
            surrogate, obs, axes = self.fit_surrogate(data, rng, now=trial.number, exclude_trial=trial.number)
        except SurrogateFitError as exc:
            warnings.warn(f"ADSOSampler: {exc}; proposing a random mixture at startup fidelity", stacklevel=2)
            return self._startup_proposal(study, trial, data)
        if surrogate.refitted:
            study._storage.set_trial_system_attr(
                trial._trial_id,
                GP_STATE_ATTR,
                json.dumps({"kind": surrogate.kind, "state": surrogate.state(), "trial": trial.number}),
            )
        pending = [np.column_stack([obs.pending_weights, axes.z(obs.pending_log_scale, obs.pending_log_step)])]
        in_flight = []
        # (mixture, scale) of every run in flight or done: re-running one would pay a whole run
        # for at most the tail of a curve already known, and concurrent workers must not share one.
        taken: list[tuple[np.ndarray, float]] = []
        for other in data.trials:
            if other.number == trial.number or other.state not in _HOLDING_STATES:
                continue
            running = other.state == TrialState.RUNNING
            held = self._held_point(other, data.spec)
            if held is None:
                if running and other.number < trial.number:
                    in_flight.append(other)  # still computing its proposal, right now
                continue
            w, scale, stop_step = held
            taken.append((w, scale))
            if running and trial_weights(other, data.spec) is None:  # claimed, params not yet written
                z = axes.z([math.log10(scale)], [math.log10(stop_step)])
                pending.append(np.column_stack([w[None], z]))
        pending_x = np.vstack(pending)
        if len(pending_x):
            believed, _ = surrogate.predict(pending_x)  # kriging believer: pending runs return their mean
            surrogate = surrogate.condition_on(pending_x, believed)
        incumbents = _incumbent_weights(surrogate, obs)
        acq_name = METHODS[self.method][1]
        n_model_trials = max(0, n_before - self._n_startup(data))
        exponent = 0.99**n_model_trials if self.method == "paper" else 1.0
        fidelities = self.fidelities(data, plan_stops=_plans_stops(study))
        top = max(f.scale for f in fidelities)
        spent_top, spent_all = self._spending(data, top)
        if self.method == "adso" and spent_top < self.min_target_share * spent_all:
            fidelities = [f for f in fidelities if f.scale == top]
        # Workers asking at the same moment see the same data.  Re-create what an earlier in-flight
        # trial is proposing (same data, its own random stream) and treat it as pending, so that
        # concurrent workers spread out rather than take turns at the same point.
        overhead = self.run_overhead if self.method == "adso" else 0.0

        def best_proposal(model: MultiFidelitySurrogate, stream: np.random.Generator) -> Proposal:
            acq = Acquisition(
                model, fidelities, incumbents, method=acq_name, cost_exponent=exponent, run_overhead=overhead
            )
            return optimize_acquisition(acq, data.spec, stream, n_candidates=self.n_candidates, taken=taken)

        def as_pending(model: MultiFidelitySurrogate, p: Proposal) -> MultiFidelitySurrogate:
            x = np.column_stack([p.weights[None], np.array([p.fidelity.z])])
            return model.condition_on(x, model.predict(x)[0])

        # Only the latest one: each re-creation costs a whole proposal, and with many workers on
        # few cores that cost multiplies; claims (below) keep proposals distinct anyway.
        for other in sorted(in_flight, key=lambda t: t.number)[-1:]:
            theirs = best_proposal(surrogate, self._rng(other))
            taken.append((theirs.weights, theirs.fidelity.scale))
            surrogate = as_pending(surrogate, theirs)
        proposal = best_proposal(surrogate, rng)
        # Claim the point where every worker sees it, then look.  Two workers that claim the same
        # point at the same moment (vertices attract several at once) each write, then read: by
        # the storage's ordering at least one of them sees the other's claim, and whoever sees a
        # claim on its point yields and proposes again.  Ordering by claim time instead would fail:
        # a claim stamped earlier may commit later than the other worker's look.
        for _ in range(4):
            self._record(study, trial, proposal, 0.0)
            if not self._taken_by_another(study, trial, data, proposal):
                break
            taken.append((proposal.weights, proposal.fidelity.scale))
            surrogate = as_pending(surrogate, proposal)
            proposal = best_proposal(surrogate, rng)
        return proposal

    def _held_point(self, other: FrozenTrial, spec: MixtureSpec) -> tuple[np.ndarray, float, float] | None:
        """(weights, scale, planned stop step) another trial runs or has claimed, if known."""
        w = trial_weights(other, spec)
        raw = other.system_attrs.get(PROPOSAL_ATTR)
        info = json.loads(raw) if raw else {}
        if w is not None:
            scale = other.params.get(self.target.scale_param) if self.target.scale_param else None
            scale = info.get("scale") if scale is None else scale
            return w, float(scale or self.target.scale or 1.0), float(info.get("stop_step") or self.target.step)
        if "weights" in info:
            return np.array(info["weights"]), float(info["scale"]), float(info["stop_step"])
        return None

    def _taken_by_another(self, study: Study, trial: FrozenTrial, data: StudyData, p: Proposal) -> bool:
        """Whether a run this proposal did not see finish holds the same (mixture, scale) as ``p``.

        That is every other trial but those already finished when ``data`` was read: a trial
        that was running (or not yet created) then may have claimed, run and even finished the
        same point while this proposal was being computed.
        """
        seen_finished = {t.number for t in data.trials if t.state.is_finished()}
        for other in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if other.number == trial.number or other.number in seen_finished:
                continue
            if other.state == TrialState.WAITING:
                continue
            held = self._held_point(other, data.spec)
            if held is None:
                continue
            w, scale, _ = held
            if scale == p.fidelity.scale and np.allclose(w, p.weights, atol=1e-7):  # attrs keep 8 decimals
                return True
        return False

    def trial_cost(self, t: FrozenTrial, data: StudyData) -> tuple[float, float]:
        """(scale, cost) of a run so far: paid up to its last report; a complete run that never
        reported paid for the target step.  Cost 0 for a run with nothing to show yet."""
        scale = trial_scale(t, data.scale, self.target.scale or 1.0)
        if scale is None:
            return math.nan, 0.0
        if t.last_step is not None:
            return scale, self.run_cost(scale, t.last_step)
        if t.state == TrialState.COMPLETE:
            return scale, self.run_cost(scale, self.target.step)
        return scale, 0.0

    def _spending(self, data: StudyData, top_scale: float) -> tuple[float, float]:
        """Effort spent at the top runnable scale, and in all: each run's cost plus the fixed
        ``run_overhead``, so that a hundred near-free runs count as the effort they are."""
        at_top = total = 0.0
        overhead = self.run_overhead * self.target_cost
        for t in data.trials:
            scale, c = self.trial_cost(t, data)
            c += overhead if math.isfinite(scale) else 0.0  # no scale: nothing ran yet
            total += c
            at_top += c if scale == top_scale else 0.0
        return at_top, total

    def _record(self, study: Study, trial: FrozenTrial, p: Proposal, seconds: float) -> None:
        storage = study._storage
        # A full run carries no stop (None), so that it completes; always written, so a plan made
        # before the scale was declared (first trial) is replaced.
        stop = p.fidelity.step if p.fidelity.step < self.target.step else None
        storage.set_trial_system_attr(trial._trial_id, STOP_STEP_ATTR, stop)
        info = {
            "scale": p.fidelity.scale,
            "stop_step": p.fidelity.step,
            "relative_cost": round(p.fidelity.relative_cost, 6),
            "score": p.score,
            "target_mean": p.target_mean,
            "target_std": p.target_std,
            "seconds": round(seconds, 4),
            "weights": [round(float(x), 8) for x in p.weights],
        }
        storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, json.dumps(info))
        _logger.debug("trial %d: %s", trial.number, info)


def _default_cost(params: Mapping[str, Any], step: float) -> float:
    scale = next(iter(params.values()), 1.0)
    return float(scale) * float(step)


def _plans_stops(study: Study) -> bool:
    from optuna_adso.pruner import ADSOPruner

    try:
        pruner = study.pruner
    except AttributeError:
        return False
    return isinstance(pruner, ADSOPruner) and pruner.planned_stops


def _latest_gp_state(trials: Sequence[FrozenTrial], kind: str) -> tuple[list[float], int] | None:
    """The most recently fitted hyperparameters in the study, and the trial that fitted them."""
    for t in sorted(trials, key=lambda t: -t.number):
        raw = t.system_attrs.get(GP_STATE_ATTR)
        if raw:
            try:
                data = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if data.get("kind") == kind:
                # a retried trial carries a copy of its original's attrs: when was it fitted?
                return [float(v) for v in data["state"]], int(data.get("trial", t.number))
    return None


def _refit_due(fitted_at: int, now: int) -> bool:
    """Refit on a geometric schedule: every trial early on, about every 10% of the study later."""
    return now - fitted_at >= max(1, now // 10)


def _incumbent_weights(surrogate: MultiFidelitySurrogate, obs: Observations, n: int = 8) -> np.ndarray:
    """Distinct tried mixtures, best predicted at the target first."""
    uniq = np.unique(np.round(obs.weights, 10), axis=0)
    mean, _ = surrogate.predict(np.column_stack([uniq, np.zeros((len(uniq), 2))]))
    return uniq[np.argsort(mean)[:n]]
