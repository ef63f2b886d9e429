"""Four worker processes x 30 trials share one study on the real PostgreSQL and MariaDB servers.

Each worker is what ``adso optimize --storage URL --workers 4`` starts: a spawned process
(:func:`optuna_adso.workers.run_workers`) that opens the storage with :func:`open_storage`
(pre-ping, heartbeats, retries) and runs ``study.optimize(n_trials=30)`` with ADSOSampler and
ADSOPruner on the synthetic objective of conftest.py.  One trial per worker raises on purpose:
it must be recorded FAIL with its reason while its worker and the others go on.  The servers are
the ones ``scripts/ensure_services.sh`` starts (``make test`` runs it); a test skips, saying
why, when its server is unreachable.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_adso.storage import fail_reason, open_storage, record_failures
from optuna_adso.workers import run_workers

HERE = Path(__file__).resolve().parent
N_WORKERS = 4
N_PER_WORKER = 30
FAILING_TRIAL_OF_EACH_WORKER = 7  # the 7th trial a worker runs raises (then the worker goes on)
SERVERS = {
    "postgresql": "postgresql+psycopg2://{user}@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root:@127.0.0.1:3306/test",
}


def _server_url(kind: str) -> str:
    """A URL that connects, or a skip saying why not."""
    import sqlalchemy

    users = ("postgres", "root") if kind == "postgresql" else ("root",)
    errors = []
    for user in users:
        url = SERVERS[kind].format(user=user)
        try:
            engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            engine.dispose()
            return url
        except Exception as exc:  # noqa: BLE001 - any reason to be unreachable skips
            errors.append(f"{user}: {str(exc).splitlines()[0]}")
    pytest.skip(f"{kind} server not reachable at 127.0.0.1 ({'; '.join(errors)}); run scripts/ensure_services.sh")


def _sampler():
    from conftest import make_sampler

    # Cheap proposals so that 120 trials fit the CI budget on 2 cores; the protocol is the same.
    return make_sampler(seed=0, n_startup_trials=4, n_candidates=128)


def _worker(url: str, name: str, index: int) -> None:
    """One worker process: open the study the way the CLI does and run its 30 trials."""
    sys.path.insert(0, str(HERE))
    import torch

    import optuna_adso as adso
    from conftest import make_objective

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url, heartbeat_interval=5, grace_period=30)
    study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(), pruner=adso.ADSOPruner())
    inner = make_objective()
    count = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        count["n"] += 1
        if count["n"] == FAILING_TRIAL_OF_EACH_WORKER:
            adso.suggest_mixture(trial, "mix", ["web", "code", "books"])
            trial.report(9.0, 100)  # a partial curve, then the "crash" of the training code
            raise RuntimeError(f"worker {index}: simulated loss spike")
        return inner(trial)

    study.optimize(record_failures(objective), n_trials=N_PER_WORKER, catch=(RuntimeError,))


def _fresh_recommend(url: str, name: str) -> dict:
    code = (
        "import json, sys, optuna, optuna_adso as adso\n"
        "study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])\n"
        "r = adso.recommend(study)\n"
        "print(json.dumps({'mixture': r.mixture, 'mean': r.mean, 'std': r.std, 'n_trials': r.n_trials,"
        " 'target': r.target}))\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", code, url, name], capture_output=True, text=True, timeout=300,
        cwd=str(HERE.parent), env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _proposal_key(t: optuna.trial.FrozenTrial) -> tuple:
    from conftest import mixture_params

    return (tuple(np.round(mixture_params(t), 7)), t.params["model_size"])


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_four_workers_thirty_trials_each_on_a_real_server(kind):
    url = _server_url(kind)
    name = f"adso-dist-{kind}-{uuid.uuid4().hex[:10]}"
    optuna.create_study(study_name=name, storage=open_storage(url), direction="minimize")
    try:
        codes = run_workers(functools.partial(_worker, url, name), N_WORKERS)
        assert codes == [0] * N_WORKERS

        study = optuna.load_study(study_name=name, storage=open_storage(url))
        trials = study.get_trials(deepcopy=False)
        # exact count: nothing lost, nothing run twice
        assert len(trials) == N_WORKERS * N_PER_WORKER
        assert sorted(t.number for t in trials) == list(range(N_WORKERS * N_PER_WORKER))
        states = {s: [t for t in trials if t.state == s] for s in optuna.trial.TrialState}
        done = states[optuna.trial.TrialState.COMPLETE] + states[optuna.trial.TrialState.PRUNED]
        failed = states[optuna.trial.TrialState.FAIL]
        assert len(done) + len(failed) == len(trials), {s.name: len(v) for s, v in states.items()}
        assert len(failed) == N_WORKERS  # one per worker, on purpose
        for t in failed:
            assert "simulated loss spike" in (fail_reason(study, t) or ""), t.system_attrs
            assert t.intermediate_values == {100: 9.0}  # its partial curve is kept
        for t in done:
            assert math.isfinite(t.value if t.value is not None else t.intermediate_values[t.last_step])
            assert abs(sum(t.user_attrs["mix"].values()) - 1.0) < 1e-9

        # no two trials share a proposal (mixture and scale)
        by_key: dict[tuple, list[int]] = {}
        for t in done:
            by_key.setdefault(_proposal_key(t), []).append(t.number)
        shared = {k: v for k, v in by_key.items() if len(v) > 1}
        details = [
            (nums, [(trials[n].datetime_start.isoformat(), trials[n].datetime_complete.isoformat()) for n in nums], k)
            for k, nums in shared.items()
        ]
        assert not shared, f"trials sharing a (mixture, scale) proposal: {details}"

        # the workers really ran at the same time
        starts = sorted(t.datetime_start for t in trials)
        ends = sorted(t.datetime_complete for t in trials)
        assert sum(s < e for s, e in zip(starts[1:], ends[:-1])) >= N_PER_WORKER

        fresh = _fresh_recommend(url, name)
        w = np.array(list(fresh["mixture"].values()))
        assert list(fresh["mixture"]) == ["web", "code", "books"]
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
        assert math.isfinite(fresh["mean"]) and math.isfinite(fresh["std"])
        assert fresh["n_trials"] == N_WORKERS * N_PER_WORKER
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))


def _report_env(out_dir: str, index: int) -> None:
    """A worker that writes what it sees; worker 1 raises, to show the others are not stopped."""
    Path(out_dir, f"w{index}").write_text(
        f"{os.environ.get('CUDA_VISIBLE_DEVICES')} {os.environ.get('ADSO_WORKER_INDEX')}"
    )
    if index == 1:
        raise RuntimeError("worker 1 breaks")


def test_run_workers_pins_one_gpu_per_worker_and_survives_a_failing_worker(tmp_path):
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    codes = run_workers(functools.partial(_report_env, str(tmp_path)), 3, gpus=[4, 7])
    assert codes == [0, 1, 0]
    seen = [Path(tmp_path, f"w{i}").read_text() for i in range(3)]
    assert seen == ["4 0", "7 1", "4 2"]  # round-robin over the given GPUs
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before  # the parent's environment is restored
