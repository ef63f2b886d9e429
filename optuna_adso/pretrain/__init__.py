"""The real objective: pre-train Hugging Face proxy LMs with Lightning on mixed data domains.

``PretrainObjective(domains=[Domain...], scales=["20M", "60M"], steps=...)`` is an Optuna
objective for :class:`~optuna_adso.ADSOSampler`; see ``docs/pretrain.md``.
"""

from optuna_adso.pretrain.callback import OptunaStepCallback
from optuna_adso.pretrain.data import DataBudgetError, Domain
from optuna_adso.pretrain.module import CausalLMModule, DivergenceError
from optuna_adso.pretrain.objective import PretrainObjective, RunResult
from optuna_adso.pretrain.scales import SCALES, Scale, get_scale

__all__ = [
    "SCALES",
    "CausalLMModule",
    "DataBudgetError",
    "DivergenceError",
    "Domain",
    "OptunaStepCallback",
    "PretrainObjective",
    "RunResult",
    "Scale",
    "get_scale",
]
