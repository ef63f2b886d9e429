"""Optuna glue for Lightning: report by STEP, prune on every rank together, record costs.

optuna-integration's Lightning callback reports by epoch; a pre-training run has one long epoch
and the sampler models learning curves by optimizer step, so this callback reports
``trial.report(objective, step=global_step)`` after each validation.  Only rank 0 talks to the
study; its prune decision is broadcast so every rank stops at the same step.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import optuna

from optuna_adso import records
from optuna_adso.reporting import report
from optuna_adso.pretrain.module import DivergenceError


class OptunaStepCallback(L.Callback):
    """Report the validation objective at each global step; stop when the trial should prune.

    After ``fit`` returns, ``pruned_at`` is the step of the prune decision (or ``None``); the
    caller raises ``optuna.TrialPruned`` so the trial is recorded as pruned.
    """

    def __init__(self, trial: optuna.Trial | None, flops_per_token: float, n_params: int) -> None:
        self.trial = trial
        self.flops_per_token = float(flops_per_token)
        self.n_params = int(n_params)
        self.pruned_at: int | None = None
        self.history: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()

    def __getstate__(self) -> dict[str, Any]:
        # Spawned ranks (strategy="ddp_spawn") receive a handle, not the trial: a trial drags its
        # sampler along, which need not pickle; rank 0 reopens the trial from the shared storage.
        state = dict(self.__dict__)
        if self.trial is not None:
            state["trial"], state["_handle"] = None, TrialHandle(self.trial)
        return state

    def _trial(self) -> optuna.Trial | None:
        handle = getattr(self, "_handle", None)
        if self.trial is None and handle is not None:
            self.trial = handle.resolve()
        return self.trial

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """At the last step (a planned stop, or a run whose length is off the ``eval_every`` grid),
        ask Lightning to stop, which also makes it validate right here, inside ``fit``.

        Validating after ``fit`` instead would not work under ``ddp_spawn``: the ranks that hold the
        trained model are gone by then, and the step would never be reported."""
        last = trainer.max_steps
        if last is not None and last > 0 and trainer.global_step >= last:
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.global_step == 0:
            return
        step = int(trainer.global_step)
        if self.history and self.history[-1]["step"] == step:
            return  # a final validation of a step already reported
        record = self.record(trainer, pl_module)
        if not math.isfinite(record["objective"]):
            raise DivergenceError(f"validation loss is {record['objective']} at step {step}")
        prune = False
        trial = self._trial() if trainer.is_global_zero else None
        if trial is not None:
            report(trial, record["objective"], step, domains=record["val_losses"])
            write_user_attrs(trial, record, self.history)
            prune = trial.should_prune()
        prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.pruned_at = step
            trainer.should_stop = True

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        _close_spawned_process_group()

    def record(self, trainer: L.Trainer, pl_module: Any) -> dict[str, Any]:
        tokens = int(trainer.strategy.reduce(_tensor(pl_module.tokens_seen, pl_module.device), reduce_op="max"))
        record = {
            "step": int(trainer.global_step),
            "objective": float(pl_module.val_objective),
            "val_losses": {k: float(v) for k, v in pl_module.val_losses.items()},
            "tokens_seen": tokens,
            "flops": 6.0 * self.n_params * tokens,
            "model_flops": self.flops_per_token * tokens,
            "wall_seconds": time.perf_counter() - self._t0,
        }
        self.history.append(record)
        return record


class TrialHandle:
    """What another process needs to reopen a running trial: storage, study name, id, pruner."""

    def __init__(self, trial: optuna.Trial) -> None:
        storage, trial_id = records.trial_location(trial)
        if isinstance(getattr(storage, "_backend", storage), optuna.storages.InMemoryStorage):
            raise ValueError(
                "a trial trained in spawned processes (strategy='ddp_spawn') needs a storage they can "
                "reach: use an RDB storage (sqlite:///..., postgresql://...), not in-memory"
            )
        self.storage, self.study_name = storage, trial.study.study_name
        self.trial_id, self.pruner = trial_id, trial.study.pruner

    def resolve(self) -> optuna.Trial:
        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=self.pruner,
                                  sampler=optuna.samplers.RandomSampler())
        return optuna.Trial(study, self.trial_id)


def _close_spawned_process_group() -> None:
    """In a rank spawned for this run (``strategy="ddp_spawn"``), leave the process group now.

    Lightning destroys a gloo group only at interpreter exit, if at all; a rank that exits while
    the others still hold the group can abort in gloo's thread teardown ("terminate called
    without an active exception").  A barrier, then destroying the group, ends it in step.
    """
    import multiprocessing

    import torch.distributed as dist

    if multiprocessing.parent_process() is None or not (dist.is_available() and dist.is_initialized()):
        return  # the user's own process (or plain DDP's launcher): its group is not ours to end
    dist.barrier()
    dist.destroy_process_group()


def _tensor(value: float, device):
    import torch

    return torch.tensor(float(value), device=device)


def write_user_attrs(trial: optuna.Trial, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Costs and per-domain losses for the cost model and for people reading the dashboard."""
    trial.set_user_attr("val_losses", record["val_losses"])
    trial.set_user_attr("tokens_seen", record["tokens_seen"])
    trial.set_user_attr("flops", record["flops"])
    trial.set_user_attr("wall_seconds", round(record["wall_seconds"], 3))
    trial.set_user_attr("last_step", record["step"])
    trial.set_user_attr(
        "val_curve", [{"step": h["step"], "objective": h["objective"], **h["val_losses"]} for h in history]
    )
