"""The simulated demo study: ADSO on a simulated pre-training world, on embedded SQLite storage.

``train(weights, size, max_steps)`` stands in for a real pre-training loop (the Lightning
objective replaces it): it yields ``(step, validation loss)`` of a model of ``size`` parameters
trained on the mixture ``weights``, from a seeded synthetic world whose best mixture moves with
scale.  It ships in the package so that ``adso demo --simulated`` (or
``python -m optuna_adso.simulated_demo``, ``make demo-sim``) runs from an installed wheel.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator, Mapping

import numpy as np
import optuna

import optuna_adso as adso
from optuna_adso.simulated import SimulatedWorld

DOMAINS = ["wikipedia", "stackexchange", "github", "arxiv", "book"]
WORLD = SimulatedWorld(seed=3, k=len(DOMAINS))
REPORT_EVERY = 1000


def train(weights: Mapping[str, float], size: float, max_steps: int) -> Iterator[tuple[int, float]]:
    """Yield (step, val_loss) every REPORT_EVERY steps of a simulated run."""
    w = np.array([weights[d] for d in DOMAINS])
    for step in range(REPORT_EVERY, max_steps + 1, REPORT_EVERY):
        yield step, float(WORLD.loss(w, size, step))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--storage", default="sqlite:///adso_demo.db")
    parser.add_argument("--study-name", default=f"demo-{int(time.time())}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def objective(trial: optuna.Trial) -> float:
        weights = adso.suggest_mixture(trial, "mix", DOMAINS)
        size = adso.suggest_scale(trial, "model_size", [20e6, 60e6, 150e6, 300e6])
        for step, val_loss in train(weights, size, max_steps=20_000):
            trial.report(val_loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return val_loss

    target = {"model_size": 1e9, "step": 20_000}
    sampler = adso.ADSOSampler(target=target, cost=adso.FlopsCost(tokens_per_step=512 * 1024), seed=args.seed)
    study = optuna.create_study(
        sampler=sampler, pruner=adso.ADSOPruner(), direction="minimize",
        storage=args.storage, study_name=args.study_name, load_if_exists=True,
    )
    study.optimize(objective, n_trials=args.trials, show_progress_bar=True)
    best = adso.recommend(study)
    print(best)
    full_runs = best.flops_spent / sampler.target_cost
    w = np.array([best.mixture[d] for d in DOMAINS])
    _, true_best = WORLD.best_mixture(1e9, 20_000)
    uniform = WORLD.loss(np.full(len(DOMAINS), 1 / len(DOMAINS)), 1e9, 20_000)
    got = WORLD.loss(w, 1e9, 20_000)
    print(
        f"spent {full_runs:.2f} full 1B runs of FLOPs; true loss at 1B of the recommendation "
        f"{float(got):.4f} (uniform mixture {float(uniform):.4f}, best possible {float(true_best):.4f}: "
        f"{100 * float((got - true_best) / (uniform - true_best)):.0f}% of the gap left); "
        f"study '{args.study_name}' in {args.storage}"
    )


if __name__ == "__main__":
    main()
