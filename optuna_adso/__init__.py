"""optuna-adso: find the pre-training data mixture that is best at a target model scale.

Multi-fidelity, multi-scale Bayesian optimization (ADSO / MFMS-BO, arXiv 2503.21023) as an
Optuna sampler and pruner.

The public names load on first use: a training process that imports
``optuna_adso.pretrain`` (or any one module) gets what it needs, not the GP stack, plotly and
the dashboard with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time, __getattr__ below
    from optuna_adso import visualization
    from optuna_adso.budget import FlopsBudget
    from optuna_adso.cost import FlopsCost, TableCost
    from optuna_adso.export import export_mixture
    from optuna_adso.objectives import (
        DomainConstraint,
        DomainLoss,
        MeanLoss,
        MixtureObjective,
        WeightedLoss,
        WorstExcessLoss,
    )
    from optuna_adso.pareto import FrontPoint, pareto_front
    from optuna_adso.prediction import Prediction, predict, predict_domains
    from optuna_adso.pruner import ADSOPruner
    from optuna_adso.recommendation import Recommendation, recommend
    from optuna_adso.reporting import report
    from optuna_adso.runs_io import ImportReport, add_runs, export_runs
    from optuna_adso.sampler import ADSOSampler
    from optuna_adso.seed_replicates import trial_seed
    from optuna_adso.space import suggest_mixture, suggest_scale
    from optuna_adso.storage import open_storage

_PUBLIC = {
    "ADSOPruner": "optuna_adso.pruner",
    "ADSOSampler": "optuna_adso.sampler",
    "DomainConstraint": "optuna_adso.objectives",
    "DomainLoss": "optuna_adso.objectives",
    "MeanLoss": "optuna_adso.objectives",
    "MixtureObjective": "optuna_adso.objectives",
    "WeightedLoss": "optuna_adso.objectives",
    "WorstExcessLoss": "optuna_adso.objectives",
    "FlopsBudget": "optuna_adso.budget",
    "FlopsCost": "optuna_adso.cost",
    "FrontPoint": "optuna_adso.pareto",
    "ImportReport": "optuna_adso.runs_io",
    "Recommendation": "optuna_adso.recommendation",
    "Prediction": "optuna_adso.prediction",
    "TableCost": "optuna_adso.cost",
    "add_runs": "optuna_adso.runs_io",
    "export_mixture": "optuna_adso.export",
    "export_runs": "optuna_adso.runs_io",
    "open_storage": "optuna_adso.storage",
    "pareto_front": "optuna_adso.pareto",
    "predict": "optuna_adso.prediction",
    "predict_domains": "optuna_adso.prediction",
    "recommend": "optuna_adso.recommendation",
    "report": "optuna_adso.reporting",
    "suggest_mixture": "optuna_adso.space",
    "suggest_scale": "optuna_adso.space",
    "trial_seed": "optuna_adso.seed_replicates",
}

__all__ = sorted([*_PUBLIC, "visualization"])
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "visualization":
        return importlib.import_module("optuna_adso.visualization")
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'optuna_adso' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
