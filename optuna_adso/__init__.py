"""optuna-adso: find the pre-training data mixture that is best at a target model scale.

Multi-fidelity, multi-scale Bayesian optimization (ADSO / MFMS-BO, arXiv 2503.21023) as an
Optuna sampler and pruner.
"""

from optuna_adso import visualization
from optuna_adso.budget import FlopsBudget
from optuna_adso.cost import FlopsCost, TableCost
from optuna_adso.export import export_mixture
from optuna_adso.pruner import ADSOPruner
from optuna_adso.recommend import Recommendation, recommend
from optuna_adso.sampler import ADSOSampler
from optuna_adso.space import suggest_mixture, suggest_scale
from optuna_adso.storage import open_storage

__all__ = [
    "ADSOPruner",
    "ADSOSampler",
    "FlopsBudget",
    "FlopsCost",
    "Recommendation",
    "TableCost",
    "export_mixture",
    "open_storage",
    "recommend",
    "suggest_mixture",
    "suggest_scale",
    "visualization",
]
__version__ = "0.1.0"
