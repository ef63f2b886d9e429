"""OptunaHub entry point: ``optunahub.load_module("samplers/adso")`` gives the ADSO sampler and pruner.

The implementation lives in the ``optuna-adso`` package (see requirements.txt); this module only
re-exports its public names, so the registry and the package never drift apart.
"""

from optuna_adso import (
    ADSOPruner,
    ADSOSampler,
    FlopsCost,
    TableCost,
    recommend,
    suggest_mixture,
    suggest_scale,
)

__all__ = ["ADSOPruner", "ADSOSampler", "FlopsCost", "TableCost", "recommend", "suggest_mixture", "suggest_scale"]
