"""The demo: a real ADSO study that pre-trains tiny Llama proxies on CPU, offline.

Four domains of real text from the Python installation (see :mod:`optuna_adso.pretrain.corpus`),
three tiny scales, 24 trials; the target is the largest proxy trained for the full plan.  It runs
in a few minutes on 2 CPU cores and prints the mixture recommended for the target.  Run it with
``python -m optuna_adso.pretrain.demo`` (``make demo``, ``adso demo``).
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import time

import optuna
import torch

import optuna_adso as adso
from optuna_adso.pretrain.corpus import build_corpus
from optuna_adso.pretrain.objective import PretrainObjective
from optuna_adso.validation import as_int

SCALES = ("tiny-32", "tiny-64", "tiny-128")
TARGET_SCALE = "tiny-128"
STEPS = 80


def make_objective(cache_dir: str = ".adso_cache", seed: int = 0, seed_per_trial: bool = False) -> PretrainObjective:
    """The demo's objective: 80 steps of 8 x 64 tokens, validation every 8 steps, on CPU."""
    return PretrainObjective(
        build_corpus(cache_dir), SCALES, steps=STEPS, eval_every=8, batch_size=8, seq_len=64,
        vocab_size=1024, max_val_blocks=8, lr=5e-3, cache_dir=cache_dir, accelerator="cpu", seed=seed,
        seed_per_trial=seed_per_trial,
    )


def run_demo(
    storage: str = "sqlite:///adso_demo.db",
    study_name: str | None = None,
    n_trials: int = 24,
    seed: int = 0,
    cache_dir: str = ".adso_cache",
    progress: bool = True,
    seed_per_trial: bool = False,
    seed_replicates: bool = True,
) -> optuna.Study:
    """Run the demo study (created or resumed in ``storage``) and return it."""
    as_int(n_trials, "n_trials", 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster than two fighting over 2 cores
    try:
        objective = make_objective(cache_dir, seed, seed_per_trial).prepare()
        target = {"model_size": objective.n_params(TARGET_SCALE), "step": STEPS}
        sampler = adso.ADSOSampler(target=target, cost=objective.cost(), seed=seed, seed_replicates=seed_replicates)
        study = optuna.create_study(
            sampler=sampler, pruner=adso.ADSOPruner(), direction="minimize", storage=storage,
            study_name=study_name or f"pretrain-demo-{int(time.time())}", load_if_exists=True,
        )
        study.optimize(objective, n_trials=n_trials, show_progress_bar=progress)
        return study
    finally:
        torch.set_num_threads(threads)


def summary(study: optuna.Study) -> str:
    """Trials by state and scale, and the compute they used."""
    states = collections.Counter(t.state.name for t in study.trials)
    scales = collections.Counter(t.user_attrs.get("scale", "?") for t in study.trials)
    flops = sum(t.user_attrs.get("flops", 0.0) for t in study.trials)
    seconds = sum(t.user_attrs.get("wall_seconds", 0.0) for t in study.trials)
    return (
        f"{len(study.trials)} trials {dict(states)}; by scale {dict(sorted(scales.items()))}; "
        f"{flops:.3g} training FLOPs, {seconds:.0f} s of training"
    )


def check_at_target(recommended: dict[str, float] | adso.Recommendation, cache_dir: str = ".adso_cache",
                    seed: int = 1, study: optuna.Study | None = None) -> str:
    """Train the target scale for the full plan on the recommended and the uniform mixture, with
    ``seed`` (a seed no run of the study used: a run with the same seed on a mixture the study
    trained replays that run, luck included, and is no new run); with a
    :class:`~optuna_adso.Recommendation`, say whether the trained value falls in its 90% interval
    for one new run, and with the ``study``, which of its runs trained the same mixture."""
    rec = recommended if isinstance(recommended, adso.Recommendation) else None
    recommended = rec.mixture if rec is not None else recommended
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        objective = make_objective(cache_dir, seed).prepare()
        uniform = dict.fromkeys(objective.names, 1.0 / len(objective.names))
        got = objective.train(recommended, TARGET_SCALE).objective
        base = objective.train(uniform, TARGET_SCALE).objective
    finally:
        torch.set_num_threads(threads)
    text = (f"check at the target ({TARGET_SCALE}, {STEPS} steps, a new run: seed {seed}): recommended mixture "
            f"{got:.4f}, uniform mixture {base:.4f} (mean held-out loss over the domains; lower is better)")
    same = _runs_of(study, recommended) if study is not None else []
    if same:
        text += "\nthe study trained this mixture at the target before: " + ", ".join(
            f"trial {t.number} (seed {t.user_attrs.get('seed', '?')}): {t.value:.4f}" for t in same)
    if rec is not None and math.isfinite(rec.mean):
        lo, hi = rec.interval(0.9, new_run=True)
        inside = "inside" if lo <= got <= hi else "OUTSIDE"
        text += f"\npredicted 90% interval for one run [{lo:.4f}, {hi:.4f}]: the new run is {inside} it"
    return text


def target_runs(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's complete runs at the target scale that recorded their mixture."""
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("scale") == TARGET_SCALE and isinstance(t.user_attrs.get("mix"), dict)]


def _runs_of(study: optuna.Study, mixture: dict[str, float]) -> list[optuna.trial.FrozenTrial]:
    """The study's complete runs at the target scale on ``mixture``."""
    return [t for t in target_runs(study)
            if all(abs(t.user_attrs["mix"].get(d, 0.0) - w) < 1e-6 for d, w in mixture.items())]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///adso_demo.db")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=".adso_cache")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-check", action="store_true", help="skip training the recommendation at the target")
    parser.add_argument("--seed-per-trial", action="store_true",
                        help="every trial's run draws its own seed (default: one seed for every run; see PretrainObjective)")
    parser.add_argument("--no-seed-replicates", action="store_true",
                        help="never repeat a mixture with a new seed (ADSOSampler(seed_replicates=False))")
    parser.add_argument("--check-seed", type=int, default=None,
                        help="seed of the check's runs (default: --seed + 1, which no run of the study used)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t0 = time.perf_counter()
    study = run_demo(args.storage, args.study_name, args.trials, args.seed, args.cache_dir, not args.no_progress,
                     args.seed_per_trial, not args.no_seed_replicates)
    best = adso.recommend(study)
    print(best)
    for note in best.notes:  # what the answer rests on: the hedge, the widening, the seed's luck
        print(f"  - {note}")
    print(summary(study))
    if not args.no_check:
        check_seed = args.seed + 1 if args.check_seed is None else args.check_seed
        print(check_at_target(best, args.cache_dir, check_seed, study))
    print(f"study '{study.study_name}' in {args.storage}; {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
