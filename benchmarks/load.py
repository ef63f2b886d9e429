"""Load test: many concurrent workers on one PostgreSQL study; sampler and storage time per trial.

Each of ``--workers`` processes (``optuna_adso.workers.run_workers``) opens the study with
``optuna_adso.storage.open_storage`` and runs a 1-second objective (``--objective-seconds`` split
over four reports of the synthetic learning curve of tests/conftest.py) until the study holds
``--trials`` trials or ``--timeout-min`` runs out.  Measured in every worker:

- sampler time per proposal: wall time inside the sampler's hooks for one trial (its own storage
  reads included), for ADSOSampler + ADSOPruner or Optuna's GPSampler;
- storage time per trial: wall time inside storage calls made by Optuna for the trial
  (create, params, reports, heartbeats, tell), outside the sampler; and the sampler's reads apart.

    python -m benchmarks.load --sampler adso --trials 500 --workers 8 \
        --storage postgresql+psycopg2://postgres@127.0.0.1:5432/test

Writes ``<out>/<sampler>.json`` (every trial's timings) and prints a summary table.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

ROOT = Path(__file__).resolve().parents[1]
STORAGE_METHODS = (  # what Optuna's cache layer calls on an RDBStorage (optuna 5.0)
    "_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials", "_set_trial_param",
    "get_study_directions", "get_study_id_from_name", "get_study_name_from_id", "get_study_system_attrs",
    "get_study_user_attrs", "get_trial", "get_trial_id_from_study_id_trial_number", "record_heartbeat",
    "set_study_system_attr", "set_study_user_attr", "set_trial_intermediate_value", "set_trial_state_values",
    "set_trial_system_attr", "set_trial_user_attr", "get_all_trials", "get_n_trials",
)


class Clock:
    """Per-process time accounts: in the sampler, in storage (inside / outside the sampler)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_sampler = threading.local()
        self.sampler = 0.0
        self.storage_in_sampler = 0.0
        self.storage_outside = 0.0

    def timed_storage(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                with self.lock:
                    if getattr(self.in_sampler, "on", False):
                        self.storage_in_sampler += dt
                    else:
                        self.storage_outside += dt

        return wrapped

    def snapshot(self) -> tuple[float, float, float]:
        with self.lock:
            return self.sampler, self.storage_in_sampler, self.storage_outside


class TimedSampler(optuna.samplers.BaseSampler):
    """Delegates every hook to ``inner`` and adds the time spent there to the clock."""

    def __init__(self, inner: optuna.samplers.BaseSampler, clock: Clock) -> None:
        self._inner, self._clock = inner, clock

    def __getattr__(self, name: str) -> Any:  # samples_mixtures_jointly, check_scale_declaration
        return getattr(self._inner, name)

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._clock.in_sampler.on = True
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._clock.sampler += time.perf_counter() - t0
            self._clock.in_sampler.on = False

    def infer_relative_search_space(self, study, trial):
        return self._timed(self._inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._timed(self._inner.sample_relative, study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._timed(self._inner.sample_independent, study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        return self._timed(self._inner.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):
        return self._timed(self._inner.after_trial, study, trial, state, values)


def _make_sampler(kind: str) -> optuna.samplers.BaseSampler:
    import optuna_adso as adso
    from conftest import TARGET_SCALE, TARGET_STEP

    if kind == "adso":
        return adso.ADSOSampler(
            target={"model_size": TARGET_SCALE, "step": TARGET_STEP},
            cost=adso.FlopsCost(tokens_per_step=512 * 1024), seed=0,
        )
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=0)
    raise ValueError(f"--sampler must be adso or gp, got {kind!r}")


def _worker(args: dict[str, Any], index: int) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import torch

    import optuna_adso as adso
    from conftest import DOMAINS, REPORT_STEPS, SCALES, synthetic_loss
    from optuna_adso.storage import open_storage

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    clock = Clock()
    storage = open_storage(args["storage"])
    for name in STORAGE_METHODS:
        if hasattr(storage, name):
            setattr(storage, name, clock.timed_storage(getattr(storage, name)))
    sampler = TimedSampler(_make_sampler(args["sampler"]), clock)
    pruner = adso.ADSOPruner() if args["sampler"] == "adso" else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=args["study"], storage=storage, sampler=sampler, pruner=pruner)
    pause = args["objective_seconds"] / len(REPORT_STEPS)
    rows: list[dict[str, Any]] = []
    last = clock.snapshot()

    def objective(trial: optuna.Trial) -> float:
        weights = adso.suggest_mixture(trial, "mix", list(DOMAINS))
        size = adso.suggest_scale(trial, "model_size", list(SCALES))
        value = math.nan
        for step in REPORT_STEPS:
            time.sleep(pause)
            value = synthetic_loss([weights[d] for d in DOMAINS], size, step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    def account(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal last
        now = clock.snapshot()
        rows.append({
            "number": trial.number, "state": trial.state.name, "worker": index,
            "sampler_s": now[0] - last[0], "storage_in_sampler_s": now[1] - last[1],
            "storage_s": now[2] - last[2],
        })
        last = now

    stop = optuna.study.MaxTrialsCallback(args["trials"], states=None)
    t0 = time.time()
    study.optimize(objective, timeout=args["timeout_min"] * 60, callbacks=[account, stop])
    out = Path(args["out"]) / f"{args['sampler']}.worker{index}.json"
    out.write_text(json.dumps({"rows": rows, "wall_s": time.time() - t0}))


def _quantiles(x: list[float]) -> str:
    if not x:
        return "-"
    return f"{np.median(x):.3f} / {np.percentile(x, 90):.3f}"


def summarize(rows: list[dict[str, Any]], every: int = 50) -> list[str]:
    """Median / p90 per trial, over all trials and over each block of ``every`` trial numbers."""
    rows = sorted(rows, key=lambda r: r["number"])
    lines = ["| trials | sampler s/proposal (median / p90) | its storage reads s | storage s/trial |",
             "|---|---|---|---|"]
    top = max((r["number"] for r in rows), default=-1) + 1
    spans = [("all", rows)] + [
        (f"{lo}-{lo + every - 1}", [r for r in rows if lo <= r["number"] < lo + every]) for lo in range(0, top, every)
    ]
    for label, part in spans:
        if part:
            lines.append(
                f"| {label} ({len(part)}) | {_quantiles([r['sampler_s'] for r in part])} | "
                f"{_quantiles([r['storage_in_sampler_s'] for r in part])} | "
                f"{_quantiles([r['storage_s'] for r in part])} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=["adso", "gp"])
    parser.add_argument("--storage", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--objective-seconds", type=float, default=1.0)
    parser.add_argument("--timeout-min", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/results/load")
    parser.add_argument("--keep", action="store_true", help="keep the study in the database")
    parser.add_argument("--summarize", metavar="JSON", help="only print the table of a saved run")
    a = parser.parse_args(argv)
    if a.summarize:
        saved = json.loads(Path(a.summarize).read_text())
        print(f"{saved['sampler']}: {saved['trials']} trials by {saved['workers']} workers in {saved['wall_s']} s")
        print("\n".join(summarize(saved["rows"])))
        return
    if a.sampler is None:
        parser.error("--sampler is required (adso or gp)")
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from optuna_adso.storage import open_storage
    from optuna_adso.workers import run_workers

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    study = f"adso-load-{a.sampler}-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=study, storage=open_storage(a.storage), direction="minimize")
    args = {"storage": a.storage, "sampler": a.sampler, "study": study, "trials": a.trials,
            "objective_seconds": a.objective_seconds, "timeout_min": a.timeout_min, "out": str(out)}
    t0 = time.time()
    codes = run_workers(functools.partial(_worker, args), a.workers)
    wall = time.time() - t0
    rows = []
    for i in range(a.workers):
        path = out / f"{a.sampler}.worker{i}.json"
        if path.exists():
            rows += json.loads(path.read_text())["rows"]
            path.unlink()
    states = optuna.load_study(study_name=study, storage=open_storage(a.storage)).get_trials(deepcopy=False)
    summary = {
        "sampler": a.sampler, "workers": a.workers, "objective_seconds": a.objective_seconds,
        "trials": len(rows), "wall_s": round(wall, 1), "exit_codes": codes,
        "states": {s: sum(t.state.name == s for t in states) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")},
        "rows": sorted(rows, key=lambda r: r["number"]),
    }
    (out / f"{a.sampler}.json").write_text(json.dumps(summary, indent=1))
    if not a.keep:
        optuna.delete_study(study_name=study, storage=open_storage(a.storage))
    print(f"{a.sampler}: {len(rows)} trials by {a.workers} workers in {wall:.0f} s, states {summary['states']}")
    print("\n".join(summarize(rows)))


if __name__ == "__main__":
    main()
