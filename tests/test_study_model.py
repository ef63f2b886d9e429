"""The study model: every process rebuilds exactly the sampler's settings from storage.

A pruner or a budget in another process (a dashboard, ``adso status``, a worker started with
another sampler) must price a run as the sampler that proposed it did, or the budget stops at
another point and the pruner judges savings that are not there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from conftest import DOMAINS, SCALES, TARGET_SCALE, TARGET_STEP, make_objective

import optuna_adso as adso
from optuna_adso.study_model import CostModelNotStored, NoStudyConfig, StudySettings, Target, settings_for_study

HERE = Path(__file__).resolve().parent

# Cost grows faster than linearly in steps (a warm-up at low throughput, then a slower tail):
# any linear-in-steps stand-in for it prices partial runs wrongly.
ROWS = [(s, step, s * 1e-6 * step**1.4) for s in SCALES for step in (50, 200, 600, 1000)]


def _table_study(tmp_path: Path, cost) -> tuple[optuna.Study, adso.ADSOSampler]:
    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, cost=cost, seed=0,
                               n_startup_trials=3, n_candidates=64)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'cost.db'}", study_name="cost", sampler=sampler)
    def stopped_early(trial: optuna.Trial) -> float:  # every other run stops at a step off the table's rows
        adso.suggest_mixture(trial, "mix", list(DOMAINS))
        adso.suggest_scale(trial, "model_size", list(SCALES))
        for step in (70, 130, 450, 1000):
            trial.report(1.0 / (1 + trial.number) + 100.0 / step, step)
            if trial.number % 2 and step == 130:
                raise optuna.TrialPruned()
        return 1.0 / (1 + trial.number) + 0.1

    study.optimize(stopped_early, n_trials=6)
    return study, sampler


_OTHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    import optuna
    import optuna_adso as adso
    from optuna_adso.study_model import StudyModel

    study = optuna.load_study(study_name="cost", storage=sys.argv[1], sampler=optuna.samplers.RandomSampler())
    budget = adso.FlopsBudget(1e300)
    budget(study, study.trials[-1])
    model = StudyModel.of(study)  # what the pruner stands on
    pruner = adso.ADSOPruner()
    print(json.dumps({
        "spent": budget.spent,
        "costs": [model.trial_cost(t)[1] for t in model.trials],
        "remaining": [pruner.remaining_cost(model, t, 70) for t in model.trials],
        "target_cost": model.settings.target_cost,
    }))
    """
)


def _in_another_process(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, f"sqlite:///{tmp_path / 'cost.db'}"],
        capture_output=True, text=True, timeout=180, cwd=HERE,
    )


def test_a_pruner_and_a_budget_in_another_process_price_a_table_cost_as_the_sampler_does(tmp_path):
    study, sampler = _table_study(tmp_path, adso.TableCost(ROWS))
    out = _in_another_process(tmp_path)
    assert out.returncode == 0, out.stderr
    theirs = json.loads(out.stdout)
    model = sampler.study_model(study)
    ours = {
        "spent": model.flops_spent(),
        "costs": [model.trial_cost(t)[1] for t in model.trials],
        "remaining": [adso.ADSOPruner().remaining_cost(model, t, 70) for t in model.trials],
        "target_cost": sampler.target_cost,
    }
    assert theirs == ours  # exactly, not approximately
    pruned = [t for t in model.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the study must hold partial runs"
    # and the old stand-in (cost at the target step, scaled linearly) would have priced them otherwise
    t = pruned[0]
    scale = t.params["model_size"]
    linear = sampler.run_cost(scale, TARGET_STEP) * t.last_step / TARGET_STEP
    assert abs(linear - model.trial_cost(t)[1]) > 0.05 * model.trial_cost(t)[1]


def test_a_callable_cost_is_refused_in_another_process_with_a_clear_error(tmp_path):
    _table_study(tmp_path, lambda params, step: params["model_size"] * step)
    out = _in_another_process(tmp_path)
    assert out.returncode != 0
    assert "CostModelNotStored" in out.stderr and "user callable" in out.stderr and "sampler=" in out.stderr


def test_settings_round_trip_through_the_study_config():
    for cost in (adso.FlopsCost(tokens_per_step=4096), adso.TableCost(ROWS), None):
        sampler = adso.ADSOSampler(target={"model_size": 1e9, "step": 2000}, cost=cost, method="paper",
                                   planned_stops=True, stop_fractions=(0.2, 1.0), max_points=64,
                                   run_overhead=0.3, min_target_share=0.25)
        rebuilt = StudySettings.from_config(json.loads(json.dumps(sampler.settings.to_config())))
        assert rebuilt.to_config() == sampler.settings.to_config()
        for scale, step in ((1e7, 30), (3e8, 777), (1e9, 2000)):
            assert rebuilt.run_cost(scale, step) == sampler.run_cost(scale, step)


def test_settings_come_from_the_sampler_given_the_studys_own_or_storage(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s")
    with pytest.raises(NoStudyConfig, match="sampler=ADSOSampler"):
        settings_for_study(study)
    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP},
                               cost=adso.FlopsCost(tokens_per_step=8))
    assert settings_for_study(study, sampler) is sampler.settings
    assert settings_for_study(study, sampler.settings) is sampler.settings
    with pytest.raises(TypeError, match="ADSOSampler"):
        settings_for_study(study, object())  # type: ignore[arg-type]
    own = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}", sampler=sampler)
    own.optimize(make_objective(), n_trials=1)
    assert settings_for_study(own) is sampler.settings
    stored = settings_for_study(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}"))
    assert stored.to_config() == sampler.settings.to_config()


def test_a_stored_config_from_an_older_version_is_refused_not_approximated():
    old = {"target": {"step": 10.0, "scale_param": "n", "scale": 1e9}, "method": "adso",
           "cost_at_target_step": {"1e9": 1.0}}
    with pytest.raises(CostModelNotStored, match="older optuna-adso"):
        StudySettings.from_config(old)


def test_settings_validate_before_any_compute():
    with pytest.raises(ValueError, match="min_target_share"):
        StudySettings(Target(10.0, None, None), min_target_share=1.0)
    with pytest.raises(ValueError, match="planned_stops"):
        StudySettings(Target(10.0, None, None), planned_stops="yes")
    with pytest.raises(TypeError, match="cost must be"):
        StudySettings(Target(10.0, None, None), cost=3)


def test_the_users_cost_object_is_never_changed():
    cost = adso.TableCost(ROWS)
    adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, cost=cost)
    assert cost.scale_param is None


def test_observations_normalize_all_mixtures_at_once_to_the_same_bits():
    """collect_observations normalizes every trial's weights in one call; each row must be what
    trial_weights gives that trial alone (the GP's inputs, hence the study, must not change)."""
    import numpy as np
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from optuna_adso.space import _trials_weights, make_mixture_spec, trial_weights

    rng = np.random.default_rng(3)
    for k in (2, 5, 13):
        spec = make_mixture_spec("m", [f"d{i}" for i in range(k)])
        trials = []
        for i in range(40):
            raw = rng.random(k) ** 3 * 10.0 ** rng.uniform(-3, 3)
            if i % 7 == 3:
                raw[:] = 0.0  # unusable: None
            trials.append(create_trial(
                state=TrialState.COMPLETE, value=1.0,
                params={p: float(v) for p, v in zip(spec.param_names, raw)},
                distributions={p: FloatDistribution(0.0, 1e4) for p in spec.param_names},
            ))
        for t, w in zip(trials, _trials_weights(trials, spec)):
            alone = trial_weights(t, spec)
            assert (w is None and alone is None) or np.array_equal(w, alone)


def test_the_refit_schedule_counts_the_studys_own_trials_not_imported_runs():
    """A study warm-started from many imported runs re-optimizes its GP as often as a cold one
    (256 imported runs would otherwise space refits 26 trials apart from the first new one)."""
    import optuna

    import optuna_adso as adso
    from conftest import make_objective, make_sampler
    from optuna_adso.study_model import StudyModel, refit_due

    study = optuna.create_study(sampler=make_sampler(n_candidates=32), pruner=optuna.pruners.NopPruner())
    study.optimize(make_objective(), n_trials=1)
    rows = [{"run": f"r{i}", "step": 1000, "value": 3.0 + 0.01 * i, "model_size": 1e7,
             "mix/web": 0.2, "mix/code": 0.3 + 0.001 * i, "mix/books": 0.5 - 0.001 * i} for i in range(30)]
    adso.add_runs(study, rows)
    model = StudyModel.of(study)
    assert not refit_due(31, 33)  # in trial numbers: 2 trials since the fit, due every 3
    assert model._refit_due(31, 33)  # the study's own 2nd and 4th trials: due every trial


def test_a_studys_runs_are_fitted_with_one_offset_each():
    """Each trial's reports share its run's offset: the study's GP is told which reports belong
    to which run (its trial), and a new run's noise counts the offset.  (Whether the fit finds
    the offsets' variance is a matter of data: in this 16-run study each offset sits at a mixture
    of its own and the fit explains it as mixture effect; see tests/test_surrogate.py for arrays
    where it is found.)"""
    import numpy as np
    from conftest import REPORT_STEPS, synthetic_loss

    from optuna_adso.study_model import StudyModel

    def noisy_runs(trial: optuna.Trial) -> float:
        w = adso.suggest_mixture(trial, "mix", list(DOMAINS))
        size = adso.suggest_scale(trial, "model_size", list(SCALES))
        offset = 0.3 * np.random.default_rng(trial.number).normal()  # seed, data order: the whole run
        value = float("nan")
        for step in REPORT_STEPS:
            value = synthetic_loss([w[d] for d in DOMAINS], size, step) + offset
            trial.report(value, step)
        return value

    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, seed=0, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(noisy_runs, n_trials=16)
    fitted = StudyModel.of(study).fit_surrogate(np.random.default_rng(0), now=len(study.trials), maxiter=None)
    gp = fitted.surrogate
    runs = fitted.observations.trial_numbers[fitted.rows]
    assert np.array_equal(gp.groups, runs)
    assert gp.noise_variance == pytest.approx(gp.report_noise_variance + gp.run_variance)
    # a new run's reports are new runs to the GP: conditioning on one leaves the study's runs apart
    more = gp.condition_on(np.column_stack([fitted.observations.weights[:2], np.zeros((2, 2))]),
                           fitted.observations.values[:2])
    assert set(more.groups[-2:]).isdisjoint(runs)


def test_the_model_with_imported_runs_keeps_their_final_values_when_own_reports_fill_max_points(monkeypatch):
    """Thinned together with the study's own reports (nearer the target, so kept first), the
    imported runs fell out of the model once the study had ``max_points`` reports of its own,
    and the held-out test compared two models of the same data.  The model with them must see
    the own model's rows plus one final report per imported run (a fixed choice of at most half
    of ``max_points`` runs)."""
    import numpy as np
    from conftest import DOMAINS, REPORT_STEPS, make_objective, make_sampler, synthetic_loss

    from optuna_adso import fidelity_trust
    from optuna_adso.study_model import StudyModel

    study = optuna.create_study(sampler=make_sampler(max_points=40, n_startup_trials=3),
                                pruner=optuna.pruners.NopPruner())
    study.optimize(make_objective(), n_trials=14)  # 14 runs x 4 reports: more than 40 rows
    rng = np.random.default_rng(5)
    rows = []
    for i, w in enumerate(rng.dirichlet(np.ones(3), size=30)):
        for step in REPORT_STEPS:
            rows.append({"run": f"r{i}", "step": step, "value": synthetic_loss(w, 1e7, step),
                         "model_size": 1e7, **{f"mix/{d}": float(x) for d, x in zip(DOMAINS, w)}})
    adso.add_runs(study, rows)
    model = StudyModel.of(study, make_sampler(max_points=40, n_startup_trials=3))
    borrowed = model._imported_below_anchor()
    assert len(borrowed) == 30
    original = fidelity_trust.assess_imported
    seen = []

    def spy(with_imported, own, anchor_rows=None):
        seen.append((with_imported[1], own[1]))  # the run of each training row
        return original(with_imported, own, anchor_rows)

    monkeypatch.setattr(fidelity_trust, "assess_imported", spy)
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(model.trials))
    assert fitted.imported is not None
    with_runs, own_runs = seen[0]
    imported_rows = np.isin(with_runs, list(borrowed))
    assert len(own_runs) == 40 and not np.isin(own_runs, list(borrowed)).any()
    assert sorted(with_runs[~imported_rows]) == sorted(own_runs)
    assert imported_rows.sum() == 20 and len(set(with_runs[imported_rows])) == 20  # one report each, 40 // 2 runs
    model.fit_surrogate(np.random.default_rng(1), now=len(model.trials))
    again = seen[1][0]
    assert set(again[np.isin(again, list(borrowed))]) == set(with_runs[imported_rows])  # a fixed choice
