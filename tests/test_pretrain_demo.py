"""The offline demo runs a real study (a short one here) and can recommend from it."""

from __future__ import annotations

import optuna

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.pretrain.demo import TARGET_SCALE, check_at_target, run_demo, summary


def test_demo_runs_a_short_real_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    study = run_demo(storage=storage, study_name="t", n_trials=3, cache_dir=str(tmp_path / "cache"), progress=False)
    assert len(study.trials) == 3
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    assert {t.user_attrs["scale"] for t in study.trials} == {"tiny-32", "tiny-64", "tiny-128"}
    rec = adso.recommend(optuna.load_study(study_name="t", storage=storage))
    assert set(rec.mixture) == {"code", "docs", "docstrings", "licenses"}
    assert "3 trials" in summary(study)
    # The real objective reports every domain's held-out loss, so any objective can be asked for.
    assert all(records.domain_values(t) for t in study.trials)
    worst = adso.recommend(study, objective="worst-excess")
    assert worst.objective == "worst-excess(uniform)" and set(worst.domains) == set(rec.mixture)


def test_the_check_is_a_new_run_and_names_the_study_runs_it_repeats(tmp_path):
    """The demo's check trains the recommendation with a seed the study did not use (a run with
    the study's seed on a mixture it trained replays that run, luck included), and says which
    of the study's runs trained the same mixture."""
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    cache = str(tmp_path / "cache")
    study = run_demo(storage=storage, study_name="t", n_trials=3, cache_dir=cache, progress=False)
    at_target = next(t for t in study.trials if t.user_attrs["scale"] == TARGET_SCALE)
    text = check_at_target(at_target.user_attrs["mix"], cache, seed=1, study=study)
    assert "a new run: seed 1" in text
    assert f"trial {at_target.number} (seed 0): {at_target.value:.4f}" in text
