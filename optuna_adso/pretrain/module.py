"""The LightningModule: a Hugging Face causal LM trained with AdamW, warmup + cosine.

The learning-rate schedule spans the PLANNED number of steps, so a run stopped early (pruned) is
exactly the beginning of the full run: its partial learning curve is what the sampler models.
Validation reports each domain's held-out loss; the objective is a weighted mean of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import lightning as L
import torch

from optuna_adso.pretrain.scales import Scale


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CausalLMModule(L.LightningModule):
    """Train ``scale`` on mixed blocks; validate per domain; objective = weighted mean of domain losses."""

    def __init__(
        self,
        scale: Scale,
        vocab_size: int,
        seq_len: int,
        domain_names: Sequence[str],
        target_weights: Mapping[str, float],
        total_steps: int,
        lr: float = 3e-3,
        weight_decay: float = 0.1,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.95),
        compile: bool = False,
        attn_implementation: str = "sdpa",
        nan_check_every: int = 1,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
        if not (0 <= warmup_steps < total_steps):
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps!r}")
        unknown = sorted(set(target_weights) - set(domain_names))
        if unknown or not target_weights:
            raise ValueError(f"target weights name unknown domains {unknown} (domains: {list(domain_names)})")
        self.scale, self.vocab_size, self.seq_len = scale, vocab_size, seq_len
        self.domain_names = list(domain_names)
        total = sum(target_weights.values())
        self.target_weights = {k: v / total for k, v in target_weights.items()}
        self.total_steps, self.lr, self.weight_decay = total_steps, lr, weight_decay
        self.warmup_steps, self.min_lr_ratio, self.betas = warmup_steps, min_lr_ratio, betas
        self.compile, self.attn_implementation = compile, attn_implementation
        self.nan_check_every = nan_check_every
        self.fused = fused
        self.model: torch.nn.Module | None = None
        self.val_losses: dict[str, float] = {}
        self.val_objective: float = math.nan
        self.tokens_seen = 0
        self._val_sums: torch.Tensor | None = None
        self._nonfinite: torch.Tensor | None = None

    def configure_model(self) -> None:
        """Built here, not in ``__init__``, so FSDP can shard it as it is created."""
        if self.model is not None:
            return
        model = self.scale.build(self.vocab_size, self.seq_len, self.attn_implementation)
        self.model = torch.compile(model) if self.compile else model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, labels=input_ids).loss

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        ids = batch["input_ids"]
        loss = self(ids)
        self.tokens_seen += ids.numel() * self.trainer.world_size
        # NaN/inf is flagged on the device and read back every ``nan_check_every`` micro-batches:
        # a host sync per step would stall the GPU's queue for nothing
        bad = ~torch.isfinite(loss.detach())
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        if self.nan_check_every and (batch_idx + 1) % self.nan_check_every == 0:
            flag = self._nonfinite.float()
            if self.trainer.world_size > 1:  # every rank checks at the same batch, so all stop together
                flag = self.trainer.strategy.reduce(flag, reduce_op="max")
            if bool(flag):
                raise DivergenceError(
                    f"training loss became non-finite by step {self.trainer.global_step} (last: {loss.item()})"
                )
        if self.trainer.logger is not None:  # only when the user configured one (trainer_kwargs)
            self.log("train/loss", loss.detach())
        return loss

    def configure_optimizers(self):
        decay = [p for p in self.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in self.parameters() if p.requires_grad and p.ndim < 2]
        # fused AdamW (one kernel for all parameters) on GPU, except under a float16 GradScaler:
        # there the gradients must be unscaled before clipping, which a fused step does too late
        fused = self.fused if self.fused is not None else self.device.type == "cuda" and not self._grad_scaler()
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr, betas=self.betas, fused=fused,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, self.warmup_steps, self.total_steps, self.min_lr_ratio)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip here when no GradScaler is in use (fp32, bf16-mixed): the gradients are already true.

        Lightning refuses to clip for a fused optimizer under any mixed precision, bf16 included,
        because with a float16 GradScaler the gradients would still be scaled at this point.
        """
        if not gradient_clip_val or self._grad_scaler():
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(self.parameters(), gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def _grad_scaler(self) -> bool:
        """Whether the Trainer scales the loss (float16 mixed precision); False outside a Trainer."""
        plugin = getattr(self._trainer, "precision_plugin", None)
        return getattr(plugin, "scaler", None) is not None

    # -- validation: one dataloader per domain --------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(len(self.domain_names), 2, device=self.device, dtype=torch.float64)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        ids = batch["input_ids"]
        loss = self(ids)
        n = ids.shape[0] * (ids.shape[1] - 1)  # predicted tokens
        self._val_sums[dataloader_idx, 0] += loss.detach().double() * n
        self._val_sums[dataloader_idx, 1] += n

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        per = (sums[:, 0] / sums[:, 1].clamp_min(1)).tolist()
        self.val_losses = dict(zip(self.domain_names, per))
        self.val_objective = float(sum(w * self.val_losses[d] for d, w in self.target_weights.items()))
        # logged also without a logger: Lightning hands callback_metrics back from spawned ranks
        metrics = {f"val/{k}": v for k, v in {**self.val_losses, "objective": self.val_objective}.items()}
        self.log_dict({**metrics, "adso/step": float(self.trainer.global_step)}, sync_dist=False)
