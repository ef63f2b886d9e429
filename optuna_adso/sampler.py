"""ADSOSampler: the Optuna glue.  Read the study model, ask the acquisition, claim, write params.

Everything the sampler knows is read from the study's storage at each call (see
:mod:`optuna_adso.study_model`): the declarations, every trial's reports, and the last fitted
hyperparameters (used to warm-start the next fit).  The sampler object holds only its
configuration, so any number of workers in any number of processes can share one study, and a
seeded single-worker study is reproducible.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial

from optuna_adso.objectives import MixtureObjective
from optuna_adso import records
from optuna_adso.acquisition import Proposal
from optuna_adso.claims import holdings, record_claim, taken_by_another
from optuna_adso.cost import ScaleTimesSteps
from optuna_adso.proposer import Proposer
from optuna_adso.space import ScaleSpec, mixture_specs_from_attrs, scale_specs_from_attrs
from optuna_adso.startup import n_startup, startup_proposal, startup_weights
from optuna_adso.study_model import FittedSurrogate, StudyModel, StudySettings, Target
from optuna_adso.surrogate import SurrogateFitError, single_threaded
from optuna_adso.validation import as_int, as_optional_int

_CLAIM_TRIES = 4  # proposals a trial makes before it keeps one another worker may also hold


class ADSOSampler(BaseSampler):
    """Multi-fidelity, multi-scale Bayesian optimization of a data mixture for a target model.

    Args:
        target: where the mixture will be used, e.g. ``{"model_size": 1e9, "step": 20_000}``.
            The scale may be one that is never run.
        cost: what a (scale, step) costs: :class:`~optuna_adso.FlopsCost`,
            :class:`~optuna_adso.TableCost` or any callable ``(params, step) -> cost``.  Only
            ratios matter; the default ``scale * step`` is FLOPs up to a constant.  FlopsCost
            and TableCost are stored in the study, so that other processes (a pruner, a budget,
            ``adso status``) price runs exactly as this sampler does; a callable is not, and
            they must be handed the sampler.
        seed: seed of all the sampler's randomness.
        method: ``"adso"`` (coregionalized GP, information about the target per unit cost) or
            ``"paper"`` (the paper's product-RBF GP with EI per cost^alpha).
        n_startup_trials: space-filling trials (the uniform mixture, then each as far from the
            others as a few hundred draws allow) before the model is used (default: one per
            scale, at least 3).
        max_points: bound on observations fed to the GP, so cost stays flat as studies grow.
        planned_stops: also plan how many steps each run is worth (at ``stop_fractions`` of the
            target step): a partial learning curve is cheap information.  The trial's
            ``adso:stop_step`` says where; :class:`~optuna_adso.ADSOPruner` stops it there.
            Off by default: on the paper's simulator planned partial runs drew the sampler into
            many cheap runs and cost more FLOPs to 1% of the gap than they saved.
        stop_fractions: fractions of the target step at which a run may be planned to stop.
        min_target_share: the least share of the compute spent so far that must have gone to
            the top runnable scale (the target's, or the closest below it) before the sampler
            buys more cheap runs.  A floor under robustness: however the model misjudges
            small scales, ADSO keeps doing what target-only BO does with that share.  Once the
            held-out test of :mod:`optuna_adso.fidelity_trust` finds that cheap runs do not
            help predict the top scale's runs, the floor rises to 85% and the top scale's runs
            are proposed from its own runs alone.
        run_overhead: fixed cost of any run (launch, evaluation), in target runs; it keeps
            the sampler from preferring thousands of near-free runs.
        n_candidates: mixtures the acquisition scores per proposal before refining the best.
        seed_replicates: where the study's runs record one shared seed (user attribute ``seed``,
            see :func:`~optuna_adso.trial_seed`), repeat the incumbent at the anchor with a new
            seed after 6 and 12 complete runs there, to measure the luck that seed shares with
            every run; ``recommend`` and ``predict`` add it to their intervals
            (:mod:`optuna_adso.seed_replicates`).  No effect on runs that record no seed or
            seeds of their own.
        objective: what to optimize, when not the reported value: a per-domain objective from
            :mod:`optuna_adso.objectives` (``MeanLoss()``, ``DomainLoss(name)``,
            ``WeightedLoss({...})``, ``WorstExcessLoss("uniform")``) or its command-line
            spelling.  It needs runs that report per-domain values (:func:`optuna_adso.report`);
            ``recommend`` and ``predict`` answer for it by default, and for any other on request.
            A list of linear ones (``[MeanLoss(), DomainLoss("code")]``), one per direction of a
            multi-objective study: each proposal optimizes a random weighting of them (ParEGO),
            and :func:`optuna_adso.pareto_front` predicts the front.
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
        planned_stops: bool = False,
        stop_fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
        min_target_share: float = 0.5,
        run_overhead: float = 0.1,
        n_candidates: int = 1024,
        seed_replicates: bool = True,
        objective: MixtureObjective | str | Sequence[MixtureObjective | str] | None = None,
    ) -> None:
        self.settings = StudySettings(
            Target.parse(target),
            ScaleTimesSteps() if cost is None else cost,
            method=method,
            stop_fractions=stop_fractions,
            planned_stops=planned_stops,
            max_points=max_points,
            run_overhead=run_overhead,
            min_target_share=min_target_share,
            objective=objective,
        )
        self.n_startup_trials = as_optional_int(n_startup_trials, "n_startup_trials", 1)
        self.n_candidates = as_int(n_candidates, "n_candidates", 16)
        if not isinstance(seed_replicates, bool):
            raise ValueError(f"seed_replicates must be True or False, got {seed_replicates!r}")
        self.seed_replicates = seed_replicates
        seed = as_optional_int(seed, "seed", 0)
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is None else seed

    # -- what the study is for, as attributes users read ----------------------------------------
    @property
    def target(self) -> Target:
        return self.settings.target

    @property
    def cost(self) -> Any:
        return self.settings.cost

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def target_cost(self) -> float:
        return self.settings.target_cost

    def run_cost(self, scale: float, step: float) -> float:
        return self.settings.run_cost(scale, step)

    def study_model(self, study: Study) -> StudyModel | None:
        """The study as this sampler's model sees it (None while no mixture is declared)."""
        return StudyModel.load(study, self.settings)

    # -- declarations -------------------------------------------------------------------------
    def check_scale_declaration(self, study: Study, spec: ScaleSpec) -> None:
        """Called by suggest_scale before any compute: the declaration must fit the target."""
        target = self.target
        if target.scale_param is None:
            raise ValueError(
                f"scale {spec.name!r} is declared but the sampler's target has no scale; use "
                f"target={{{spec.name!r}: <target scale>, 'step': {target.step:g}}}"
            )
        if spec.name != target.scale_param:
            raise ValueError(
                f"unknown target parameter {target.scale_param!r}: the study's scale "
                f"parameter is {spec.name!r}"
            )
        assert target.scale is not None
        if target.scale < min(spec.choices):
            raise ValueError(
                f"target[{spec.name!r}] = {target.scale:g} lies below every proxy scale "
                f"{list(spec.choices)}; the target must be at or above the proxies (fidelity grows "
                "with scale)"
            )
        for s in spec.choices:  # a cost model that fails on a declared scale fails here, not later
            self.run_cost(s, target.step)
        if self.target_cost <= 0:
            raise ValueError("the cost of a target run must be positive")

    # -- Optuna hooks -------------------------------------------------------------------------
    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Store what the study is for, so that every other process answers for the same."""
        n_directions, objectives = len(study.directions), self.settings.objectives
        if n_directions > 1 and len(objectives) != n_directions:
            raise ValueError(
                f"this study has {n_directions} directions: give ADSOSampler one per-domain objective for each, "
                "in the same order as the values the objective returns, e.g. "
                "objective=[optuna_adso.MeanLoss(), optuna_adso.DomainLoss('code')]"
                + (f" (got {len(objectives)})" if objectives else "")
                + "; the trials report per-domain values (optuna_adso.report(trial, None, step, domains=...)), "
                "and optuna_adso.pareto_front(study) predicts the front; or run a single-objective study "
                "and ask pareto_front(study, objectives=[...]) of it"
            )
        if n_directions == 1 and objectives:
            raise ValueError(
                f"objective= lists {len(objectives)} objectives, for a multi-objective study, but this study has "
                "one direction: create it with directions=[...] (one per objective), or give one objective"
            )
        if objectives and any(d != StudyDirection.MINIMIZE for d in study.directions):
            raise ValueError("a multi-objective study's per-domain objectives are losses: every direction must be 'minimize'")
        records.write_config(study, self.settings.to_config())

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        attrs = records.study_attrs(study)
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
        model = self.study_model(study)
        if model is None:
            return {}
        given = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
        if all(name in given for name in model.spec.param_names):
            return {}  # a retried or enqueued trial: its mixture is given, not proposed
        t0 = time.perf_counter()
        with single_threaded():
            proposal = self._propose(study, trial, model)
        params = {model.spec.param_name(d): float(x) for d, x in zip(model.spec.domains, proposal.weights)}
        if model.scale is not None:
            params[model.scale.name] = proposal.fidelity.scale
        record_claim(study, trial, proposal, self.target.step, time.perf_counter() - t0)
        return {k: _within(v, search_space[k]) for k, v in params.items() if k in search_space}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        model = self.study_model(study)
        if model is not None:
            if param_name in model.spec.param_names:
                w = startup_weights(study, trial, model, self._rng(model, trial, 1))
                lo, hi = param_distribution.low, param_distribution.high  # type: ignore[attr-defined]
                return float(np.clip(w[model.spec.param_names.index(param_name)], lo, hi))
            if model.scale is not None and param_name == model.scale.name:
                proposal = startup_proposal(study, trial, model, self._rng(model, trial, 1))
                record_claim(study, trial, proposal, self.target.step, 0.0)
                return proposal.fidelity.scale
        rng_seed = int(self._rng(model, trial, 7).integers(2**31))
        return RandomSampler(seed=rng_seed).sample_independent(
            study, trial, param_name, param_distribution
        )

    # -- the proposal -------------------------------------------------------------------------
    def _rng(self, model: StudyModel | None, trial: FrozenTrial, stream: int = 0) -> np.random.Generator:
        """Trial ``trial``'s random stream ``stream``, keyed by its place among the study's own
        trials: imported runs shift trial numbers, and a swarm the model never admits must leave
        the study as the cold study of the same seed would run it (no model yet: no imports)."""
        number = trial.number if model is None else model.own_number(trial.number)
        return np.random.default_rng([self._seed, number, stream])

    @staticmethod
    def _store_stated(study: Study, trial: FrozenTrial, model: StudyModel, fitted: FittedSurrogate) -> None:
        """Re-fit the GP that states values beyond the runs when the search's GP is re-fitted, and
        store its hyperparameters, so that ``recommend`` and ``predict`` only condition it."""
        try:
            stated = model.fit_stated(fitted, now=trial.number)
        except SurrogateFitError:
            return  # they fit it themselves
        if stated is not fitted and stated.refitted:
            records.write_gp_state(study, trial, stated.state_kind, stated.surrogate.state(), trial.number)

    def _propose(self, study: Study, trial: FrozenTrial, model: StudyModel) -> Proposal:
        """Fit, propose, claim; a startup proposal until the model has enough to go on."""
        held = model.held_points
        n_before = sum(  # earlier trials of this study that ran a mixture (not merely claimed one)
            1 for t in model.trials
            if t.number < trial.number and held[t.number] is not None and not held[t.number].claimed_only
            and not model.is_borrowed(t)  # imported small runs are tested before they are trusted
        )
        n_start = n_startup(model, self.n_startup_trials)
        if n_before < n_start:
            return startup_proposal(study, trial, model, self._rng(model, trial, 1))
        rng = self._rng(model, trial)
        if model.settings.objectives:  # several objectives: this trial optimizes one weighting of them
            model = model.scalarized(self._rng(model, trial, 3).dirichlet(np.ones(len(model.settings.objectives))))
        try:
            fitted = model.fit_surrogate(rng, now=trial.number, exclude_trial=trial.number)
        except SurrogateFitError as exc:
            warnings.warn(f"ADSOSampler: {exc}; proposing a random mixture at startup fidelity", stacklevel=2)
            return startup_proposal(study, trial, model, self._rng(model, trial, 1))
        if fitted.refitted:
            records.write_gp_state(study, trial, fitted.state_kind, fitted.surrogate.state(), trial.number)
        for kind, state in fitted.side_states:
            records.write_gp_state(study, trial, kind, state, trial.number)
        if fitted.refitted and not model.target_runnable:
            self._store_stated(study, trial, model, fitted)
        check = model.check_anchor(fitted, now=trial.number) if model.settings.method == "adso" else None
        if check is not None and check.refitted and check.anchor_only is not None:
            records.write_gp_state(study, trial, model.anchor_state_kind, check.anchor_only.state(), trial.number)
        proposer = Proposer(
            model, fitted, holdings(model, trial), check=check, n_model_trials=max(0, n_before - n_start),
            n_candidates=self.n_candidates, rng=rng, rng_of=lambda other: self._rng(model, other),
            trial_number=trial.number,
        )
        replicate = proposer.seed_replicate() if self.seed_replicates and model.settings.method == "adso" else None
        if replicate is not None:
            records.write_replicate_of(study, trial, replicate.replicate_of)
            record_claim(study, trial, replicate, self.target.step, 0.0)
            if not taken_by_another(study, model, trial, replicate):
                return replicate
            records.write_replicate_of(study, trial, None)  # another worker repeats it already
        proposal = proposer.best()
        # Claim the point where every worker sees it, then look; whoever sees a claim on its
        # point yields and proposes again.  Ordering by claim time instead would fail: a claim
        # stamped earlier may commit later than the other worker's look.
        for _ in range(_CLAIM_TRIES):
            record_claim(study, trial, proposal, self.target.step, 0.0)
            if not taken_by_another(study, model, trial, proposal):
                break
            proposer.exclude(proposal)
            proposal = proposer.best()
        return proposal


def _within(value: Any, distribution: BaseDistribution) -> Any:
    """A proposed value inside its parameter's range: a weight on a token cap can come out of the
    projection a rounding error above it, and Optuna re-samples any relative value its
    distribution does not contain (the trial's params would no longer be its mixture)."""
    if isinstance(distribution, FloatDistribution):
        return min(max(float(value), distribution.low), distribution.high)
    return value
