"""What a study is for and what it has seen, rebuilt from its storage.

:class:`StudySettings` is what the study is for: the target fidelity, the cost model, the method
and the fidelity settings.  The sampler holds them and stores them in the study
(``adso:config``), so that a pruner, a budget, ``recommend`` or a plot in any other process
rebuilds exactly the same ones: the cost model too, from what it takes to rebuild it
(:func:`~optuna_adso.cost.cost_spec`), or not at all, with an error that says how to pass it.

:class:`StudyModel` adds what the study has seen, read once per question: the declarations,
every trial, the observations, the GP fitted on them (warm-started from the last stored
hyperparameters) and the compute spent.  The sampler, the pruner, ``recommend``,
:class:`~optuna_adso.FlopsBudget` and the plots all stand on it, and none of them on each other.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_adso import fidelity_trust, records
from optuna_adso.acquisition import Fidelity
from optuna_adso.cost import ScaleStepCost, ScaleTimesSteps, cost_from_spec, cost_spec, resolve_cost
from optuna_adso.domain_model import DomainModel
from optuna_adso.domain_observations import (
    NO_DOMAIN_VALUES,
    domain_matrix,
    domain_names,
    objective_observations,
    subset,
)
from optuna_adso.fidelity_trust import FidelityTrust, ImportedTrust
from optuna_adso.objective_posterior import ObjectivePosterior
from optuna_adso.objectives import (
    ChebyshevScalarization,
    MeanLoss,
    MixtureObjective,
    WeightedLoss,
    objective_from_config,
    parse_objective,
    reference_weights,
)
from optuna_adso.space import (
    MixtureSpec,
    Observations,
    ScaleSpec,
    collect_observations,
    mixture_specs_from_attrs,
    scale_specs_from_attrs,
    trial_scale,
    trial_weights,
    warn_nonfinite,
)
from optuna_adso.surrogate import (
    SCALING_LAW_KIND,
    FidelityAxes,
    MultiFidelitySurrogate,
    SurrogateFitError,
    inputs_at,
    target_inputs,
    thin_observations,
)
from optuna_adso.swarm_shape import MIN_SWARM_RUNS, shape_holds, swarm_shape
from optuna_adso.validation import as_bool, as_in_range, as_int, as_number, as_positive

METHODS = {"adso": ("coregionalized", "info-per-cost"), "paper": ("product-rbf", "ei-per-cost")}
"""Each method's surrogate kind and acquisition rule."""

STEP_AXIS_FRACTION = 0.1
"""The model's step axis reaches down to this fraction of the target step."""

_IMPORTED_CHOICE_SEED = 0x1A9
"""Seeds the fixed choice of imported runs the model keeps when there are too many."""

HOLDING_STATES = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
"""Trial states that hold a (mixture, scale): in flight or done."""


class NoStudyConfig(ValueError):
    """The study has no ADSO configuration: no ADSOSampler ran it, and none was given."""


class CostModelNotStored(RuntimeError):
    """The study's cost model cannot be rebuilt from storage (a user callable)."""


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

    @property
    def run_scale(self) -> float:
        """The scale a run at the target has (1 when the study declares no scale)."""
        return self.scale if self.scale is not None else 1.0

    def as_dict(self) -> dict[str, float]:
        """As a user writes it: ``{"model_size": 1e9, "step": 20000}``."""
        out = {"step": self.step}
        if self.scale_param is not None:
            assert self.scale is not None
            out[self.scale_param] = self.scale
        return out

    def describe(self) -> str:
        scale = "" if self.scale_param is None else f"{self.scale_param}={self.scale:.3g}, "
        return f"{scale}step={self.step:g}"


@dataclass(frozen=True)
class StudySettings:
    """What a study is for; validated on construction, so bad input fails before any compute.

    See :class:`~optuna_adso.ADSOSampler` for the meaning of each field.
    """

    target: Target
    cost: Any = field(default_factory=ScaleTimesSteps)
    method: str = "adso"
    stop_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
    planned_stops: bool = False
    max_points: int = 320
    run_overhead: float = 0.1
    min_target_share: float = 0.5
    objective: MixtureObjective | None = None
    # a multi-objective study's objectives, one per direction (``objective=[...]``); () otherwise
    objectives: tuple[MixtureObjective, ...] = ()
    price: ScaleStepCost = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {self.method!r}")
        if not callable(self.cost):
            raise TypeError(f"cost must be a FlopsCost, TableCost or callable (params, step) -> cost, got {self.cost!r}")
        fractions = self.stop_fractions
        if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence):
            raise ValueError(f"stop_fractions must be a list of fractions in (0, 1] including 1.0, got {fractions!r}")
        ordered = tuple(sorted(as_number(f, "stop_fractions") for f in fractions))
        if not ordered or ordered[0] <= 0 or ordered[-1] != 1.0:
            raise ValueError(f"stop_fractions must be in (0, 1] and include 1.0, got {fractions!r}")
        as_bool(self.planned_stops, "planned_stops")
        as_int(self.max_points, "max_points", 20)
        overhead = as_number(self.run_overhead, "run_overhead")
        if overhead < 0.0:
            raise ValueError(f"run_overhead must be >= 0 (in target runs), got {self.run_overhead!r}")
        share = as_in_range(self.min_target_share, "min_target_share", 0.0, 1.0, include_high=False)
        object.__setattr__(self, "stop_fractions", ordered)
        object.__setattr__(self, "run_overhead", overhead)
        object.__setattr__(self, "min_target_share", share)
        if isinstance(self.objective, (list, tuple)):
            object.__setattr__(self, "objectives", tuple(self.objective))
            object.__setattr__(self, "objective", None)
        object.__setattr__(self, "objectives", _parse_objectives(self.objectives))
        object.__setattr__(self, "objective", parse_objective(self.objective))
        object.__setattr__(self, "price", resolve_cost(self.cost, self.target.scale_param))

    # -- cost -------------------------------------------------------------------------------
    def run_cost(self, scale: float, step: float) -> float:
        """Cumulative cost of a run of ``scale`` stopped after ``step`` steps."""
        return self.price(scale, step)

    @property
    def target_cost(self) -> float:
        return self.run_cost(self.target.run_scale, self.target.step)

    @property
    def surrogate_kind(self) -> str:
        return METHODS[self.method][0]

    @property
    def acquisition_rule(self) -> str:
        return METHODS[self.method][1]

    # -- storage ------------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """What :meth:`from_config` needs, for ``adso:config``; a callable cost is only named."""
        spec = cost_spec(self.cost)
        return {
            "target": {"step": self.target.step, "scale_param": self.target.scale_param, "scale": self.target.scale},
            "cost": spec if spec is not None else {"kind": "callable", "repr": repr(self.cost)[:200]},
            "method": self.method,
            "stop_fractions": list(self.stop_fractions),
            "planned_stops": self.planned_stops,
            "max_points": self.max_points,
            "run_overhead": self.run_overhead,
            "min_target_share": self.min_target_share,
            "objective": None if self.objective is None else self.objective.to_config(),
            "objectives": [o.to_config() for o in self.objectives],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudySettings:
        t = config["target"]
        target = Target(float(t["step"]), t["scale_param"], None if t["scale"] is None else float(t["scale"]))
        stored = config.get("cost")
        if stored is None or stored.get("kind") == "callable":
            what = f"a user callable ({stored['repr']})" if stored else "stored by an older optuna-adso"
            raise CostModelNotStored(
                f"this study's cost model is {what}, which cannot be rebuilt from storage; pass the "
                "study's sampler (sampler=ADSOSampler(target=..., cost=...)) or load the study with "
                "it, or use a FlopsCost or TableCost, which are stored"
            )
        return cls(
            target,
            cost_from_spec(stored),
            method=config.get("method", "adso"),
            stop_fractions=tuple(config.get("stop_fractions", (0.1, 0.25, 0.5, 1.0))),
            planned_stops=bool(config.get("planned_stops", False)),
            max_points=int(config.get("max_points", 320)),
            run_overhead=float(config.get("run_overhead", 0.1)),
            min_target_share=float(config.get("min_target_share", 0.5)),
            objective=objective_from_config(config.get("objective")),
            objectives=tuple(objective_from_config(c) for c in config.get("objectives") or ()),
        )


def _parse_objectives(objectives: Sequence[Any]) -> tuple[MixtureObjective, ...]:
    """A multi-objective study's objectives: none, or at least two linear per-domain ones."""
    parsed = tuple(parse_objective(o) for o in objectives)
    if not parsed:
        return ()
    if len(parsed) < 2 or any(o is None for o in parsed):
        raise ValueError(
            "objective: a list is for a multi-objective study and needs at least two per-domain objectives "
            f"(e.g. [MeanLoss(), DomainLoss('code')]), got {list(objectives)!r}"
        )
    nonlinear = [o for o in parsed if o is not None and not o.linear]
    if nonlinear:
        raise ValueError(
            f"objective: a multi-objective study's objectives must be linear (MeanLoss, DomainLoss, WeightedLoss); "
            f"{nonlinear[0]!r} is not"
        )
    return parsed  # type: ignore[return-value]


class HasStudySettings(Protocol):
    """Anything that carries a study's settings, e.g. :class:`~optuna_adso.ADSOSampler`."""

    settings: StudySettings


SettingsSource = StudySettings | HasStudySettings


def settings_for_study(study: optuna.Study, source: SettingsSource | None = None) -> StudySettings:
    """The study's settings: those given, its sampler's, or the ones it stores.

    Raises :class:`NoStudyConfig` when there are none (no ADSOSampler ran the study yet) and
    :class:`CostModelNotStored` when the stored cost model cannot be rebuilt.
    """
    if source is not None:
        settings = source if isinstance(source, StudySettings) else getattr(source, "settings", None)
        if not isinstance(settings, StudySettings):
            raise TypeError(f"sampler must be an ADSOSampler (or its StudySettings), got {source!r}")
        return settings
    try:
        own = getattr(study.sampler, "settings", None)
    except AttributeError:  # a study view (HyperbandPruner's bracket) without a sampler
        own = None
    if isinstance(own, StudySettings):
        return own
    config = records.read_config(records.study_attrs(study))
    if config is None:
        raise NoStudyConfig(
            "recommend() needs the study's target: pass sampler=ADSOSampler(target=..., cost=...) "
            "or load the study with that sampler"
        )
    return StudySettings.from_config(config)


@dataclass(frozen=True)
class StudyView:
    """What a study declares and has run, whoever sampled it (no ADSO settings needed)."""

    spec: MixtureSpec
    scale: ScaleSpec | None
    trials: list[FrozenTrial]
    maximize: bool


def read_study(study: optuna.Study) -> StudyView | None:
    """Declarations and trials straight from storage (works under HyperbandPruner's views too);
    None while no mixture is declared."""
    attrs = records.study_attrs(study)
    specs = mixture_specs_from_attrs(attrs)
    if not specs:
        return None
    if len(specs) > 1:
        raise ValueError(
            f"ADSOSampler optimizes one mixture per study; this study declares {[s.name for s in specs]}"
        )
    scales = scale_specs_from_attrs(attrs)
    return StudyView(specs[0], scales[0] if scales else None, records.all_trials(study), records.is_maximize(study))


@dataclass(frozen=True)
class HeldPoint:
    """The (mixture, scale, planned stop step) a trial runs, ran or has claimed."""

    weights: np.ndarray
    scale: float
    stop_step: float
    claimed_only: bool = False  # proposed, but the trial has not written its parameters yet


@dataclass(frozen=True)
class FittedSurrogate:
    """A GP on the study's observations, the observations, and whether it was re-optimized."""

    surrogate: MultiFidelitySurrogate
    observations: Observations
    axes: FidelityAxes
    refitted: bool
    rows: np.ndarray  # the observations the GP was fitted on (indices; max_points thins them)
    state_kind: str = ""  # the key its hyperparameters are stored under (records.write_gp_state)
    side_states: list[tuple[str, list[float]]] = field(default_factory=list)  # other fits to store
    imported: ImportedTrust | None = None  # the verdict on imported runs, where there are any


@dataclass(frozen=True)
class AnchorCheck:
    """The anchor-only GP (None below two anchor runs) and the verdict on the cheap fidelities."""

    anchor_only: MultiFidelitySurrogate | None
    trust: FidelityTrust
    anchor_weights: np.ndarray  # the mixtures of the anchor runs, complete or stopped early
    refitted: bool = False  # the anchor-only GP's hyperparameters were re-optimized (store them)
    n_complete: int = 0  # the first n_complete rows of the anchor-only GP are complete runs' final values

    @property
    def hedged(self) -> bool:
        """Answer from the anchor-only GP: the cheap fidelities have not earned their place."""
        return self.anchor_only is not None and not self.trust.earned

    def anchor_only_inflation(self) -> float:
        """How much wider the anchor-only GP's std of the expected value must be for its own
        held-out complete runs to be covered (:func:`fidelity_trust.latent_inflation`, leaving
        each run out of that GP in turn); 1 without a verdict.

        Its own, not that of the study GP's kernel restricted to the anchor (``trust``): where
        runs are noisy the anchor-only GP shrinks every mixture towards the runs' average, and
        only its own held-out errors show how far it underrates the good ones."""
        n = self.n_complete
        if self.anchor_only is None or not fidelity_trust.can_decide(n):
            return 1.0
        rows = np.arange(n)
        y = self.anchor_only.training_values()[:n]
        mean, var = self.anchor_only.leave_runs_out(np.arange(len(self.anchor_weights)), rows)
        return fidelity_trust.latent_inflation(y, mean, var, self.anchor_only.noise_variance)


class StudyModel:
    """A study as the model sees it: settings, declarations and trials, read once."""

    def __init__(
        self,
        settings: StudySettings,
        spec: MixtureSpec,
        scale: ScaleSpec | None,
        trials: list[FrozenTrial],
        maximize: bool,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.scale = scale
        self.trials = trials
        self.reported_maximize = maximize
        # A per-domain objective is a loss, minimized whatever the direction of the reported value.
        self.maximize = maximize if settings.objective is None else False
        self._held: dict[int, HeldPoint | None] | None = None
        self._reported: list[str] | None = None
        self._imported: list[int] | None = None  # numbers of imported runs, sorted (see own_number)
        self._shape: tuple[np.ndarray | None] | None = None  # the swarm's shape, once computed
        # the per-domain model fitted to value the objective's reference, by excluded trial: the
        # composite acquisition reuses it (this instance lives for one proposal)
        self._domain_fits: dict[int | None, tuple[FittedSurrogate, DomainModel]] = {}

    @classmethod
    def load(cls, study: optuna.Study, settings: StudySettings) -> StudyModel | None:
        """The study's model from storage; None while no mixture is declared."""
        view = read_study(study)
        return None if view is None else cls(settings, view.spec, view.scale, view.trials, view.maximize)

    @classmethod
    def of(cls, study: optuna.Study, source: SettingsSource | None = None) -> StudyModel:
        """The study's model with the settings :func:`settings_for_study` finds; ValueError while
        the study declares no mixture."""
        model = cls.load(study, settings_for_study(study, source))
        if model is None:
            raise ValueError(
                f"study {study.study_name!r} declares no mixture yet: run a trial that calls suggest_mixture"
            )
        return model

    @property
    def target(self) -> Target:
        return self.settings.target

    # -- the objective --------------------------------------------------------------------------
    @property
    def objective(self) -> MixtureObjective | None:
        """What is optimized: None for the reported value, else a per-domain objective."""
        return self.settings.objective

    @property
    def state_kind(self) -> str:
        """The key the GP's hyperparameters are stored under: one per objective."""
        kind = self.settings.surrogate_kind
        return kind if self.objective is None else f"{kind}@{self.objective.storage_key}"

    def reported_domains(self) -> list[str]:
        """Every evaluation domain the study's runs reported, in the order first seen (read once)."""
        if self._reported is None:
            seen: dict[str, None] = {}
            for t in self.trials:
                for values in records.domain_values(t).values():
                    seen.update(dict.fromkeys(values))
            self._reported = list(seen)
        return list(self._reported)

    def with_objective(self, objective: MixtureObjective | str | None) -> StudyModel:
        """The same study scored by another objective (re-targeting needs no new runs)."""
        settings = replace(self.settings, objective=parse_objective(objective))
        if settings.objective is not None and not self.reported_domains():
            raise ValueError(NO_DOMAIN_VALUES)
        model = StudyModel(settings, self.spec, self.scale, self.trials, self.reported_maximize)
        model._held, model._reported = self._held, self._reported
        return model

    # -- fidelities -----------------------------------------------------------------------------
    @property
    def scale_choices(self) -> list[float]:
        return list(self.scale.choices) if self.scale is not None else [self.target.run_scale]

    def axes(self) -> FidelityAxes:
        t_scale = self.target.run_scale
        min_scale = min(self.scale.choices) if self.scale is not None else t_scale
        # The step axis spans at least a tenth of the target step whatever stops are planned, so
        # that the model's coordinates (and hence its priors) do not depend on that setting.
        min_step = min(STEP_AXIS_FRACTION, *self.settings.stop_fractions) * self.target.step
        return FidelityAxes.from_ranges(
            math.log10(t_scale), math.log10(self.target.step), math.log10(min_scale), math.log10(min_step)
        )

    def fidelities(self) -> list[Fidelity]:
        """Every runnable (scale, stop step); only full runs unless stops are planned."""
        target_cost = self.settings.target_cost
        fractions = self.settings.stop_fractions if self.settings.planned_stops else (1.0,)
        axes = self.axes()
        out = []
        for s in self.scale_choices:
            for frac in fractions:
                step = max(1.0, round(frac * self.target.step))
                z = axes.z([math.log10(s)], [math.log10(step)])[0]
                out.append(Fidelity(s, step, (float(z[0]), float(z[1])), self.settings.run_cost(s, step) / target_cost))
        return out

    # -- who holds what -------------------------------------------------------------------------
    @property
    def held_points(self) -> dict[int, HeldPoint | None]:
        """What each trial of the study runs, ran or has claimed (None: not known yet), by number."""
        if self._held is None:
            self._held = {t.number: held_point(t, self.spec, self.target) for t in self.trials}
        return self._held

    # -- observations and the surrogate ---------------------------------------------------------
    def observations(self, exclude_trial: int | None = None, rng: np.random.Generator | None = None) -> Observations:
        """Every usable report; valued by the objective when there is one (see
        :mod:`optuna_adso.domain_observations`)."""
        return self._valued_observations(exclude_trial, rng)[0]

    def _valued_observations(
        self, exclude_trial: int | None, rng: np.random.Generator | None
    ) -> tuple[Observations, list[tuple[str, list[float]]]]:
        """The observations, and the hyperparameters of any GP re-fitted to value them (a
        reference's losses come from a GP of their own), for the sampler to store."""
        obs = collect_observations(
            # A seed replicate measures a seed's luck (seed_replicates) and is left out of the
            # model: every other run shares one seed's luck, so differences between mixtures are
            # nearly free of it, and a run with another seed's luck would bias its own mixture.
            [t for t in self.trials if t.number != exclude_trial and not records.is_seed_replicate(t)],
            self.spec,
            self.scale,
            target_scale=self.target.run_scale,
            target_step=self.target.step,
            maximize=self.reported_maximize,
            per_domain_steps=bool(self.settings.objectives),
        )
        if self.objective is None:
            return obs, []
        side: list[tuple[str, list[float]]] = []

        def reference_losses(rows: Observations, names: list[str]) -> np.ndarray:
            mean, fitted = self._reference_losses(rows, names, exclude_trial, rng)
            if fitted.refitted:
                side.append((fitted.state_kind, fitted.surrogate.state()))
            return mean

        return objective_observations(obs, self.objective, self.spec.domains, reference_losses), side

    def _reference_losses(
        self, rows: Observations, names: list[str], exclude_trial: int | None, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, FittedSurrogate]:
        """The objective's reference mixture's per-domain losses at each row's fidelity, from the
        joint per-domain model on the GP of the mean loss over ``names`` (returned too)."""
        base = self.summed_loss_model(names)
        fitted = base.fit_surrogate(rng or np.random.default_rng(0), now=len(self.trials), exclude_trial=exclude_trial)
        model = base.domain_model(fitted, names)
        self._domain_fits[exclude_trial] = (fitted, model)
        ref = reference_weights(self.objective.reference, self.spec.domains, "the objective's reference")
        z = self.axes().z(rows.log_scale, rows.log_step)
        mean, _ = model.predict(np.column_stack([np.tile(ref, (len(z), 1)), z]))
        return mean, fitted

    def scalarized(self, weights: np.ndarray) -> StudyModel:
        """A multi-objective study seen through one weighting of its objectives
        (:class:`~optuna_adso.objectives.ChebyshevScalarization`), each objective scaled by the
        range of its values over every report so far."""
        components = self.settings.objectives
        if not components:
            raise ValueError("the study has one objective; scalarizing is for multi-objective studies")
        names = self.reported_domains()
        if not names:
            raise ValueError(NO_DOMAIN_VALUES)
        for o in components:
            o.validate(names, self.spec.domains)
        raw = collect_observations(self.trials, self.spec, self.scale, target_scale=self.target.run_scale,
                                   target_step=self.target.step, maximize=False, per_domain_steps=True)
        _, losses = domain_matrix(raw, names)
        values = np.column_stack([o.evaluate(losses, None, names) for o in components]) if len(losses) else None
        low = values.min(axis=0) if values is not None else np.zeros(len(components))
        span = values.max(axis=0) - low if values is not None else np.ones(len(components))
        w = np.asarray(weights, dtype=float)
        return self.with_objective(ChebyshevScalarization(components, w / w.sum(), low, span))

    def summed_loss_model(self, names: Sequence[str]) -> StudyModel:
        """The study scored by the sum of the losses of ``names``: a smooth, linear stand-in whose
        GP kernel the per-domain model shares."""
        names = list(names)
        return self.with_objective(WeightedLoss(dict.fromkeys(names, 1.0)) if len(names) > 1 else MeanLoss())

    def objective_posterior(
        self, rng: np.random.Generator, *, now: int, exclude_trial: int | None = None,
        z: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[FittedSurrogate, ObjectivePosterior]:
        """The GP of the objective's domains' summed loss and the joint posterior of the (non-linear)
        objective at fidelity ``z`` on its kernel: what the composite acquisition scores with.
        Reuses the fit that valued the objective's reference for the same ``exclude_trial``."""
        if self.objective is None:
            raise ValueError("the study optimizes the reported value: there is no per-domain objective")
        cached = self._domain_fits.get(exclude_trial)
        if cached is None:
            names = self.objective.domains_used(self.reported_domains())
            base = self.summed_loss_model(names)
            fitted = base.fit_surrogate(rng, now=now, exclude_trial=exclude_trial)
            cached = (fitted, base.domain_model(fitted, names))
            self._domain_fits[exclude_trial] = cached
        fitted, model = cached
        seed = int(rng.integers(2**31))
        return fitted, ObjectivePosterior(model, self.objective, self.spec.domains, z, seed=seed)

    def domain_model(self, fitted: FittedSurrogate, names: Sequence[str] | None = None, *,
                     refit_kernel: bool = False) -> DomainModel:
        """Every domain's loss jointly, with the kernel of ``fitted`` (see :mod:`optuna_adso.domain_model`)."""
        obs = fitted.observations
        used = domain_names(obs) if names is None else list(names)
        if not used:
            raise ValueError(NO_DOMAIN_VALUES)
        sub = obs if len(fitted.rows) == len(obs) else subset(obs, fitted.rows, obs.values[fitted.rows])
        rows, losses = domain_matrix(sub, used)
        z = fitted.axes.z(sub.log_scale[rows], sub.log_step[rows])
        return DomainModel.fit(fitted.surrogate, np.column_stack([sub.weights[rows], z]), losses, used,
                               refit_kernel=refit_kernel)

    def fit_surrogate(
        self,
        rng: np.random.Generator,
        *,
        now: int,
        exclude_trial: int | None = None,
        maxiter: int | None = None,
    ) -> FittedSurrogate:
        """Fit the GP on the study's observations, warm-started from the last stored state.

        Hyperparameters are re-optimized on a schedule (see :func:`refit_due`); in between, the
        stored ones are reused and the GP is only conditioned on the new data (milliseconds).
        """
        obs, side = self._valued_observations(exclude_trial, rng)
        warn_nonfinite(obs.n_ignored_nonfinite)
        if len(obs) < 2:
            raise SurrogateFitError("fewer than two finite observations")
        borrowed = np.isin(obs.trial_numbers, list(self._imported_below_anchor()))
        own_rows = np.flatnonzero(~borrowed)
        if not borrowed.any() or len(own_rows) < 2:  # nothing imported, or nothing else to go on
            return replace(self._fit_rows(obs, rng, now=now, maxiter=maxiter, kind=self.state_kind), side_states=side)
        # The model with the imported runs sees exactly the own model's rows plus the imported
        # runs' final values: thinned together, the study's own reports (nearer the target)
        # crowded every imported row out once the study had a few hundred of them, and the
        # held-out test compared two models of the same data.
        own_obs = subset(obs, own_rows, obs.values[own_rows])
        own_kept = self._thinned(self.axes().z(own_obs.log_scale, own_obs.log_step), rng)
        kept = np.sort(np.concatenate([own_rows[own_kept], self._imported_finals(obs, borrowed)]))
        full = self._fit_rows(obs, rng, now=now, maxiter=maxiter, kind=self.state_kind, rows=kept)
        own = self._fit_rows(own_obs, rng, now=now, maxiter=maxiter,
                             kind=self.state_kind + records.OWN_RUNS_SUFFIX, rows=own_kept)
        verdict = fidelity_trust.assess_imported(self._scored(full), self._scored(own),
                                                 np.flatnonzero(self._anchor_rows(full)[0]))
        chosen, other = (full, own) if verdict.earned else (own, full)
        if other.refitted:
            side = side + [(other.state_kind, other.surrogate.state())]
        return replace(chosen, side_states=side, imported=verdict)

    def fit_stated(self, fitted: FittedSurrogate, *, now: int, maxiter: int | None = None) -> FittedSurrogate:
        """The GP that states values beyond the runs: ``fitted``'s rows and values, a scaling law
        per mixture (a power law with a floor in parameters and steps as the mean and as each
        mixture's trend; kind ``coregionalized-scaling-law``) and hyperparameters of its own,
        stored under their own key on the same schedule.

        Beyond the largest runnable scale the search's straight lines in log scale run on for
        ever, and the values and intervals stated there came out too optimistic (mean z +0.8).
        The search keeps them: with a power-law mean it was better on one beyond-the-runs world
        and worse on others.  ``fitted`` itself for any other surrogate than the coregionalized one.
        """
        if fitted.surrogate.kind != "coregionalized":
            return fitted
        stated = self._fit_rows(fitted.observations, None, now=now, maxiter=maxiter,
                                kind=fitted.state_kind + records.STATED_SUFFIX, rows=fitted.rows,
                                surrogate_kind=SCALING_LAW_KIND)
        return replace(stated, imported=fitted.imported)

    def stated_or_search(self, fitted: FittedSurrogate, *, now: int) -> tuple[FittedSurrogate, str | None]:
        """:meth:`fit_stated` with the stored hyperparameters, or ``fitted`` itself (the search's
        GP) with a note saying why where the scaling law cannot be fitted: ``recommend``,
        ``predict`` and the scale fan state values beyond the runs alike, and none of them fails
        for want of the second GP."""
        try:
            return self.fit_stated(fitted, now=now, maxiter=0), None
        except SurrogateFitError as exc:
            return fitted, f"the scaling-law GP could not be fitted ({exc}): the search's GP states the value"

    def _refit_due(self, fitted_at: int, now: int) -> bool:
        """:func:`refit_due`, counted in the study's own trials: 256 imported runs would
        otherwise stretch the schedule to a refit every 26 trials from the first new one."""
        return refit_due(self.own_number(fitted_at), self.own_number(now))

    def own_number(self, number: int) -> int:
        """How many of the study's own trials (imported runs not counted) come before trial
        ``number``: what seeds a trial's random streams, so that imported runs the model never
        admits leave a study exactly as the cold study of the same seed would run."""
        if self._imported is None:
            self._imported = sorted(t.number for t in self.trials if records.is_imported(t))
        return number - bisect.bisect_left(self._imported, number)

    @property
    def n_own_trials(self) -> int:
        """The study's trials that are not imported runs."""
        return self.own_number(len(self.trials))

    def _imported_below_anchor(self) -> set[int]:
        return {t.number for t in self.trials if self.is_borrowed(t)}

    def is_borrowed(self, trial: FrozenTrial) -> bool:
        """An imported run below the anchor scale: cheap data the study did not choose, used only
        once it has earned its place (at the anchor scale, imported runs are the anchor's own
        data and need no test)."""
        return records.is_imported(trial) and not self.at_anchor_scale(trial)

    def mixture_shape(self) -> np.ndarray | None:
        """The lengthscales the imported runs below the anchor teach (see
        :mod:`optuna_adso.swarm_shape`): fitted to their reported final values at the scale most
        of them ran; None without such a swarm.  Computed once per model, and only where a
        multi-fidelity GP is fitted before three complete anchor runs (the anchor-only GP never
        uses it)."""
        if self._shape is None:
            self._shape = (self._swarm_shape(),)
        return self._shape[0]

    def _swarm_shape(self) -> np.ndarray | None:
        borrowed = [t for t in self.trials if self.is_borrowed(t)]
        if len(borrowed) < MIN_SWARM_RUNS:
            return None
        obs = collect_observations(borrowed, self.spec, self.scale, target_scale=self.target.run_scale,
                                   target_step=self.target.step, maximize=self.reported_maximize)
        last = last_reports(obs, np.arange(len(obs)))
        scales, counts = np.unique(np.round(obs.log_scale[last], 6), return_counts=True)
        at = last[np.isclose(obs.log_scale[last], scales[np.argmax(counts)])]
        return swarm_shape(obs.weights[at], obs.values[at], max_points=self.settings.max_points)

    def _thinned(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """At most ``max_points`` of the rows at fidelity coordinates ``z``: those nearest the
        target fidelity first."""
        return thin_observations(len(z), self.settings.max_points, -np.abs(z).sum(axis=1), rng)

    def _imported_finals(self, obs: Observations, borrowed: np.ndarray) -> np.ndarray:
        """The last report of each imported run below the anchor (what it says about its
        mixture at its scale), for at most half of ``max_points`` runs: a fixed choice, so that
        the model does not change between proposals for want of new data."""
        last = last_reports(obs, np.flatnonzero(borrowed))
        cap = self.settings.max_points // 2
        if len(last) > cap:
            last = np.sort(np.random.default_rng(_IMPORTED_CHOICE_SEED).choice(last, size=cap, replace=False))
        return last

    def _fit_rows(self, obs: Observations, rng: np.random.Generator | None, *, now: int, maxiter: int | None,
                  kind: str, rows: np.ndarray | None = None, surrogate_kind: str | None = None) -> FittedSurrogate:
        """The GP on ``obs`` (on its ``rows``; default: thinned to ``max_points`` with ``rng``), its
        hyperparameters stored under ``kind``; a GP of the study's kind unless ``surrogate_kind``."""
        axes = self.axes()
        z = axes.z(obs.log_scale, obs.log_step)
        x = np.column_stack([obs.weights, z])
        idx = self._thinned(z, rng) if rows is None else np.asarray(rows, dtype=int)
        latest = records.latest_gp_state(self.trials, kind)
        init_state = latest[0] if latest else None
        if maxiter is None and latest is not None and not self._refit_due(latest[1], now):
            maxiter = 0  # condition on the new data with the stored hyperparameters
        # priors act in fits only; the swarm's shape only until the study's own anchor runs can be
        # tested (asked in that order: the swarm's own GP is fitted only where its shape is used)
        fits = maxiter != 0 or init_state is None
        has_imports = self.n_own_trials < len(self.trials)
        early = fits and has_imports and not fidelity_trust.can_decide(self.complete_anchor_runs())
        shape = self.mixture_shape() if early else None

        def fitted(with_shape: np.ndarray | None) -> MultiFidelitySurrogate:
            return MultiFidelitySurrogate(surrogate_kind or self.settings.surrogate_kind, self.settings.max_points,
                                          with_shape).fit(
                x[idx], obs.values[idx], n_weights=self.spec.k, init_state=init_state, maxiter=maxiter,
                groups=obs.trial_numbers[idx],  # a run's reports share its offset
            )

        surrogate = fitted(shape)
        if shape is not None:
            surrogate = self._unless_shape_misleads(surrogate, lambda: fitted(None), obs, idx)
        return FittedSurrogate(surrogate, obs, axes, maxiter != 0, idx, kind)

    def _unless_shape_misleads(self, shaped: MultiFidelitySurrogate, fit_plain: Callable[[], MultiFidelitySurrogate],
                               obs: Observations, idx: np.ndarray) -> MultiFidelitySurrogate:
        """``shaped``, or the GP ``fit_plain`` fits without the swarm's shape where that one
        predicts the study's own runs (each held out) clearly better: the swarm's shape is imported data
        too, and must not mislead the study more than its own runs would (:func:`shape_holds`)."""
        try:
            plain = fit_plain()
        except SurrogateFitError:
            return shaped
        runs = obs.trial_numbers[idx]
        own = ~np.isin(runs, list(self._imported_below_anchor()))
        position = {int(r): i for i, r in enumerate(idx)}
        finals = np.array([position[int(r)] for r in last_reports(obs, idx[own])], dtype=int)
        return shaped if shape_holds(shaped, plain, runs, obs.values[idx], finals) else plain

    def _scored(self, fitted: FittedSurrogate) -> tuple[MultiFidelitySurrogate, np.ndarray, np.ndarray, np.ndarray]:
        """(GP, run of each training row, their values, the rows of the complete anchor runs'
        final values): what :func:`fidelity_trust.assess_imported` scores.  Anchor rows are
        never left out of either model, so both name the same runs."""
        obs, rows = fitted.observations, fitted.rows
        return fitted.surrogate, obs.trial_numbers[rows], obs.values[rows], self._anchor_rows(fitted)[1]

    # -- the anchor: the target, or the largest runnable scale when the target cannot be run -----
    @property
    def anchor_state_kind(self) -> str:
        """The key the anchor-only GP's hyperparameters are stored under."""
        return "mixture" if self.objective is None else f"mixture@{self.objective.storage_key}"

    @property
    def anchor_scale(self) -> float:
        return max(self.scale_choices)

    @property
    def target_runnable(self) -> bool:
        return self.anchor_scale >= self.target.run_scale

    def anchor_z(self) -> tuple[float, float]:
        """Model coordinates of a full run at the anchor scale; (0, 0) when the target is runnable."""
        if self.target_runnable:
            return (0.0, 0.0)
        z = self.axes().z([math.log10(self.anchor_scale)], [math.log10(self.target.step)])[0]
        return (float(z[0]), float(z[1]))

    def at_anchor_scale(self, trial: FrozenTrial) -> bool:
        """Whether ``trial`` runs at the anchor scale (its scale not known yet: no)."""
        scale = trial_scale(trial, self.scale, self.target.run_scale)
        return scale is not None and math.isclose(scale, self.anchor_scale)

    def complete_anchor_trials(self) -> list[FrozenTrial]:
        """Finished trials at the anchor scale that reported its final step, seed replicates
        included."""
        final = self.target.step
        return [
            t for t in self.trials
            if t.state == TrialState.COMPLETE and self.at_anchor_scale(t)
            and (t.last_step is None or t.last_step >= final)
        ]

    def complete_anchor_runs(self) -> int:
        """The complete anchor trials the model sees (seed replicates are left out of it): the
        runs the held-out test of :mod:`optuna_adso.fidelity_trust` is scored at."""
        return sum(1 for t in self.complete_anchor_trials() if not records.is_seed_replicate(t))

    def check_anchor(self, fitted: FittedSurrogate, *, now: int, maxiter: int | None = None) -> AnchorCheck:
        """Test, at the anchor runs, whether the cheap data helps predict them (see
        :mod:`optuna_adso.fidelity_trust`), and fit the anchor-only GP on their final values: the
        model target-only BO would propose from, for when it does not.

        Warm-started and re-optimized on the same schedule as the study's model; ``maxiter=0``
        only conditions the stored hyperparameters on the data (``recommend``, the pruner).
        """
        obs, rows = fitted.observations, fitted.rows
        weights, runs, values = obs.weights[rows], obs.trial_numbers[rows], obs.values[rows]
        at_scale, final = self._anchor_rows(fitted)
        # Anchor runs stopped early (pruned) have no final value, but they must not look
        # unexplored to the anchor-only GP, or it proposes the same hopeless mixtures again and
        # again: their final values are imputed with the study model's prediction.
        run_ids, first_row = np.unique(runs, return_index=True)  # one row per run, in run order
        stopped = first_row[at_scale[first_row] & ~np.isin(run_ids, runs[final])]
        anchor_weights = np.vstack([weights[final], weights[stopped]])
        anchor_only, refitted = None, False
        if len(final) >= 2:
            y_fit = values[final]
            if len(stopped):
                imputed, _ = fitted.surrogate.predict(inputs_at(weights[stopped], self.anchor_z()))
                y_fit = np.concatenate([y_fit, imputed])
            latest = records.latest_gp_state(self.trials, self.anchor_state_kind)
            if maxiter is None and latest is not None and not self._refit_due(latest[1], now):
                maxiter = 0
            try:
                anchor_only = MultiFidelitySurrogate("mixture").fit(
                    target_inputs(anchor_weights), y_fit, n_weights=self.spec.k,
                    y_scale_floor=fitted.surrogate.mixture_prior_std(),
                    init_state=latest[0] if latest else None, maxiter=maxiter,
                )
                refitted = maxiter != 0
            except SurrogateFitError:
                anchor_only = None
        return AnchorCheck(anchor_only, self.trust(fitted), anchor_weights, refitted, len(final))

    def trust(self, fitted: FittedSurrogate) -> FidelityTrust:
        """The held-out test at the anchor runs alone (see :mod:`optuna_adso.fidelity_trust`),
        for callers that need its verdict or its z rms but not the anchor-only GP."""
        obs, rows = fitted.observations, fitted.rows
        at_scale, final = self._anchor_rows(fitted)
        return fidelity_trust.assess(fitted.surrogate, obs.trial_numbers[rows], obs.values[rows], final,
                                     np.flatnonzero(at_scale))

    def _anchor_rows(self, fitted: FittedSurrogate) -> tuple[np.ndarray, np.ndarray]:
        """Among the fitted rows: which lie at the anchor scale (mask), and which of those are
        final reports (indices)."""
        obs, rows = fitted.observations, fitted.rows
        at_scale = np.isclose(obs.log_scale[rows], math.log10(self.anchor_scale))
        final = np.flatnonzero(at_scale & np.isclose(obs.log_step[rows], math.log10(self.target.step)))
        return at_scale, final

    # -- compute spent --------------------------------------------------------------------------
    def trial_cost(self, t: FrozenTrial) -> tuple[float, float]:
        """(scale, cost) of a run so far: paid up to its last report; a complete run that never
        reported paid for the target step.  Cost 0 for a run with nothing to show yet."""
        scale = trial_scale(t, self.scale, self.target.run_scale)
        if scale is None:
            return math.nan, 0.0
        if t.last_step is not None:
            return scale, self.settings.run_cost(scale, t.last_step)
        if t.state == TrialState.COMPLETE:
            return scale, self.settings.run_cost(scale, self.target.step)
        return scale, 0.0

    def flops_spent(self) -> float:
        """Total cost of every run this study made: each paid up to the last step it reported.

        Runs imported with :func:`~optuna_adso.add_runs` were paid for elsewhere: they are not
        charged to this study's budget, nor to its effort in :meth:`spending`.
        """
        return sum(self.trial_cost(t)[1] for t in self.trials if not records.is_imported(t))

    def spending(self, top_scale: float) -> tuple[float, float]:
        """Effort this study spent at the top runnable scale, and in all: each run's cost plus
        the fixed ``run_overhead``, so that a hundred near-free runs count as the effort they are.

        Imported runs are data, not this study's effort: counted here, a swarm of 256 small runs
        kept every new run at the top scale until the target's share caught up (all 30 of a
        warm-started study's runs, which then did no better than target-only BO)."""
        at_top = total = 0.0
        overhead = self.settings.run_overhead * self.settings.target_cost
        for t in self.trials:
            if records.is_imported(t):
                continue
            scale, c = self.trial_cost(t)
            c += overhead if math.isfinite(scale) else 0.0  # no scale: nothing ran yet
            total += c
            at_top += c if scale == top_scale else 0.0
        return at_top, total


def held_point(trial: FrozenTrial, spec: MixtureSpec, target: Target) -> HeldPoint | None:
    """(weights, scale, planned stop step) a trial runs or has claimed, if known."""
    w = trial_weights(trial, spec)
    info = records.read_proposal(trial)
    if w is not None:
        scale = trial.params.get(target.scale_param) if target.scale_param else None
        scale = info.get("scale") if scale is None else scale
        return HeldPoint(w, float(scale or target.run_scale), float(info.get("stop_step") or target.step))
    if "weights" in info:
        return HeldPoint(np.array(info["weights"]), float(info["scale"]), float(info["stop_step"]), True)
    return None


def last_reports(obs: Observations, rows: np.ndarray) -> np.ndarray:
    """Of ``rows``, the last report (highest step) of each run, in run order."""
    order = rows[np.lexsort((obs.log_step[rows], obs.trial_numbers[rows]))]
    runs = obs.trial_numbers[order]
    return order[np.r_[runs[1:] != runs[:-1], True]]


def refit_due(fitted_at: int, now: int) -> bool:
    """Refit on a geometric schedule: every trial early on, about every 10% of the study later."""
    return now - fitted_at >= max(1, now // 10)


def incumbent_weights(
    surrogate: MultiFidelitySurrogate, tried: np.ndarray, n: int = 8, z: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Distinct ``tried`` mixtures, best predicted at fidelity ``z`` (the target by default) first."""
    uniq = np.unique(np.round(tried, 10), axis=0)
    mean, _ = surrogate.predict(inputs_at(uniq, z))
    return uniq[np.argsort(mean)[:n]]


def measured_at_anchor(ref: np.ndarray | None, fitted: FittedSurrogate, goal_z: tuple[float, float]) -> bool:
    """Whether any report of the mixture ``ref`` was made at the anchor scale (the goal's)."""
    if ref is None:
        return True
    obs = fitted.observations
    if not len(obs):
        return False
    z = fitted.axes.z(obs.log_scale, obs.log_step)
    same = np.abs(obs.weights - ref[None]).max(axis=1) <= 1e-6
    return bool(np.any(same & np.isclose(z[:, 0], goal_z[0])))
