"""One Optuna study on a benchmark problem under a FLOPs budget -> a regret-vs-FLOPs trace.

Budget unit: one full run at the target fidelity, or at the largest runnable scale when the target
cannot be run (``problem.budget_unit``).  A trial pays
``problem.cost(scale, last step it reported)``, so a pruned trial pays only for the steps it ran.
After every finished trial the runner records the FLOPs spent so far and the regret, at the
target, of the method's current recommendation.

Methods (their exact settings: :data:`METHOD_CONFIG`):

- Single-fidelity baselines, each in its strongest reasonable configuration and in two
  parametrizations of the simplex: ``<family>-floats`` (k floats ``mix/<domain>`` in [0, 1],
  normalized; a zero reaches a face, where optima often sit) and ``<family>-dirichlet``
  (:func:`optuna_adso.suggest_mixture`'s latent uniforms -> Dirichlet(1)).  Families
  (:data:`BASELINE_FAMILIES`): ``random``, ``sobol`` (scrambled), ``tpe`` (multivariate),
  ``gp`` (``deterministic_objective`` on noiseless problems) and ``tpe-hyperband`` (BOHB-style:
  multivariate TPE with Optuna's HyperbandPruner over steps).  They run at ``problem.top_scale``
  (the target, or the largest runnable scale below it); the recommendation is the mixture of the
  best completed trial (by its reported, noisy, final value).  The old names ``random``,
  ``sobol``, ``tpe``, ``tpe-hyperband`` and ``gp`` are aliases of the ``-dirichlet`` variants
  (:data:`ALIASES`): same study, same trace, only ``Trace.method`` keeps the name asked for.
- Transfer baselines (:mod:`benchmarks.transfer`), for targets beyond the runnable scales and
  run on every problem: ``regmix`` (a regression of the smallest scale's final values on the
  mixture, its argmin transferred) and ``scaling-law`` (a scaling law per mixture over the three
  largest runnable scales, extrapolated to the target).
- ``adso``, ``paper``: :class:`optuna_adso.ADSOSampler` (``method="adso"`` or the paper's
  ``"paper"`` EI-per-cost) with :class:`optuna_adso.ADSOPruner` over all the problem's scales;
  the recommendation is :func:`optuna_adso.recommend`.  ADSO's runs are full-length unless the
  pruner judges one hopeless at the target; the paper's method plans (scale, steps) on a grid,
  so its pruner honours planned stops.
- ``adso-domains``: ADSO + ADSOPruner optimizing the problem's value as a per-domain objective
  (``ADSOSampler(objective=problem.domain_objective)``: ``WorstExcessLoss("uniform")`` on
  ``paper-worst_excess``, ``DomainLoss(name)`` on one domain's CE, ``MeanLoss()`` on the mean
  CE), modelled from the runs' per-domain losses instead of the reported scalar; its
  recommendation is ``recommend()`` for the same objective (the sampler's).
- ``adso-noprune``: ADSOSampler with Optuna's NopPruner (every run goes to its full length);
  ``adso-hyperband``: ADSOSampler with Optuna's
  HyperbandPruner over steps.  Both measure what ADSOPruner adds.

Every trace also records the seconds the sampler spent on each trial (all its hooks, timed by a
thin delegating wrapper) and, on noisy problems, the regret of the "best observed" mixture: the
best reported final value among completed full-length runs at the highest scale any completed
run reached (the target's, whenever the target is runnable).  For the baselines that is their
recommendation; for ADSO it is the noise floor its model-based recommendation must beat.

Per-domain losses: on a problem that has them (``problem.domain_names``), every ADSO method
reports them with the value (``optuna_adso.report(trial, value, step, domains=...)``), as a user
of the per-domain API would; baselines report the scalar objective alone with ``trial.report``
(the exact value they optimize: their strongest configuration).  Per-domain losses carry no noise
(only the noiseless paper simulator has them).

Noise: the value reported at ``step`` of trial ``number`` (counted in the study's own trials,
after any imported runs) is
``loss + run_noise_std * z_run + noise_std * z_step``: one offset per run shared by all its reports
(what a run's seed, data order and hardware do) and independent per-report noise.  ``z_run``
depends only on ``(seed, number)`` and ``z_step`` on ``(seed, number, step)``, so every method
sees the same noise on the same seed.
"""

from __future__ import annotations

import json
import math
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from benchmarks.calibration import CHECK_FRACTIONS, calibration_record
from benchmarks.problems import Problem

PARAMETRIZATIONS = ("floats", "dirichlet")
# family -> its two parametrizations (the report picks the better one per problem)
BASELINE_FAMILIES: dict[str, tuple[str, str]] = {
    family: (f"{family}-floats", f"{family}-dirichlet")
    for family in ("random", "sobol", "tpe", "tpe-hyperband", "gp")
}
# old method names (saved traces, tests) -> the variant they always were
ALIASES: dict[str, str] = {family: f"{family}-dirichlet" for family in BASELINE_FAMILIES}
CANONICAL_BASELINES = tuple(m for pair in BASELINE_FAMILIES.values() for m in pair)
# On a pool problem (Problem.pool) a third parametrization: the pool member's index as one
# categorical parameter (suggest_mixture(candidates=...) under these samplers).  The floats and
# Dirichlet variants run there too, their mixture snapped to the nearest pool member.
POOL_BASELINES: dict[str, str] = {family: f"{family}-pool" for family in ("random", "tpe", "gp")}
BASELINES = CANONICAL_BASELINES + tuple(ALIASES) + tuple(POOL_BASELINES.values())
TRANSFER_METHODS = ("regmix", "scaling-law")
# adso-warm256: ADSO started from a swarm of 256 runs at the smallest scale imported with
# optuna_adso.add_runs (benchmarks.warmstart); only its new runs are charged to the budget.
WARM_METHODS = ("adso-warm256",)
# adso-domains: ADSOSampler(objective=problem.domain_objective), on problems with per-domain losses
DOMAIN_METHODS = ("adso-domains",)
ADSO_METHODS = ("adso", "paper", "adso-noprune", "adso-hyperband") + WARM_METHODS + DOMAIN_METHODS
CALIBRATED_METHODS = ("adso", "adso-noprune")  # whose adso.predict the suite scores
METHODS = BASELINES + TRANSFER_METHODS + ADSO_METHODS
# what a suite should run: every method once (no aliases)
SUITE_METHODS = CANONICAL_BASELINES + TRANSFER_METHODS + ADSO_METHODS

_FLOATS_NOTE = "k floats mix/<domain> in [0, 1], normalized (all zero -> uniform)"
_DIRICHLET_NOTE = "suggest_mixture: k latent uniforms -> Dirichlet(1)"
_SAMPLER_CONFIG = {
    "random": "RandomSampler(seed)",
    "sobol": "QMCSampler(qmc_type='sobol', scramble=True, seed)",
    "tpe": "TPESampler(multivariate=True, group=False, seed), NopPruner",
    "gp": "GPSampler(deterministic_objective=True on noiseless problems, default otherwise, seed)",
    "tpe-hyperband": (
        "BOHB-style: TPESampler(multivariate=True, group=False, seed) with HyperbandPruner("
        "min_resource=first report step, max_resource=target step, reduction_factor=3)"
    ),
}
# one line per method, for the report
METHOD_CONFIG: dict[str, str] = {
    **{
        f"{family}-{kind}": f"{_SAMPLER_CONFIG[family]}; "
        f"{_FLOATS_NOTE if kind == 'floats' else _DIRICHLET_NOTE}; runs at the top runnable scale"
        for family in BASELINE_FAMILIES
        for kind in PARAMETRIZATIONS
    },
    "regmix": (
        "RegMix-style: full runs at the smallest scale on seeded Dirichlet mixtures (concentration "
        "log-uniform in [0.2, 2]); ridge on [w, w_i w_j, sqrt w] or RBF kernel ridge, chosen by "
        "leave-one-out; its argmin over the simplex (vertices, faces, interior) is the "
        "recommendation; refit after each batch"
    ),
    "scaling-law": (
        "space-filling mixtures (uniform, then seeded scrambled Sobol through the Dirichlet(1) "
        "transform), each run at the 3 largest runnable scales (cheapest first); per mixture "
        "L(N) = E + A N^-alpha (bounded curve_fit), extrapolated to the target; the best "
        "extrapolation is the recommendation"
    ),
    "adso": "ADSOSampler(method='adso') + ADSOPruner over all runnable scales",
    "paper": "ADSOSampler(method='paper', planned_stops=True) + ADSOPruner: the paper's EI per cost",
    **{
        m: f"{_SAMPLER_CONFIG[family]}; pool problems only: the pool member's index as one categorical "
        "parameter (suggest_mixture(candidates=pool)); runs at the top runnable scale"
        for family, m in POOL_BASELINES.items()
    },
    "adso-warm256": (
        "ADSOSampler(method='adso') + ADSOPruner, started from 256 full runs at the smallest scale "
        "(seeded Dirichlet mixtures, concentration log-uniform in [0.2, 2]) imported with "
        "optuna_adso.add_runs; only new runs are charged"
    ),
    "adso-domains": (
        "ADSOSampler(method='adso', objective=the problem's per-domain objective: WorstExcessLoss('uniform'), "
        "DomainLoss(name) or MeanLoss()) + ADSOPruner; recommend() for the same objective"
    ),
    "adso-noprune": "ADSOSampler(method='adso') + NopPruner",
    "adso-hyperband": "ADSOSampler(method='adso') + HyperbandPruner over steps",
}


def canonical(method: str) -> str:
    """The method an alias stands for (the name itself otherwise)."""
    return ALIASES.get(method, method)

MIX = "mix"
SCALE = "model_size"
_NOISE_SALT = 0xB0B5
_MAX_TRIALS = 100_000  # a guard against a budget that zero-cost trials never spend


_ARRAY_FIELDS = (
    "flops", "regret", "trial_scale", "trial_steps", "sampler_seconds", "sampler_cpu_seconds",
    "best_observed_regret", "trial_regret",
)


@dataclass
class Trace:
    """Regret of the current recommendation after every finished trial."""

    method: str
    problem: str
    seed: int
    budget: float
    flops: np.ndarray  # cumulative FLOPs in target-run units, after each trial
    regret: np.ndarray  # regret at the target of the recommendation after each trial
    trial_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))  # scale each trial ran
    trial_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # last step it reported
    trial_state: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    final_mixture: dict[str, float] = field(default_factory=dict)
    sampler_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per trial, wall
    sampler_cpu_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per trial, CPU
    # regret of the best observed completed full run (noisy problems only; NaN before any)
    best_observed_regret: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # regret at the target of each trial's own mixture (NaN without one): what a full target run
    # of it would show without noise, so that analyses can ask which runs were worth finishing
    trial_regret: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # ADSO only: adso.predict's z-scores at fixed fractions of the budget (benchmarks.calibration)
    calibration: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_trials(self) -> int:
        return len(self.flops)

    @property
    def final_regret(self) -> float:
        return float(self.regret[-1]) if len(self.regret) else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in _ARRAY_FIELDS:
            d[key] = [None if not math.isfinite(x) else x for x in np.asarray(d[key], dtype=float).tolist()]
        d["n_trials"] = self.n_trials
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        d = {key: value for key, value in d.items() if key != "n_trials"}
        for key in _ARRAY_FIELDS:
            d[key] = np.array([math.nan if x is None else x for x in d.get(key, [])], dtype=float)
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def flops_to_reach(trace: Trace, level: float) -> float:
    """First FLOPs (target-run units) at which the recommendation's regret is <= ``level``."""
    hit = np.flatnonzero(np.asarray(trace.regret) <= level)
    return float(trace.flops[hit[0]]) if len(hit) else math.inf


def flops_to_stay(trace: Trace, level: float) -> float:
    """FLOPs after which the recommendation's regret stays <= ``level`` to the end of the trace.

    The FLOPs of the first trial of the trace's last stretch under ``level``; inf when the last
    value is above it (or NaN, or the trace is empty).  :func:`flops_to_reach` is the first touch.
    """
    regret = np.asarray(trace.regret, dtype=float)
    if len(regret) == 0 or not regret[-1] <= level:
        return math.inf
    above = np.flatnonzero(~(regret <= level))  # NaN counts as above
    start = int(above[-1]) + 1 if len(above) else 0
    return float(trace.flops[start])


RUN_NOISE_STEP = 2**31 - 1  # the stream of a run's shared offset: no report has this step


def noise(seed: int, number: int, step: int, std: float) -> float:
    """The noise on the value trial ``number`` reports at ``step``: a function of these only."""
    if std == 0:
        return 0.0
    rng = np.random.default_rng(np.random.SeedSequence([_NOISE_SALT, int(seed), int(number), int(step)]))
    return float(std * rng.standard_normal())


def _suggest_mixture():
    import optuna_adso

    fn = getattr(optuna_adso, "suggest_mixture", None)
    if fn is None:  # the package's public names may not be wired up yet
        from optuna_adso.space import suggest_mixture as fn
    return fn


def _hyperband(problem: Problem) -> optuna.pruners.HyperbandPruner:
    """Hyperband over steps, from the first report to the target step (BOHB-style brackets)."""
    return optuna.pruners.HyperbandPruner(
        min_resource=problem.report_steps[0], max_resource=problem.target_step, reduction_factor=3
    )


class TimedSampler(optuna.samplers.BaseSampler):
    """Delegates every hook to ``inner`` and adds the seconds each trial spent in them.

    Attributes Optuna-adso looks up on ``study.sampler`` (``samples_mixtures_jointly``,
    ``check_scale_declaration``) reach the inner sampler through ``__getattr__``, so wrapping
    changes no proposal.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = {}
        self.cpu_seconds: dict[int, float] = {}  # this process's CPU time: robust to a busy machine

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _timed(self, number: int, fn: Any, *args: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            self.seconds[number] = self.seconds.get(number, 0.0) + time.perf_counter() - t0
            self.cpu_seconds[number] = self.cpu_seconds.get(number, 0.0) + time.process_time() - c0

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed(trial.number, self.inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return self._timed(trial.number, self.inner.sample_relative, study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        return self._timed(
            trial.number, self.inner.sample_independent, study, trial, param_name, param_distribution
        )

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed(trial.number, self.inner.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        return self._timed(trial.number, self.inner.after_trial, study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def family_and_parametrization(method: str) -> tuple[str, str]:
    """``"tpe-hyperband-floats"`` -> ``("tpe-hyperband", "floats")``; aliases resolve first."""
    method = canonical(method)
    for family, members in BASELINE_FAMILIES.items():
        if method in members or POOL_BASELINES.get(family) == method:
            return family, method.removeprefix(f"{family}-")
    raise ValueError(f"{method!r} is not a single-fidelity baseline; choose from {list(BASELINES)}")


def _tpe(seed: int) -> optuna.samplers.TPESampler:
    # multivariate: the k mixture coordinates are coupled by the normalization
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=False)


def _make_sampler_and_pruner(problem: Problem, method: str, seed: int):
    if method in BASELINES:
        family, _ = family_and_parametrization(method)
        if family == "random":
            return optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
        if family == "sobol":
            return (
                optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed),
                optuna.pruners.NopPruner(),
            )
        if family == "tpe":
            return _tpe(seed), optuna.pruners.NopPruner()
        if family == "tpe-hyperband":
            return _tpe(seed), _hyperband(problem)
        if family == "gp":
            # a noiseless objective: let the GP interpolate instead of fitting a noise variance
            return (
                optuna.samplers.GPSampler(seed=seed, deterministic_objective=not problem.noisy),
                optuna.pruners.NopPruner(),
            )
    if method in ADSO_METHODS:
        import optuna_adso as adso

        if method in DOMAIN_METHODS and problem.domain_objective is None:
            raise ValueError(f"{method!r} needs a problem whose value is a per-domain objective, not {problem.name!r}")
        sampler = adso.ADSOSampler(
            target={SCALE: problem.target_scale, "step": problem.target_step},
            cost=lambda params, step: problem.cost(params[SCALE], step),
            seed=seed,
            method="paper" if method == "paper" else "adso",
            # The paper's method picks (scale, steps) on a grid: its runs stop where it planned.
            planned_stops=method == "paper",
            objective=problem.domain_objective if method in DOMAIN_METHODS else None,
        )
        if method == "adso-noprune":
            return sampler, optuna.pruners.NopPruner()
        if method == "adso-hyperband":
            return sampler, _hyperband(problem)
        return sampler, adso.ADSOPruner()
    raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")


def suggest_mixture_floats(trial: optuna.Trial, name: str, domains: list[str]) -> dict[str, float]:
    """The "floats" parametrization: k floats ``<name>/<domain>`` in [0, 1], normalized.

    A zero is a face of the simplex (all zero: the uniform mixture).  The weights go to the
    trial's user attribute ``name``, as :func:`optuna_adso.suggest_mixture` does.
    """
    raw = np.array([trial.suggest_float(f"{name}/{d}", 0.0, 1.0) for d in domains])
    total = float(raw.sum())
    weights = raw / total if total > 0 else np.full(len(domains), 1.0 / len(domains))
    mixture = {d: float(x) for d, x in zip(domains, weights)}
    trial.set_user_attr(name, mixture)
    return mixture


def _pool_suggester(suggest, pool: np.ndarray, *, snap: bool):
    """``suggest`` restricted to ``pool``.  ``snap``: a baseline searching the simplex runs the
    pool member nearest its suggestion (written to the trial's user attribute); otherwise the
    pool is declared with the mixture (``optuna_adso.suggest_mixture(candidates=pool)``)."""

    def pooled(trial: optuna.Trial, name: str, domains: list[str]) -> dict[str, float]:
        if not snap:
            return suggest(trial, name, domains, candidates=[list(map(float, w)) for w in pool])
        asked = suggest(trial, name, domains)
        w = pool[int(np.argmin(np.abs(pool - np.array([asked[d] for d in domains])[None]).sum(axis=1)))]
        mixture = {d: float(x) for d, x in zip(domains, w)}
        trial.set_user_attr(name, mixture)
        return mixture

    return pooled


def _weights_of(trial: FrozenTrial, problem: Problem) -> np.ndarray | None:
    mix = trial.user_attrs.get(MIX)
    if not isinstance(mix, dict):
        return None
    return problem.as_weights(mix)


class BestObserved:
    """The best completed full run at the highest scale completed so far: what a user would pick
    by looking at the runs, the noise floor a model-based recommendation must beat."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.best: tuple[float, float, np.ndarray] | None = None  # (scale, minimize value, weights)

    def update(self, scale: float, value: float, w: np.ndarray) -> float:
        """Offer a completed run (``value`` as reported); the regret of the best one so far."""
        y = -value if self.problem.maximize else value
        if math.isfinite(y) and (
            self.best is None or scale > self.best[0] or (scale == self.best[0] and y < self.best[1])
        ):
            self.best = (scale, y, w)
        return self.regret()

    def regret(self) -> float:
        return math.nan if self.best is None else float(self.problem.regret(self.best[2]))


class _Recorder:
    """Callback: account FLOPs, record regret, stop the study when the budget is spent."""

    def __init__(
        self, problem: Problem, method: str, budget: float, recommend_every: float = 0.0,
        max_trials: int = _MAX_TRIALS,
    ) -> None:
        self.max_trials = max_trials
        self.problem = problem
        self.recommend_every = recommend_every
        self.rec_spent = -math.inf  # FLOPs spent at the last ADSO recommendation
        self.rec_weights: np.ndarray | None = None
        self.method = method
        self.budget = budget
        self.unit = problem.budget_unit
        self.spent = 0.0
        self.flops: list[float] = []
        self.regret: list[float] = []
        self.scales: list[float] = []
        self.steps: list[float] = []
        self.states: list[str] = []
        self.best_value: float | None = None
        self.best_weights: np.ndarray | None = None
        self.uniform = np.full(problem.k, 1.0 / problem.k)
        self.timer: TimedSampler | None = None
        self.sampler_seconds: list[float] = []
        self.sampler_cpu: list[float] = []
        self.track_observed = problem.noisy
        self.observed = BestObserved(problem)
        self.observed_regret: list[float] = []
        self.trial_regret: list[float] = []
        self.calibration: list[dict[str, Any]] = []
        self.checks = list(CHECK_FRACTIONS) if method in CALIBRATED_METHODS else []

    def _check_calibration(self, study: optuna.Study, w: np.ndarray, done: bool) -> None:
        """Score adso.predict at each fraction of the budget once it is spent (all that are left
        when the study ends, e.g. at its trial cap)."""
        while self.checks and (done or self.spent >= self.checks[0] * self.budget * self.unit * (1 - 1e-9)):
            record = calibration_record(study, self.problem, w, self.checks.pop(0))
            if record is not None:
                self.calibration.append(record)

    def _best_observed(self, trial: FrozenTrial, scale: float) -> float:
        """Regret of the best completed full run at the highest scale completed so far."""
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            w = _weights_of(trial, self.problem)
            if w is not None:
                return self.observed.update(scale, float(trial.value), w)
        return self.observed.regret()

    def _baseline_recommendation(self, trial: FrozenTrial) -> np.ndarray:
        # Only completed trials ran to the target; a pruned trial's last value is not comparable.
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            w = _weights_of(trial, self.problem)
            v = float(trial.value)
            better = (
                self.best_value is None
                or (v > self.best_value if self.problem.maximize else v < self.best_value)
            )
            if w is not None and math.isfinite(v) and better:
                self.best_value, self.best_weights = v, w
        return self.uniform if self.best_weights is None else self.best_weights

    def _adso_recommendation(self, study: optuna.Study) -> np.ndarray:
        import optuna_adso as adso

        try:
            # the study's sampler is the timing wrapper: hand recommend() the ADSOSampler itself,
            # or it would rebuild one from the study's stored configuration
            inner = self.timer.inner if self.timer is not None else None
            rec = adso.recommend(study, sampler=inner if isinstance(inner, adso.ADSOSampler) else None)
        except Exception:
            # Nothing to recommend from yet (no reported value anywhere): the uniform default.
            reported = any(
                t.intermediate_values or t.value is not None
                for t in study.get_trials(deepcopy=False)
            )
            if reported:
                raise
            return self.uniform
        return self.problem.as_weights(rec.mixture)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        scale = float(trial.params.get(SCALE, self.problem.top_scale))
        last_step = max(trial.intermediate_values) if trial.intermediate_values else 0
        self.spent += self.problem.cost(scale, last_step)
        done = self.spent >= self.budget * self.unit * (1 - 1e-9) or len(self.flops) + 1 >= self.max_trials
        if self.method in ADSO_METHODS:
            due = self.spent - self.rec_spent >= self.recommend_every * self.unit
            if due or done or self.rec_weights is None:
                self.rec_weights = self._adso_recommendation(study)
                self.rec_spent = self.spent
            w = self.rec_weights
        else:
            w = self._baseline_recommendation(trial)
        self.flops.append(self.spent / self.unit)
        self.regret.append(self.problem.regret(w))
        self.scales.append(scale)
        self.steps.append(float(last_step))
        self.states.append(trial.state.name)
        own = _weights_of(trial, self.problem)
        self.trial_regret.append(math.nan if own is None else float(self.problem.regret(own)))
        self.sampler_seconds.append(self.timer.seconds.pop(trial.number, 0.0) if self.timer else math.nan)
        self.sampler_cpu.append(self.timer.cpu_seconds.pop(trial.number, 0.0) if self.timer else math.nan)
        if self.track_observed:
            self.observed_regret.append(self._best_observed(trial, scale))
        self.final = w
        self._check_calibration(study, w, done)
        if done:
            study.stop()


def _domain_reporter(problem: Problem):
    """``report(trial, w, scale, step, value)``: :func:`optuna_adso.report` with the problem's
    noiseless per-domain losses at (scale, step) beside ``value``."""
    import optuna_adso as adso

    names = list(problem.domain_names or [])

    def report(trial: optuna.Trial, w: np.ndarray, scale: float, step: int, value: float) -> None:
        losses = problem.domain_losses(w, scale, step)
        adso.report(trial, value, int(step), domains={d: float(x) for d, x in zip(names, losses)})

    return report


def run_study(
    problem: Problem,
    method: str,
    seed: int,
    budget: float = 30.0,
    storage: Any = None,
    *,
    recommend_every: float = 0.0,
    max_trials: int = _MAX_TRIALS,
) -> Trace:
    """Run ``method`` on ``problem`` until ``budget`` target-run units of FLOPs are spent.

    ``recommend_every`` (target-run units; ADSO methods only): ask :func:`optuna_adso.recommend`
    again only once this much more has been spent since it last answered (and always after the
    last trial); in between, trials keep the previous recommendation's regret.  ``max_trials``
    ends a study that has not spent its budget after that many trials (its trace then stops
    short of the budget: the method spent less).  0 asks after
    every trial.  Recommending costs a GP fit, and cheap small-scale trials can number in the
    hundreds per target run.

    ``regmix`` and ``scaling-law`` are not Optuna studies: :func:`benchmarks.transfer.run_transfer`
    runs them under the same budget, trial cap and noise (``storage`` does not apply).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    if not budget > 0:
        raise ValueError(f"budget must be positive, got {budget!r}")
    if method in TRANSFER_METHODS:
        from benchmarks.transfer import run_transfer

        return run_transfer(problem, method, seed, budget, max_trials=max_trials)
    suggest_mixture = _suggest_mixture()
    parametrization = family_and_parametrization(method)[1] if method in BASELINES else None
    if parametrization == "pool" and problem.pool is None:
        raise ValueError(f"{method!r} runs on pool problems only (a Problem with a pool), not {problem.name!r}")
    if parametrization == "floats":
        suggest_mixture = suggest_mixture_floats
    if problem.pool is not None:
        suggest_mixture = _pool_suggester(suggest_mixture, problem.pool, snap=parametrization in PARAMETRIZATIONS)
    study_method = canonical(method)  # an alias runs the very study of the variant it names
    multi_fidelity = method in ADSO_METHODS
    if multi_fidelity:
        import optuna_adso as adso
    problem.optimum_value  # the reference point, computed (or cached) before the clock starts
    problem.uniform_value
    recorder = _Recorder(problem, method, budget, recommend_every, max_trials)
    noise_std = problem.noise_std
    # ADSO methods report the per-domain losses beside the value where the problem has them
    report = _domain_reporter(problem) if multi_fidelity and problem.domain_names else None
    n_imported = 0  # a warm start's imported runs come first: noise is keyed by the study's own runs

    def objective(trial: optuna.Trial) -> float:
        weights = suggest_mixture(trial, MIX, problem.domains)
        w = problem.as_weights(weights)
        if multi_fidelity:
            scale = float(adso.suggest_scale(trial, SCALE, problem.scales))
        else:
            scale = problem.top_scale  # the target, or the largest runnable scale below it
        number = trial.number - n_imported
        run_offset = noise(seed, number, RUN_NOISE_STEP, problem.run_noise_std)
        value = math.nan
        for step in problem.report_steps:
            value = problem.loss(w, scale, step) + run_offset + noise(seed, number, step, noise_std)
            if report is None:
                trial.report(value, step)
            else:
                report(trial, w, scale, step, value)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message=".*independent sampl.*")
            sampler, pruner = _make_sampler_and_pruner(problem, method, seed)
            sampler = recorder.timer = TimedSampler(sampler)
            study = optuna.create_study(
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                direction="maximize" if problem.maximize else "minimize",
                # Hyperband assigns brackets by a hash of the study name: keep it fixed so that a
                # seed reproduces; a shared storage gets a unique suffix to avoid name clashes.
                study_name=f"{problem.name}-{study_method}-{seed}"
                + ("" if storage is None else f"-{uuid.uuid4().hex[:8]}"),
            )
            if method in WARM_METHODS:
                from benchmarks.warmstart import import_swarm

                n_imported = import_swarm(study, problem, seed)
            study.optimize(objective, callbacks=[recorder], gc_after_trial=False)
    finally:
        optuna.logging.set_verbosity(verbosity)
    wall = time.perf_counter() - t0
    final = getattr(recorder, "final", recorder.uniform)
    return Trace(
        method=method,
        problem=problem.name,
        seed=int(seed),
        budget=float(budget),
        flops=np.array(recorder.flops),
        regret=np.array(recorder.regret),
        trial_scale=np.array(recorder.scales),
        trial_steps=np.array(recorder.steps),
        trial_state=recorder.states,
        wall_seconds=wall,
        final_mixture={d: float(x) for d, x in zip(problem.domains, final)},
        sampler_seconds=np.array(recorder.sampler_seconds),
        sampler_cpu_seconds=np.array(recorder.sampler_cpu),
        best_observed_regret=np.array(recorder.observed_regret),
        trial_regret=np.array(recorder.trial_regret),
        calibration=recorder.calibration,
    )
