"""What optuna-adso keeps in a study's storage: the ``adso:*`` keys, their formats, and the reads
and writes of them.

Everything the sampler, the pruner and the recommendation know lives in the study's storage, so
that any number of workers in any number of processes share one study.  This module is the only
one that names a key, knows how its value is encoded, or touches Optuna's (private) storage API;
the others ask it in plain Python values.

Study system attributes:

- ``adso:mixture:<name>``: a mixture declaration ``{"domains", "lower", "upper"}``, plus
  ``"candidates"`` (a list of weight lists) when the study may only run a pool of mixtures.
- ``adso:scale:<name>``: a scale declaration, the sorted list of runnable scales.
- ``adso:config``: what the study is for (target, cost model, method, fidelity settings),
  written by the sampler so that other processes answer for the same target.
- ``adso:fail_reason:<trial number>``: why the heartbeat check failed a trial.

Trial system attributes:

- ``adso:stop_step``: the step a planned partial run stops at (None: a full run).
- ``adso:proposal``: the sampler's proposal (mixture, scale, stop, predicted value, score).
- ``adso:gp_state``: the surrogate's fitted hyperparameters, to warm-start the next fit.
- ``adso:startup_weights``: a startup trial's space-filling mixture.
- ``adso:prune_reason``, ``adso:pruner_checked_step``: the pruner's decisions.
- ``adso:fail_reason``: why the objective failed.
- ``adso:import_hash``: an imported run's content hash (see :mod:`optuna_adso.runs_io`).
- ``adso:replicate_of``: the trial whose mixture this run repeats with a new seed (a seed
  replicate, see :mod:`optuna_adso.seed_replicates`).

Trial user attributes of an imported run (visible in optuna-dashboard):

- ``adso:imported``: where it came from (a file name); ``adso:run_id``: its id there.
- ``adso:domains``: per-domain values by step, ``{"<step>": {domain: value}}``.
- ``adso:cost``: the cost the source recorded for it.

Trial user attributes of a run that reports per-domain values (:func:`optuna_adso.report`):

- ``adso:domains:<step>``: ``{domain: value}`` at that step, one attribute per report so that a
  long run never rewrites (or outgrows) one growing attribute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

PREFIX = "adso:"
MIXTURE_PREFIX = "adso:mixture:"
SCALE_PREFIX = "adso:scale:"
CONFIG = "adso:config"
STALE_REASON_PREFIX = "adso:fail_reason:"
STOP_STEP = "adso:stop_step"
PROPOSAL = "adso:proposal"
GP_STATE = "adso:gp_state"
STARTUP_WEIGHTS = "adso:startup_weights"
PRUNE_REASON = "adso:prune_reason"
PRUNER_CHECKED_STEP = "adso:pruner_checked_step"
FAIL_REASON = "adso:fail_reason"
IMPORT_HASH = "adso:import_hash"
IMPORTED = "adso:imported"
IMPORTED_RUN_ID = "adso:run_id"
DOMAIN_VALUES = "adso:domains"
DOMAIN_VALUES_AT = "adso:domains:"
RUN_COST = "adso:cost"
REPLICATE_OF = "adso:replicate_of"
RUN_SEED = "seed"  # user attribute: the seed a run trained with (written by the objective)

MAX_CONFIG_CHARS = 60_000
"""A study attribute is a TEXT column (64 KiB on MySQL); a longer configuration is refused."""

AnyTrial = optuna.Trial | FrozenTrial


# --- storage access ----------------------------------------------------------------------------


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attributes, straight from storage."""
    return study._storage.get_study_system_attrs(study._study_id)


def set_study_attr(study: optuna.Study, key: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, key, value)


def all_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of the study from storage, not through the study object.

    Under HyperbandPruner, Optuna hands samplers a view of one bracket; storage sees them all.
    """
    return study._storage.get_all_trials(study._study_id, deepcopy=False)


def is_maximize(study: optuna.Study) -> bool:
    return study._storage.get_study_directions(study._study_id)[0] == StudyDirection.MAXIMIZE


def trial_attrs(study: optuna.Study, trial: AnyTrial) -> dict[str, Any]:
    """A trial's system attributes as stored now (a FrozenTrial handed to a hook may be stale)."""
    return study._storage.get_trial_system_attrs(trial._trial_id)


def set_trial_attr(study: optuna.Study, trial: AnyTrial, key: str, value: Any) -> None:
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


def stored_trial(trial: optuna.Trial) -> FrozenTrial:
    """A live trial as its storage holds it (what another process wrote to it included)."""
    return trial.study._storage.get_trial(trial._trial_id)


def trial_location(trial: optuna.Trial) -> tuple[BaseStorage, int]:
    """(storage, trial id): what a spawned process needs to reopen a running trial."""
    return trial.study._storage, trial._trial_id


def copy_declarations(source: optuna.Study, dest: optuna.Study) -> None:
    """Copy every ``adso:*`` study attribute, so ``dest`` answers as ``source`` does."""
    for key, value in study_attrs(source).items():
        if key.startswith(PREFIX):
            set_study_attr(dest, key, value)


# --- declarations ------------------------------------------------------------------------------


def _declare(study: optuna.Study, key: str, value: str, what: str) -> None:
    """Record a declaration once per study; refuse a different one later."""
    attrs = study_attrs(study)
    if key in attrs and attrs[key] != value:
        raise ValueError(
            f"{what} was declared as {attrs[key]} earlier in this study, now as {value}; "
            "a study must keep the same declaration (start a new study to change it)"
        )
    if key not in attrs:
        set_study_attr(study, key, value)


def declare_mixture(
    study: optuna.Study,
    name: str,
    domains: Sequence[str],
    lower: Sequence[float],
    upper: Sequence[float],
    candidates: Sequence[Sequence[float]] = (),
) -> None:
    """``candidates``: the pool of mixtures the study may run (empty: the whole simplex).  The key
    is written only for a pool, so a study without one keeps the declaration it always had."""
    decl: dict[str, Any] = {"domains": list(domains), "lower": list(lower), "upper": list(upper)}
    if candidates:
        decl["candidates"] = [[float(x) for x in c] for c in candidates]
    text = json.dumps(decl)
    _declare(study, MIXTURE_PREFIX + name, text, f"mixture {name!r}")


def declare_scale(study: optuna.Study, name: str, choices: Sequence[float]) -> None:
    _declare(study, SCALE_PREFIX + name, json.dumps(list(choices)), f"scale {name!r}")


def declared_mixtures(attrs: Mapping[str, Any]) -> list[tuple[str, dict[str, list[Any]]]]:
    """(name, {"domains", "lower", "upper"[, "candidates"]}) of every mixture declared, by name."""
    return [
        (key[len(MIXTURE_PREFIX) :], json.loads(value))
        for key, value in sorted(attrs.items())
        if key.startswith(MIXTURE_PREFIX)
    ]


def declared_scales(attrs: Mapping[str, Any]) -> list[tuple[str, list[float]]]:
    """(name, choices) of every scale declared, by name."""
    return [
        (key[len(SCALE_PREFIX) :], [float(c) for c in json.loads(value)])
        for key, value in sorted(attrs.items())
        if key.startswith(SCALE_PREFIX)
    ]


# --- the study's configuration -----------------------------------------------------------------


def write_config(study: optuna.Study, config: Mapping[str, Any]) -> None:
    """Store what the study is for (see :mod:`optuna_adso.study_model` for its fields)."""
    text = json.dumps(config, sort_keys=True)
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(
            f"the study's configuration takes {len(text)} characters, more than a study attribute "
            f"holds ({MAX_CONFIG_CHARS}); a TableCost with that many rows cannot be stored: thin "
            "the table (costs are interpolated between rows)"
        )
    if study_attrs(study).get(CONFIG) != text:
        set_study_attr(study, CONFIG, text)


def read_config(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = attrs.get(CONFIG)
    return json.loads(raw) if raw else None


# --- proposals and planned stops ---------------------------------------------------------------


@dataclass(frozen=True)
class ProposalRecord:
    """What the sampler proposed for a trial, as stored (weights to 8 decimals)."""

    scale: float
    stop_step: float
    relative_cost: float
    score: float
    target_mean: float
    target_std: float
    seconds: float
    weights: list[float]
    basis: str = "multi-fidelity"
    cheap_gain: float | None = None
    imported_gain: float | None = None  # what imported small runs add (nats per anchor run); None: no verdict
    imported_used: bool | None = None  # whether the model used them (None: none imported)


def write_proposal(study: optuna.Study, trial: AnyTrial, record: ProposalRecord, stop_step: float | None) -> None:
    """Write the planned stop (None for a full run) and the proposal, in that order."""
    set_trial_attr(study, trial, STOP_STEP, stop_step)
    set_trial_attr(study, trial, PROPOSAL, json.dumps(asdict(record)))


def read_proposal(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's stored proposal as a dict (empty when none was made)."""
    raw = trial.system_attrs.get(PROPOSAL)
    return json.loads(raw) if raw else {}


def planned_stop(attrs: Mapping[str, Any]) -> float | None:
    """The step a planned partial run stops at, from a trial's system attributes."""
    stop = attrs.get(STOP_STEP)
    return None if stop is None else float(stop)


def startup_weights(study: optuna.Study, trial: AnyTrial) -> list[float] | None:
    return trial_attrs(study, trial).get(STARTUP_WEIGHTS)


def stored_startup_weights(trial: FrozenTrial) -> list[float] | None:
    return trial.system_attrs.get(STARTUP_WEIGHTS)


def write_startup_weights(study: optuna.Study, trial: AnyTrial, weights: Sequence[float]) -> None:
    set_trial_attr(study, trial, STARTUP_WEIGHTS, [float(x) for x in weights])


# --- the surrogate's warm start ----------------------------------------------------------------


OWN_RUNS_SUFFIX = "+own"
"""Kind suffix of the GP of a study's own runs, fitted beside the model of every run when runs
were imported (see :meth:`optuna_adso.study_model.StudyModel.fit_surrogate`)."""


STATED_SUFFIX = ":scaling-law"
"""Kind suffix of the GP that states values beyond the runs, fitted beside the search's GP (see
:meth:`optuna_adso.study_model.StudyModel.fit_stated`)."""


def _gp_state_key(kind: str) -> str:
    """The study's model and the anchor-only hedge (kind "mixture") are stored side by side, and
    so are the models of a per-domain objective (kind ``"<kind>@<objective key>"``), the
    models of a study's own runs (kind ``"<kind>+own"``) and the GP that states values beyond
    the runs (kind ``"<kind>:scaling-law"``)."""
    if kind.endswith(STATED_SUFFIX):
        return _gp_state_key(kind[: -len(STATED_SUFFIX)]) + STATED_SUFFIX
    own = kind.endswith(OWN_RUNS_SUFFIX)
    kind = kind[: -len(OWN_RUNS_SUFFIX)] if own else kind
    base, _, objective = kind.partition("@")
    return (GP_STATE + (":mixture" if base == "mixture" else "") + (f"@{objective}" if objective else "")
            + (OWN_RUNS_SUFFIX if own else ""))


def write_gp_state(study: optuna.Study, trial: AnyTrial, kind: str, state: Sequence[float], fitted_at: int) -> None:
    set_trial_attr(
        study, trial, _gp_state_key(kind), json.dumps({"kind": kind, "state": list(state), "trial": fitted_at})
    )


def has_gp_state(trials: Sequence[FrozenTrial]) -> bool:
    return any(k.startswith(GP_STATE) for t in trials for k in t.system_attrs)


def latest_gp_state(trials: Sequence[FrozenTrial], kind: str) -> tuple[list[float], int] | None:
    """The most recently fitted hyperparameters of ``kind``, and the trial that fitted them."""
    key = _gp_state_key(kind)
    for t in sorted(trials, key=lambda t: -t.number):
        raw = t.system_attrs.get(key)
        if raw:
            try:
                data = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if data.get("kind") == kind:
                # a retried trial carries a copy of its original's attrs: when was it fitted?
                return [float(v) for v in data["state"]], int(data.get("trial", t.number))
    return None


# --- the pruner's decisions --------------------------------------------------------------------


def write_prune_reason(study: optuna.Study, trial: AnyTrial, reason: Mapping[str, Any]) -> None:
    set_trial_attr(study, trial, PRUNE_REASON, json.dumps(dict(reason)))


def pruner_checked_step(trial: FrozenTrial) -> float | None:
    last = trial.system_attrs.get(PRUNER_CHECKED_STEP)
    return None if last is None else float(last)


def write_pruner_checked_step(study: optuna.Study, trial: AnyTrial, step: int) -> None:
    set_trial_attr(study, trial, PRUNER_CHECKED_STEP, step)


# --- imported runs ----------------------------------------------------------------------------


def import_attrs(
    source: str, run_id: str, content_hash: str, domain_values: Mapping[str, Mapping[str, float]],
    cost: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user attrs, system attrs) that mark a trial as an imported run, not a proposal."""
    user: dict[str, Any] = {IMPORTED: source, IMPORTED_RUN_ID: run_id}
    if domain_values:
        user[DOMAIN_VALUES] = {str(k): dict(v) for k, v in domain_values.items()}
    if cost is not None:
        user[RUN_COST] = cost
    return user, {IMPORT_HASH: content_hash}


def write_replicate_of(study: optuna.Study, trial: AnyTrial, number: int | None) -> None:
    """Mark ``trial`` a seed replicate of trial ``number`` (None: withdraw the mark)."""
    set_trial_attr(study, trial, REPLICATE_OF, None if number is None else int(number))


def replicate_of(attrs: Mapping[str, Any]) -> int | None:
    """The trial a seed replicate repeats, from a trial's system attributes (None: not one)."""
    number = attrs.get(REPLICATE_OF)
    return None if number is None else int(number)


def is_seed_replicate(trial: FrozenTrial) -> bool:
    return replicate_of(trial.system_attrs) is not None


def run_seed_of(trial: FrozenTrial) -> int | None:
    """The seed a run recorded (user attribute ``seed``); None when it recorded none."""
    seed = trial.user_attrs.get(RUN_SEED)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def is_imported(trial: FrozenTrial) -> bool:
    return IMPORTED in trial.user_attrs or IMPORT_HASH in trial.system_attrs


def import_hash(trial: FrozenTrial) -> str | None:
    return trial.system_attrs.get(IMPORT_HASH)


def imported_run_id(trial: FrozenTrial) -> str | None:
    run_id = trial.user_attrs.get(IMPORTED_RUN_ID)
    return None if run_id is None else str(run_id)


def domain_values(trial: FrozenTrial) -> dict[int, dict[str, float]]:
    """Per-domain values by step: what an import stored and what :func:`optuna_adso.report` wrote
    (empty for a trial that reported none)."""
    out: dict[int, dict[str, float]] = {}
    raw = trial.user_attrs.get(DOMAIN_VALUES)
    if isinstance(raw, Mapping):
        for k, vals in raw.items():
            if isinstance(vals, Mapping):
                out[int(float(k))] = {str(d): float(v) for d, v in vals.items()}
    for key, vals in trial.user_attrs.items():
        if key.startswith(DOMAIN_VALUES_AT) and isinstance(vals, Mapping):
            try:
                step = int(float(key[len(DOMAIN_VALUES_AT):]))
            except ValueError:
                continue
            out[step] = {str(d): float(v) for d, v in vals.items()}
    return out


def write_domain_values(trial: optuna.Trial, step: int, values: Mapping[str, float]) -> None:
    """A user attribute, so that optuna-dashboard shows the per-domain curve beside the value."""
    trial.set_user_attr(DOMAIN_VALUES_AT + str(int(step)), {str(d): float(v) for d, v in values.items()})


def run_cost(trial: FrozenTrial) -> float | None:
    cost = trial.user_attrs.get(RUN_COST)
    return None if cost is None else float(cost)


# --- failures ----------------------------------------------------------------------------------


def write_fail_reason(trial: optuna.Trial, reason: str) -> None:
    set_trial_attr(trial.study, trial, FAIL_REASON, reason)


def write_stale_reason(study: optuna.Study, trial_number: int, reason: Mapping[str, Any]) -> None:
    set_study_attr(study, f"{STALE_REASON_PREFIX}{trial_number}", json.dumps(dict(reason)))


def fail_reason(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """Why a FAIL trial failed, from whichever of the two records holds it; None if unknown."""
    if FAIL_REASON in trial.system_attrs:
        return str(trial.system_attrs[FAIL_REASON])
    raw = study_attrs(study).get(f"{STALE_REASON_PREFIX}{trial.number}")
    return json.loads(raw)["reason"] if raw else None
