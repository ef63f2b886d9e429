"""Fuzz the public API with hypothesis: bad input gets a clear error or is handled.

What counts as clear: a ``ValueError`` or ``TypeError`` raised by optuna_adso's own code (not from
inside BoTorch, GPyTorch, torch or numpy), whose message names the parameter.  What counts as
handled: the call succeeds and what it stored is sane.  Either way the study must stay usable:
its declarations and trials still readable, and a valid trial still runs.  Example counts are
bounded so the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import math
import traceback
import warnings

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import optuna_adso as adso
from optuna_adso.space import mixture_specs_from_attrs, scale_specs_from_attrs
from optuna_adso.storage import open_storage
from optuna_adso.workers import run_workers

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a whole study per example: few examples, and no shrinking (minutes) if one fails
SLOW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate])

weird_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-300, 1e300, -1.0, 2.0]),
)
numbers = st.one_of(weird_floats, st.integers(-5, 5), st.booleans())
weird_values = st.one_of(numbers, st.none(), st.text(max_size=3), st.just([0.5]))
domain_names = st.one_of(st.sampled_from(["web", "code", "books", "math"]), st.text(max_size=4), st.integers(0, 3))
str_keys = st.one_of(st.sampled_from(["web", "code", "books", "math"]), st.text(max_size=4))  # mixed: BAD_INPUTS


def assert_clear_error(exc: BaseException, names: tuple[str, ...]) -> None:
    """A ValueError/TypeError from optuna_adso itself whose message names one of ``names``."""
    assert isinstance(exc, (ValueError, TypeError)), f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    origin = frames[-1].filename if frames else ""
    assert "optuna_adso" in origin, f"raised from {origin}: {exc}"
    message = str(exc)
    assert any(n in message for n in names), f"message names none of {names}: {message!r}"


def fresh_study(sampler=None) -> optuna.Study:
    return optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))


def assert_study_usable(study: optuna.Study) -> None:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    mixture_specs_from_attrs(attrs)
    scale_specs_from_attrs(attrs)
    for t in study.get_trials(deepcopy=False):
        dict(t.params), dict(t.user_attrs), dict(t.intermediate_values)
        for v in t.system_attrs.values():
            json.dumps(v)


# --- mixture and scale declarations ------------------------------------------------------------


@FAST
@given(
    domains=st.one_of(st.lists(domain_names, max_size=5), st.text(max_size=5), st.none(), st.integers()),
    # non-numbers where numbers are expected: see BAD_INPUTS
    min_weight=st.one_of(st.none(), numbers, st.dictionaries(str_keys, numbers, max_size=3)),
    max_weight=st.one_of(st.none(), numbers, st.dictionaries(str_keys, numbers, max_size=3)),
    tokens=st.one_of(st.none(), st.dictionaries(str_keys, weird_floats, max_size=3)),
    max_epochs=st.one_of(st.none(), numbers),
    total_tokens=st.one_of(st.none(), numbers),
    under_adso=st.booleans(),
)
def test_suggest_mixture_rejects_bad_declarations_clearly(
    domains, min_weight, max_weight, tokens, max_epochs, total_tokens, under_adso
):
    sampler = adso.ADSOSampler(target={"step": 100}, seed=0) if under_adso else None
    study = fresh_study(sampler)
    trial = study.ask()
    try:
        mixture = adso.suggest_mixture(
            trial, "mix", domains, min_weight=min_weight, max_weight=max_weight,
            available_tokens=tokens, max_epochs=max_epochs, total_tokens=total_tokens,
        )
    except Exception as exc:  # noqa: BLE001 - judged below
        assert_clear_error(
            exc, ("domain", "min_weight", "max_weight", "max weight", "available_tokens", "max_epochs",
                  "total_tokens", "mixture")
        )
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        w = np.array(list(mixture.values()))
        assert list(mixture) == list(domains)
        assert np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-9
        study.tell(trial, 0.0)
    assert_study_usable(study)


@FAST
@given(
    choices=st.one_of(st.lists(weird_values, max_size=4), st.none(), st.text(max_size=3), weird_floats),
    name=st.one_of(st.just("model_size"), st.text(max_size=3), st.none()),
)
def test_suggest_scale_rejects_bad_declarations_clearly(choices, name):
    study = fresh_study()
    trial = study.ask()
    try:
        value = adso.suggest_scale(trial, name, choices)
    except Exception as exc:  # noqa: BLE001
        assert_clear_error(exc, ("scale",))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        assert value in [float(c) for c in choices] and value > 0
        study.tell(trial, 0.0)
    assert_study_usable(study)


# --- sampler, cost and pruner configuration ---------------------------------------------------

SAMPLER_PARAMS = (
    "target", "cost", "seed", "method", "n_startup_trials", "max_points", "stop_fractions",
    "min_target_share", "run_overhead", "n_candidates", "tokens_per_step", "step",
)


@FAST
@given(
    target=st.one_of(
        st.dictionaries(st.sampled_from(["step", "model_size", "other"]), weird_values, max_size=3),
        weird_values,
    ),
    tokens_per_step=numbers,
    options=st.dictionaries(  # n_candidates and seed: see BAD_INPUTS
        st.sampled_from(["method", "n_startup_trials", "max_points", "stop_fractions", "min_target_share",
                         "run_overhead"]),
        st.one_of(numbers, st.sampled_from(["adso", "paper", "x"]), st.lists(weird_floats, min_size=1, max_size=3)),
        max_size=3,
    ),
)
def test_sampler_configuration_is_validated_before_any_compute(target, tokens_per_step, options):
    try:
        sampler = adso.ADSOSampler(target=target, cost=adso.FlopsCost(tokens_per_step=tokens_per_step), **options)
    except Exception as exc:  # noqa: BLE001
        assert_clear_error(exc, SAMPLER_PARAMS)


@FAST
@given(min_steps=weird_values)
def test_pruner_configuration(min_steps):
    try:
        adso.ADSOPruner(min_steps=min_steps)
    except Exception as exc:  # noqa: BLE001
        assert_clear_error(exc, ("min_steps",))


def _mixture(**kwargs):
    return adso.suggest_mixture(fresh_study().ask(), "mix", ["web", "code"], **kwargs)


def _propose_with(**options):
    from conftest import make_objective, make_sampler

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=3, **options), pruner=adso.ADSOPruner())
    study.optimize(make_objective(), n_trials=4)


def _huge_reports():
    from conftest import DOMAINS, SCALES, make_sampler

    study = optuna.create_study(sampler=make_sampler(n_startup_trials=3, n_candidates=32), pruner=adso.ADSOPruner())

    def objective(trial: optuna.Trial) -> float:
        adso.suggest_mixture(trial, "mix", list(DOMAINS))
        adso.suggest_scale(trial, "model_size", list(SCALES))
        trial.report([1e16, -1.7976931348623157e308, 0.0][trial.number % 3], 100)
        return 0.0

    study.optimize(objective, n_trials=5)


BAD_INPUTS = {  # found by the fuzzers above, each now a clear error naming the parameter
    "max_weight=''": lambda: _mixture(max_weight=""),
    "max_weight=[0.5]": lambda: _mixture(max_weight=[0.5]),
    "min_weight={'web': None}": lambda: _mixture(min_weight={"web": None}),
    "total_tokens='x'": lambda: _mixture(available_tokens={"web": 1.0}, total_tokens="x"),
    "max_epochs='x'": lambda: _mixture(available_tokens={"web": 1.0}, total_tokens=10, max_epochs="x"),
    "available_tokens={'web': 'x'}": lambda: _mixture(available_tokens={"web": "x"}, total_tokens=10),
    "max_weight={0: 0.0, '': 0.0} (keys of mixed types)": lambda: _mixture(max_weight={0: 0.0, "": 0.0}),
    "FlopsCost(tokens_per_step=None)": lambda: adso.FlopsCost(tokens_per_step=None),
    "min_target_share=None": lambda: adso.ADSOSampler(target={"step": 10}, min_target_share=None),
    "stop_fractions=None": lambda: adso.ADSOSampler(target={"step": 10}, stop_fractions=None),
    "run_overhead='x'": lambda: adso.ADSOSampler(target={"step": 10}, run_overhead="x"),
    "seed='x'": lambda: adso.ADSOSampler(target={"step": 10}, seed="x"),
    "n_candidates=-3 (numpy error at the first model proposal)": lambda: _propose_with(n_candidates=-3),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_found_by_fuzzing_give_a_clear_error(case):
    names = ("reported", "value", "min_weight", "max_weight", "total_tokens", "max_epochs", "available_tokens", "tokens_per_step",
             "min_target_share", "stop_fractions", "run_overhead", "seed", "n_candidates")
    with pytest.raises((ValueError, TypeError)) as info:
        BAD_INPUTS[case]()
    assert_clear_error(info.value, names)


def test_absurdly_large_reports_are_ignored_with_a_warning():
    """-1.8e308 once overflowed the GP's standardization inside BoTorch and stopped the study."""
    with pytest.warns(UserWarning, match="absurdly large"):
        _huge_reports()


# --- reported values ---------------------------------------------------------------------------

# Finite values beyond 1e150 are ignored with a warning (they once overflowed the GP's scaling).
reported = st.one_of(
    st.floats(min_value=-1e100, max_value=1e100),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e100, -1e100, -1.7976931348623157e308, -5.0, 0.0, 1e-300]),
)


@SLOW
@given(
    curves=st.lists(st.lists(reported, min_size=1, max_size=4), min_size=6, max_size=6),
    finals=st.lists(reported, min_size=6, max_size=6),
)
def test_wild_reported_values_never_break_the_study(curves, finals):
    from conftest import DOMAINS, SCALES, make_sampler

    sampler = make_sampler(seed=0, n_startup_trials=3, n_candidates=32, max_points=20)
    study = optuna.create_study(sampler=sampler, pruner=adso.ADSOPruner())

    def objective(trial: optuna.Trial) -> float:
        adso.suggest_mixture(trial, "mix", list(DOMAINS))
        adso.suggest_scale(trial, "model_size", list(SCALES))
        for i, value in enumerate(curves[trial.number]):
            trial.report(value, 100 * (i + 1))
        return finals[trial.number]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=len(finals))  # must not raise
        rec = adso.recommend(study)
    assert len(study.trials) == len(finals)
    assert_study_usable(study)
    w = np.array(list(rec.mixture.values()))
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    for t in study.trials:
        assert abs(sum(t.user_attrs["mix"].values()) - 1) < 1e-9


# --- storage and workers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["", "   ", "nonsense", "redis://localhost/0", "sqlite://", "sqlite:///:memory:",
     "sqlite:////no/such/dir/x.db", "postgresql://", "postgresql://user@/db", "postgresql://u@h:port/db",
     "mysql+pymysql://root@127.0.0.1", "journal:", "/no/such/dir/study.log", "mysql+nodriver://u@h/db"],
)
def test_open_storage_rejects_malformed_urls_naming_what_was_expected(url):
    with pytest.raises((ValueError, TypeError)) as info:
        open_storage(url)
    assert_clear_error(info.value, ("storage",))


@FAST
@given(heartbeat=weird_values, grace=weird_values, retries=weird_values, url=st.one_of(st.integers(), st.lists(st.none())))
def test_open_storage_options_are_validated(heartbeat, grace, retries, url):
    try:
        open_storage(optuna.storages.InMemoryStorage(), heartbeat_interval=heartbeat, grace_period=grace,
                     max_retry=retries)
    except Exception as exc:  # noqa: BLE001
        assert_clear_error(exc, ("heartbeat_interval", "grace_period", "max_retry"))
    with pytest.raises(TypeError) as info:
        open_storage(url)
    assert_clear_error(info.value, ("storage",))


def _noop(index: int) -> None:
    return None


@pytest.mark.parametrize(
    "fn, n, gpus",
    [(_noop, 0, None), (_noop, -1, None), (_noop, 1.5, None), (_noop, True, None), ("x", 1, None),
     (lambda i: None, 1, None), (_noop, 2, []), (_noop, 2, [0, 0]), (_noop, 2, [-1]), (_noop, 2, "01"),
     (_noop, 2, [0.5])],
)
def test_run_workers_rejects_bad_arguments_before_starting_anything(fn, n, gpus):
    with pytest.raises((ValueError, TypeError)) as info:
        run_workers(fn, n, gpus)
    assert_clear_error(info.value, ("worker_fn", "n_workers", "gpus"))
