"""``PretrainObjective``: an Optuna objective that pre-trains a proxy LM on the trial's mixture.

It declares the mixture and the scale (with the scales' exact parameter counts), trains with the
Lightning module and callback of this package, reports validation loss by step, honours pruning,
and returns the final validation objective.  A run that diverges or runs out of memory ends as a
FAILED trial (the objective returns NaN, which Optuna records as a failure) with the reason in the
trial's user attribute ``failure_reason``, and the study goes on.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import optuna
import torch
from torch.utils.data import DataLoader

from optuna_adso import records
from optuna_adso.cost import FlopsCost
from optuna_adso.pretrain.callback import OptunaStepCallback
from optuna_adso.pretrain.data import (
    DataBudgetError,
    Domain,
    HeldOutDataset,
    HeldOutSplit,
    MixtureDataset,
    PackedDomain,
    pack_domain,
    plan_mixture,
)
from optuna_adso.pretrain.module import CausalLMModule, DivergenceError
from optuna_adso.pretrain.scales import Scale, get_scale
from optuna_adso.pretrain.tokenizer import TextTokenizer, resolve_tokenizer
from optuna_adso.seed_replicates import run_seed, trial_seed
from optuna_adso.space import suggest_mixture, suggest_scale
from optuna_adso.validation import as_int

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one training run produced."""

    objective: float
    val_losses: dict[str, float]
    pruned_at: int | None
    history: list[dict[str, Any]] = field(default_factory=list)
    n_params: int = 0
    wall_seconds: float = 0.0


class PretrainObjective:
    """Pre-train a proxy causal LM on the trial's data mixture; return held-out loss.

    Args:
        domains: the :class:`Domain` sources (at least two, unique names).
        scales: named scales (``"20M"``, ``"tiny-64"``...), :class:`Scale` objects or dicts.
        steps: planned optimizer steps of a full run (the sampler's target step); the schedule
            spans them even when a run is pruned earlier.
        batch_size, accumulate, seq_len: micro-batch, gradient accumulation and block length;
            tokens per step = batch_size x accumulate x seq_len x number of devices.
        target: which held-out losses the objective averages: ``"mean"`` over domains, a list
            of domain names, or ``{domain: weight}``.
        eval_every: validate (and report to Optuna) every this many optimizer steps.
        val_fraction, max_val_blocks: each domain's held-out share of blocks and its cap (the
            held-out blocks are spread evenly over the domain).
        max_epochs: repetition cap; a mixture needing more repetitions of a domain is refused
            before training (and the sampler is told the cap through ``suggest_mixture``).
        tokenizer: ``None`` (offline byte-level BPE trained on the domains, cached), a Hugging
            Face tokenizer, or a name/path for ``AutoTokenizer``.
        accelerator, devices, strategy, precision, compile: Lightning settings; ``precision``
            and ``compile`` default to bf16-mixed and ``torch.compile`` on GPU, fp32 and eager
            on CPU.  ``strategy`` ("ddp", "fsdp", a Strategy) is passed to the Trainer.
        nan_check_every: read the device-side NaN/inf flag every this many micro-batches
            (default 1 on CPU, 10 on GPU, where each read is a host sync).
        seed, seed_per_trial: by default every run uses ``seed`` for its data order and
            initialization: common random numbers, so mixtures are compared on the same luck and
            their differences are measured with less noise.  That luck is then part of every value,
            a smooth function of the mixture shared by every scale, which no model can tell from
            the mixture's own effect and which a run with another seed (the target run) does not
            have.  ``seed_per_trial=True`` draws each trial's seed from ``(seed, trial number)``
            (:func:`run_seed`): independent luck, which the sampler models as noise; a trial run
            again is the same run.  On the demo (24 trials; ``benchmarks/demo_calibration.py``,
            four new seeds a mixture), one seed gave a recommendation whose new runs averaged
            5.857 against the uniform mixture's 5.933; a seed per trial gave 5.945.  With one
            seed, ADSOSampler schedules a few *seed replicates* (a tried mixture again with a new
            seed, :func:`~optuna_adso.seed_replicates.trial_seed`) to measure the luck that seed
            shares, and widens its intervals by it (:mod:`optuna_adso.seed_replicates`).  A run
            without a trial (:meth:`train`) uses ``seed``.
    """

    def __init__(
        self,
        domains: Sequence[Domain],
        scales: Sequence[str | Scale | dict],
        *,
        steps: int,
        batch_size: int = 8,
        seq_len: int = 128,
        accumulate: int = 1,
        target: str | Sequence[str] | Mapping[str, float] = "mean",
        eval_every: int | None = None,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.05,
        max_val_blocks: int = 64,
        max_epochs: float = 4.0,
        lr: float = 3e-3,
        weight_decay: float = 0.1,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.1,
        grad_clip: float | None = 1.0,
        arch: str | None = None,
        tokenizer: Any = None,
        vocab_size: int = 8192,
        cache_dir: str | os.PathLike = ".adso_cache",
        accelerator: str = "auto",
        devices: int | str = 1,
        strategy: Any = "auto",
        precision: str | None = None,
        compile: bool | None = None,
        nan_check_every: int | None = None,
        seed: int = 0,
        seed_per_trial: bool = False,
        mixture_name: str = "mix",
        scale_name: str = "model_size",
        trainer_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.domains = list(domains)
        if len(self.domains) < 2 or not all(isinstance(d, Domain) for d in self.domains):
            raise ValueError(f"domains must be a list of at least two Domain objects, got {domains!r}")
        self.names = [d.name for d in self.domains]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"domain names must be unique, got {self.names}")
        self.scales = [get_scale(s, arch) for s in scales]
        if not self.scales:
            raise ValueError("scales must name at least one scale")
        for what, value in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len), ("accumulate", accumulate)):
            as_int(value, what, 1)
        self.steps, self.batch_size, self.seq_len, self.accumulate = steps, batch_size, seq_len, accumulate
        self.eval_every = min(steps, eval_every or max(1, steps // 10))
        self.eval_batch_size = eval_batch_size or batch_size
        if not (0.0 < val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        self.val_fraction, self.max_val_blocks = val_fraction, max_val_blocks
        if not (math.isfinite(max_epochs) and max_epochs > 0):
            raise ValueError(f"max_epochs must be a positive number, got {max_epochs!r}")
        self.max_epochs = float(max_epochs)
        self.target_weights = _target_weights(target, self.names)
        self.lr, self.weight_decay, self.min_lr_ratio, self.grad_clip = lr, weight_decay, min_lr_ratio, grad_clip
        self.warmup_steps = min(steps - 1, int(round(warmup_fraction * steps)))
        self.tokenizer_spec, self.vocab_size = tokenizer, vocab_size
        self.cache_dir = Path(cache_dir)
        self.accelerator, self.devices, self.strategy = accelerator, devices, strategy
        on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
        self.precision = precision or ("bf16-mixed" if on_gpu else "32-true")
        self.compile = on_gpu if compile is None else bool(compile)
        self.nan_check_every = nan_check_every or (10 if on_gpu else 1)
        self.seed, self.mixture_name, self.scale_name = seed, mixture_name, scale_name
        self.seed_per_trial = bool(seed_per_trial)
        self.trainer_kwargs = dict(trainer_kwargs or {})
        self.tokenizer: TextTokenizer | None = None
        self.packed: list[PackedDomain] = []
        self.splits: list[HeldOutSplit] = []

    # -- preparation (once per process; the token cache makes it cheap for later processes) -----
    def prepare(self) -> PretrainObjective:
        """Train/load the tokenizer, tokenize/memory-map every domain, check data budgets."""
        if self.tokenizer is not None:
            return self
        tok = resolve_tokenizer(self.tokenizer_spec, self.domains, self.cache_dir, self.vocab_size)
        packed = [pack_domain(d, tok, self.cache_dir) for d in self.domains]
        splits = []
        for p in packed:
            n = p.n_blocks(self.seq_len)
            if n < 2:
                raise DataBudgetError(
                    f"domain {p.name!r} has {p.n_tokens} tokens: fewer than 2 blocks of seq_len={self.seq_len} "
                    "(one held out, one to train on)"
                )
            splits.append(HeldOutSplit(n, min(self.max_val_blocks, max(1, int(n * self.val_fraction)))))
        self.tokenizer, self.packed, self.splits = tok, packed, splits
        counts = [self.n_params(s) for s in self.scales]
        if len(set(counts)) != len(counts):
            raise ValueError(f"scales must differ in parameter count, got {dict(zip([s.name for s in self.scales], counts))}")
        return self

    @property
    def world_size(self) -> int:
        return self.devices if isinstance(self.devices, int) and self.devices > 0 else max(1, torch.cuda.device_count())

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.accumulate * self.seq_len * self.world_size

    def n_params(self, scale: str | Scale) -> int:
        """Exact parameter count of a scale for this objective's vocabulary and sequence length."""
        self.prepare()
        return get_scale(scale).n_params(self.tokenizer.vocab_size, self.seq_len)

    def scale_choices(self) -> dict[str, int]:
        return {s.name: self.n_params(s) for s in self.scales}

    def cost(self) -> FlopsCost:
        """The matching cost model: 6 x parameters x tokens, with this run's tokens per step."""
        return FlopsCost(tokens_per_step=self.tokens_per_step)

    def train_blocks(self) -> dict[str, int]:
        self.prepare()
        return {p.name: sp.n_train for p, sp in zip(self.packed, self.splits)}

    def available_tokens(self) -> dict[str, float]:
        """Train tokens per domain, one block short so rounding a weight up never exceeds the cap."""
        return {n: max(0.0, b - 1.0 / self.max_epochs) * self.seq_len for n, b in self.train_blocks().items()}

    # -- the objective --------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> float:
        if trial.study.direction != optuna.study.StudyDirection.MINIMIZE:
            raise ValueError("PretrainObjective returns a held-out loss: create the study with direction='minimize'")
        self.prepare()
        weights = suggest_mixture(
            trial, self.mixture_name, self.names, available_tokens=self.available_tokens(),
            max_epochs=self.max_epochs, total_tokens=float(self.steps * self.tokens_per_step),
        )
        choices = self.scale_choices()
        size = suggest_scale(trial, self.scale_name, sorted(choices.values()))
        scale = next(s for s in self.scales if choices[s.name] == int(size))
        trial.set_user_attr("scale", scale.name)
        try:
            result = self.train(weights, scale, trial, steps=planned_stop(trial, self.steps))
        except Exception as exc:  # noqa: BLE001 - only divergence and OOM are caught, see _is_failure
            if not _is_failure(exc):
                raise
            reason = _failure_reason(exc)
            trial.set_user_attr("failure_reason", reason[:500])
            log.warning("trial %d failed: %s", trial.number, reason)
            _free_memory()
            return float("nan")  # Optuna records a NaN objective as a FAILED trial and goes on
        if result.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at step {result.pruned_at}")
        return result.objective

    def train(self, weights: Mapping[str, float], scale: str | Scale, trial: optuna.Trial | None = None,
              steps: int | None = None) -> RunResult:
        """One run on ``weights`` at ``scale``; usable without Optuna (``trial=None``).

        ``steps`` stops the run early without changing its schedule (default: the full plan).
        """
        self.prepare()
        scale = get_scale(scale)
        stop = self.steps if steps is None else int(steps)
        if not (1 <= stop <= self.steps):
            raise ValueError(f"steps must be in [1, {self.steps}], got {steps!r}")
        n_samples = self.steps * self.batch_size * self.accumulate * self.world_size
        if trial is None:
            seed = self.seed
        elif self.seed_per_trial:
            seed = run_seed(self.seed, trial.number)
        else:  # the study's seed, or a new one where the sampler asked for a seed replicate
            seed = trial_seed(trial, self.seed)
        plan = plan_mixture(self.train_blocks(), dict(weights), n_samples, self.max_epochs, seed)
        train_ds = MixtureDataset(self.packed, plan, self.seq_len, self.splits)
        train_loader = DataLoader(train_ds, batch_size=self.batch_size, shuffle=False, drop_last=True)
        val_loaders = [
            DataLoader(HeldOutDataset(p, sp, self.seq_len), batch_size=self.eval_batch_size, shuffle=False)
            for p, sp in zip(self.packed, self.splits)
        ]
        vocab = self.tokenizer.vocab_size
        n_params = scale.n_params(vocab, self.seq_len)
        torch.manual_seed(seed)
        module = CausalLMModule(
            scale, vocab, self.seq_len, self.names, self.target_weights, self.steps, lr=self.lr,
            weight_decay=self.weight_decay, warmup_steps=self.warmup_steps, min_lr_ratio=self.min_lr_ratio,
            compile=self.compile, nan_check_every=self.nan_check_every,
        )
        callback = OptunaStepCallback(trial, scale.flops_per_token(vocab, self.seq_len), n_params)
        if trial is not None:
            trial.set_user_attr("seed", seed)
            trial.set_user_attr("n_params", n_params)
            trial.set_user_attr("tokens_per_step", self.tokens_per_step)
        t0 = time.perf_counter()
        with _quiet():
            trainer = self._trainer(stop, callback)
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loaders)
            # the last step is validated inside fit (OptunaStepCallback stops there), also under ddp_spawn
            result = self._outcome(trainer, module, callback, trial)
        result.n_params, result.wall_seconds = n_params, time.perf_counter() - t0
        return result

    def _outcome(self, trainer: L.Trainer, module: CausalLMModule, callback: OptunaStepCallback,
                 trial: optuna.Trial | None) -> RunResult:
        """The run's result, also when it ran in spawned processes (``strategy="ddp_spawn"``).

        In process, the callback and module hold it.  Spawned ranks cannot hand objects back, so
        then it is read from what rank 0 wrote: the trial in storage (and the pruner asked again,
        from the same storage), or without a trial the metrics Lightning returns from rank 0.
        """
        if callback.history:
            return RunResult(module.val_objective, dict(module.val_losses), callback.pruned_at, list(callback.history))
        if trial is not None:
            frozen = records.stored_trial(trial)
            curve = frozen.user_attrs.get("val_curve", [])
            if not curve:
                return RunResult(math.nan, {}, None, [])
            history = [{"step": c["step"], "objective": c["objective"],
                        "val_losses": {n: c[n] for n in self.names}} for c in curve]
            # this process's Trial caches only its own reports: ask the pruner on the stored trial
            pruned = history[-1]["step"] if trial.study.pruner.prune(trial.study, frozen) else None
            return RunResult(history[-1]["objective"], history[-1]["val_losses"], pruned, history)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if "adso/step" not in metrics:
            return RunResult(math.nan, {}, None, [])
        losses = {n: metrics[f"val/{n}"] for n in self.names}
        step = int(metrics["adso/step"])
        return RunResult(metrics["val/objective"], losses, None,
                         [{"step": step, "objective": metrics["val/objective"], "val_losses": losses}])

    def _trainer(self, max_steps: int, callback: OptunaStepCallback) -> L.Trainer:
        kwargs = dict(
            accelerator=self.accelerator, devices=self.devices, strategy=self.strategy, precision=self.precision,
            max_steps=max_steps, max_epochs=-1, accumulate_grad_batches=self.accumulate,
            val_check_interval=self.eval_every * self.accumulate, check_val_every_n_epoch=None,
            num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, gradient_clip_val=self.grad_clip, callbacks=[callback],
        )
        extra = dict(self.trainer_kwargs)
        kwargs["callbacks"] = [callback, *extra.pop("callbacks", [])]  # the user's too, never instead
        kwargs.update(extra)
        return L.Trainer(**kwargs)


def planned_stop(trial: optuna.Trial, steps: int) -> int | None:
    """The step ADSOSampler planned to stop this run at (ADSOPruner prunes there), if any.

    Training ends exactly there and is validated there, instead of running on to the next
    ``eval_every`` boundary: the report lands on the planned fidelity and no compute is wasted.
    """
    stop = records.planned_stop(records.trial_attrs(trial.study, trial))
    if stop is None or not getattr(trial.study.pruner, "honours_planned_stops", False):
        return None
    return max(1, min(steps, int(math.ceil(stop))))


def _target_weights(target: Any, names: list[str]) -> dict[str, float]:
    if target == "mean":
        return {n: 1.0 for n in names}
    if isinstance(target, Mapping):
        items = dict(target)
    elif isinstance(target, Sequence) and not isinstance(target, str):
        items = {n: 1.0 for n in target}
    else:
        raise ValueError(f"target must be 'mean', a list of domain names or {{domain: weight}}, got {target!r}")
    unknown = sorted(set(items) - set(names))
    if unknown or not items:
        raise ValueError(f"target names unknown domains {unknown}; the domains are {names}")
    if any(not (math.isfinite(float(w)) and float(w) >= 0) for w in items.values()) or sum(items.values()) <= 0:
        raise ValueError(f"target weights must be >= 0 and not all zero, got {items}")
    return {k: float(v) for k, v in items.items()}


def _is_failure(exc: BaseException) -> bool:
    """A run that diverged or ran out of memory: the trial fails, the study goes on.

    Spawned ranks re-raise in the parent as a wrapper whose text names the original error.
    """
    if isinstance(exc, (DivergenceError, torch.cuda.OutOfMemoryError)):
        return True
    text = f"{type(exc).__name__}: {exc}"
    return "DivergenceError" in text or "OutOfMemoryError" in text or "out of memory" in text.lower()


def _failure_reason(exc: BaseException) -> str:
    """One line: the error itself, also when a spawned rank's traceback wraps it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1:  # a child's traceback: its last line is "SomeError: message"
        return lines[-1]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _quiet:
    """Silence Lightning's per-Trainer banners and the CPU-only dataloader advice: one per trial."""

    def __enter__(self) -> None:
        self._loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*`max_epochs` was not set.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        for lg, level in zip(self._loggers, self._levels):
            lg.setLevel(level)
