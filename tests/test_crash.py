"""A worker killed with SIGKILL mid-trial: its trial is failed, retried, and nothing is lost.

Two worker processes (``run_workers``) share one SQLite study opened with ``open_storage`` and a
short heartbeat (1 s, grace 3 s).  Worker 0 kills itself with SIGKILL in the middle of its
fourth trial, after reporting the first point of its learning curve; no Python code of it runs after that.
Worker 1 keeps starting trials until the study is whole.  The heartbeat check at one of its
trial starts must fail the dead trial within the grace period and queue a retry with the same
(mixture, scale) that points back at it; the retry must run to the same planned stop; the dead
trial's partial curve must stay in storage and count as observations.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

HERE = Path(__file__).resolve().parent
HEARTBEAT_S, GRACE_S = 1, 3
VICTIM_TRIAL = 4  # worker 0 dies during its 4th trial
MIN_FINISHED = 10  # worker 1 stops once this many trials finished and nothing is running
STEP_SLEEP_S = 0.1


def _open(url: str, name: str):
    import optuna_adso as adso
    from conftest import make_sampler
    from optuna_adso.storage import open_storage

    storage = open_storage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    sampler = make_sampler(seed=0, n_startup_trials=4, n_candidates=64, planned_stops=True)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=adso.ADSOPruner())


def _worker(url: str, name: str, marker: str, index: int) -> None:
    sys.path.insert(0, str(HERE))
    import torch

    import optuna_adso as adso
    from conftest import DOMAINS, REPORT_STEPS, SCALES, synthetic_loss

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = _open(url, name)
    started = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        started["n"] += 1
        weights = adso.suggest_mixture(trial, "mix", list(DOMAINS))
        size = adso.suggest_scale(trial, "model_size", list(SCALES))
        value = float("nan")
        for i, step in enumerate(REPORT_STEPS):
            time.sleep(STEP_SLEEP_S)
            value = synthetic_loss([weights[d] for d in DOMAINS], size, step)
            trial.report(value, step)
            if index == 0 and started["n"] == VICTIM_TRIAL and i == 0:
                Path(marker).write_text(f"{trial.number} {time.time()}")
                os.kill(os.getpid(), signal.SIGKILL)  # mid-trial, after its first report
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    if index == 0:
        study.optimize(objective, n_trials=VICTIM_TRIAL + 5)
        return
    deadline = time.time() + 240
    while time.time() < deadline:
        study.optimize(objective, n_trials=1)  # each start runs the heartbeat check first
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        busy = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        if len(finished) >= MIN_FINISHED and not busy:
            return
    raise RuntimeError("the study never became whole")


def test_sigkilled_worker_trial_is_failed_retried_and_its_curve_kept(tmp_path):
    from conftest import mixture_params
    from optuna_adso.records import STOP_STEP as STOP_STEP_ATTR
    from optuna_adso.space import collect_observations
    from optuna_adso.study_model import read_study
    from optuna_adso.storage import fail_reason, open_storage
    from optuna_adso.workers import run_workers

    url = f"sqlite:///{tmp_path / 'crash.db'}"
    name = "crash"
    optuna.create_study(study_name=name, storage=open_storage(url), direction="minimize")
    marker = tmp_path / "killed"

    codes = run_workers(functools.partial(_worker, url, name, str(marker)), 2)
    assert codes == [-signal.SIGKILL, 0]

    victim_number, killed_at = marker.read_text().split()
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    victim = trials[int(victim_number)]

    # failed, for the stated reason, once the grace period was over: Optuna checks heartbeats
    # when a worker starts a trial, so the first trial started after the grace period must have
    # found it dead (its last heartbeat was at most HEARTBEAT_S before the kill)
    assert victim.state == TrialState.FAIL
    assert "no heartbeat" in (fail_reason(study, victim) or "")
    killed = dt.datetime.fromtimestamp(float(killed_at))
    waited = (victim.datetime_complete - killed).total_seconds()
    assert waited >= GRACE_S - HEARTBEAT_S - 0.5, waited
    grace_over = killed + dt.timedelta(seconds=GRACE_S + 2)  # SQLite keeps heartbeats to the second
    starts_after = [t.datetime_start for t in trials if t.datetime_start > grace_over]
    assert not starts_after or victim.datetime_complete <= min(starts_after), (waited, min(starts_after))
    assert waited < 60, waited

    # retried once, same (mixture, scale), linked to the original, run to the same planned stop
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.system_attrs["retry_history"] == [victim.number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    np.testing.assert_array_equal(mixture_params(retry), mixture_params(victim))
    assert retry.params["model_size"] == victim.params["model_size"]
    assert retry.user_attrs["mix"] == victim.user_attrs["mix"]
    planned = victim.system_attrs.get(STOP_STEP_ATTR)
    assert retry.system_attrs.get(STOP_STEP_ATTR) == planned
    assert retry.last_step == (planned if planned is not None else max(retry.intermediate_values))

    # nothing lost: every other trial finished; nothing left running or waiting
    others = [t for t in trials if t.number != victim.number]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in others)
    assert len([t for t in others]) >= 10
    assert sorted(t.number for t in trials) == list(range(len(trials)))

    # the dead trial's partial curve is in storage and is fed to the model
    assert sorted(victim.intermediate_values) == [100]
    data = read_study(study)
    obs = collect_observations(
        data.trials, data.spec, data.scale, target_scale=1e9, target_step=1000, maximize=False
    )
    assert np.count_nonzero(obs.trial_numbers == victim.number) == 1
    assert np.count_nonzero(obs.trial_numbers == retry.number) == len(retry.intermediate_values)
