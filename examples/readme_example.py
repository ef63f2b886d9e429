"""The README's minimal example, verbatim (tests/test_readme_example.py keeps them equal)."""

import optuna
import optuna_adso as adso
from optuna_adso.simulated_demo import DOMAINS, train  # a simulated training loop; yours goes here

def objective(trial: optuna.Trial) -> float:
    weights = adso.suggest_mixture(trial, "mix", DOMAINS)          # dict domain -> weight, sums to 1
    size = adso.suggest_scale(trial, "model_size", [20e6, 60e6, 150e6, 300e6])  # a fidelity
    for step, val_loss in train(weights, size, max_steps=20_000):  # the user's loop, or ours
        trial.report(val_loss, step)                               # steps are a fidelity too
        if trial.should_prune():
            raise optuna.TrialPruned()
    return val_loss

sampler = adso.ADSOSampler(
    target={"model_size": 1e9, "step": 20_000},   # where the mixture will be used; may lie beyond
    cost=adso.FlopsCost(tokens_per_step=512 * 1024),  # what a (scale, step) costs; or any callable
    seed=0,
)
study = optuna.create_study(sampler=sampler, pruner=adso.ADSOPruner(), direction="minimize",
                            storage="sqlite:///mixtures.db", study_name="mix", load_if_exists=True)
study.optimize(objective, n_trials=100)
best = adso.recommend(study)   # mixture predicted best AT THE TARGET, with mean and uncertainty
print(best)
