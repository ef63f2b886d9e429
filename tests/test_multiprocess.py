"""Two OS processes share one SQLite study; a third, fresh process asks for the recommendation.

Everything ADSO needs lives in the study's storage, so workers in separate processes cooperate
without sharing any Python state, and recommend() works from a process that never saw a sampler.
The workers open the study exactly as the README does (ADSOSampler with a FlopsCost target,
ADSOPruner, an SQLite storage, load_if_exists).  Run as a script, this file is the worker: ``python test_multiprocess.py worker|recommend ...``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna

N_PER_WORKER = 8
HERE = Path(__file__).resolve().parent
TIMEOUT_S = 300


def _readme_sampler():
    import optuna_adso as adso
    from conftest import TARGET_SCALE, TARGET_STEP

    return adso.ADSOSampler(
        target={"model_size": TARGET_SCALE, "step": TARGET_STEP},
        cost=adso.FlopsCost(tokens_per_step=512 * 1024),
        seed=0,
    )


def _worker(storage: str, name: str, n_trials: int, ready: Path, go: Path) -> None:
    import optuna_adso as adso
    from conftest import make_objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(  # the README's call, verbatim in shape
        sampler=_readme_sampler(),
        pruner=adso.ADSOPruner(),
        direction="minimize",
        storage=storage,
        study_name=name,
        load_if_exists=True,
    )
    ready.touch()
    deadline = time.time() + 120
    while not go.exists():  # start both workers at once, after their imports
        if time.time() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.05)
    study.optimize(make_objective(), n_trials=n_trials)


def _recommend(storage: str, name: str) -> None:
    import optuna_adso as adso

    study = optuna.load_study(study_name=name, storage=storage)  # no sampler: TPE by default
    assert not isinstance(study.sampler, adso.ADSOSampler)
    rec = adso.recommend(study)
    print(json.dumps({"mixture": rec.mixture, "mean": rec.mean, "std": rec.std,
                      "flops_spent": rec.flops_spent, "target": rec.target, "n_trials": rec.n_trials}))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=str(HERE.parent),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_share_one_sqlite_study_and_a_fresh_process_recommends(tmp_path):
    import optuna_adso as adso
    from conftest import DOMAINS, mixture_params

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    name = "mix"
    optuna.create_study(study_name=name, storage=storage, direction="minimize")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [_spawn("worker", storage, name, str(N_PER_WORKER), str(r), str(go)) for r in ready]
    try:
        deadline = time.time() + 120
        while not all(r.exists() for r in ready) and all(p.poll() is None for p in procs):
            assert time.time() < deadline, "workers never got ready"
            time.sleep(0.05)
        go.touch()
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 * N_PER_WORKER
    assert sorted(t.number for t in trials) == list(range(2 * N_PER_WORKER))
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    params = np.array([mixture_params(t) for t in trials])
    np.testing.assert_allclose(params.sum(axis=1), 1.0, atol=1e-12)
    # Proposals are (mixture, scale): re-running a tried mixture at another scale later is by
    # design (a cheap look first, then the target).  Trials that ran at the same time, i.e. were
    # proposed while the other was pending or being proposed, must differ.
    duplicates = []
    for i, a in enumerate(trials):
        for b in trials[i + 1 :]:
            if a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete:
                same_mix = np.allclose(mixture_params(a), mixture_params(b), atol=1e-12)
                same_scale = a.params["model_size"] == b.params["model_size"]
                if same_mix and same_scale:
                    duplicates.append((a.number, b.number, mixture_params(a)))
    assert not duplicates, duplicates
    # the workers overlapped in time: model-based trials were proposed while others were running
    starts = sorted(t.datetime_start for t in trials)
    ends = sorted(t.datetime_complete for t in trials)
    assert any(s < e for s, e in zip(starts[1:], ends[:-1]))

    # recommend() in a fresh process that never constructed a sampler
    p = _spawn("recommend", storage, name)
    out, err = p.communicate(timeout=TIMEOUT_S)
    assert p.returncode == 0, err[-3000:]
    fresh = json.loads(out.strip().splitlines()[-1])
    assert list(fresh["mixture"]) == list(DOMAINS)
    w = np.array(list(fresh["mixture"].values()))
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
    assert math.isfinite(fresh["mean"]) and math.isfinite(fresh["std"])
    assert fresh["n_trials"] == 2 * N_PER_WORKER
    assert fresh["target"] == {"step": 1000.0, "model_size": 1e9}
    # ... and it answers exactly what a process holding the original sampler answers
    here = adso.recommend(optuna.load_study(study_name=name, storage=storage, sampler=_readme_sampler()))
    np.testing.assert_allclose(w, [here.mixture[d] for d in DOMAINS], atol=1e-9)
    assert fresh["mean"] == pytest_approx(here.mean)
    assert fresh["flops_spent"] == pytest_approx(here.flops_spent)
    expected = sum(6.0 * t.params["model_size"] * 512 * 1024 * t.last_step for t in trials)
    assert here.flops_spent == pytest_approx(expected)


def pytest_approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-12)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    if sys.argv[1] == "worker":
        _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]), Path(sys.argv[6]))
    elif sys.argv[1] == "recommend":
        _recommend(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
