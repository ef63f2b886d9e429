"""Training throughput per proxy scale: the Lightning path of ``optuna_adso.pretrain`` against a
plain PyTorch loop on the same model, batch, optimizer, schedule and precision.

Reports tokens/s, achieved model TFLOP/s (6N + attention, PaLM's convention) and model FLOPs
utilization (MFU) against the device's peak, and Lightning's overhead in percent.  CPU:

    python -m benchmarks.throughput --device cpu --scales tiny-32 tiny-64 tiny-128

GPU (bf16-mixed, torch.compile, SDPA attention):

    python -m benchmarks.throughput --device cuda --bf16 --compile --scales 20M 60M 150M 300M \\
        --batch-size 16 --seq-len 1024 --vocab-size 32000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from optuna_adso.pretrain.module import CausalLMModule
from optuna_adso.pretrain.scales import get_scale

# dense bf16 peak TFLOP/s by device name fragment (vendor datasheets, no sparsity)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "4090": 165.0}


class FixedBatches(Dataset):
    """The same random token rows every step: both loops read identical data."""

    def __init__(self, rows: torch.Tensor, n: int) -> None:
        self.rows, self.n = rows, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.rows[i % len(self.rows)]}


def matmul_peak_tflops(device: str, dtype: torch.dtype, n: int = 1024, reps: int = 10) -> float:
    """Achieved TFLOP/s of a square matmul: the practical peak where no datasheet figure applies."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_module(args, scale, total_steps: int) -> CausalLMModule:
    torch.manual_seed(0)
    module = CausalLMModule(scale, args.vocab_size, args.seq_len, ["bench"], {"bench": 1.0}, total_steps,
                            lr=1e-3, warmup_steps=1, compile=args.compile,
                            nan_check_every=10 if args.device == "cuda" else 1)  # as PretrainObjective
    module.configure_model()
    return module


def plain_loop(args, scale, loader: DataLoader, total: int) -> float:
    """A hand-written loop: AdamW (fused on GPU), warmup+cosine, grad clipping, bf16 autocast."""
    module = make_module(args, scale, total).to(args.device)
    model = module.model
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
    t0 = None
    for step, batch in enumerate(loader):
        if step == args.warmup:
            _sync(args.device)
            t0 = time.perf_counter()
        ids = batch["input_ids"].to(args.device, non_blocking=True)
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    _sync(args.device)
    return time.perf_counter() - t0


class _Timer(L.Callback):
    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.t0, self.t1 = warmup, device, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            _sync(self.device)
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        _sync(self.device)
        self.t1 = time.perf_counter()


def lightning_loop(args, scale, loader: DataLoader, total: int) -> float:
    """The objective's path: CausalLMModule under a Lightning Trainer, validation off."""
    module = make_module(args, scale, total)
    timer = _Timer(args.warmup, args.device)
    trainer = L.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1,
        precision="bf16-mixed" if args.bf16 else "32-true", max_steps=total, limit_val_batches=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        gradient_clip_val=1.0, callbacks=[timer], num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.t1 - timer.t0


def measure(args, name: str) -> dict:
    scale = get_scale(name, args.arch)
    total = args.warmup + args.steps
    rows = torch.randint(0, args.vocab_size, (args.batch_size * 4, args.seq_len))
    loader = DataLoader(FixedBatches(rows, total * args.batch_size), batch_size=args.batch_size,
                        pin_memory=args.device == "cuda")
    tokens = args.steps * args.batch_size * args.seq_len
    plain, light = [], []
    for _ in range(args.repeats):  # alternate, so load on a shared machine hits both alike
        plain.append(tokens / plain_loop(args, scale, loader, total))
        light.append(tokens / lightning_loop(args, scale, loader, total))
        if args.device == "cuda":
            torch.cuda.empty_cache()
    p, lt = statistics.median(plain), statistics.median(light)
    fpt = scale.flops_per_token(args.vocab_size, args.seq_len)
    peak = args.peak_tflops
    return {
        "scale": name, "arch": scale.arch, "n_params": scale.n_params(args.vocab_size, args.seq_len),
        "tokens_per_step": args.batch_size * args.seq_len, "plain_tokens_per_s": p, "lightning_tokens_per_s": lt,
        "lightning_overhead_pct": 100.0 * (p - lt) / p, "lightning_tflops": fpt * lt / 1e12,
        "plain_tflops": fpt * p / 1e12, "lightning_mfu": (fpt * lt / 1e12 / peak) if peak else None,
        "plain_mfu": (fpt * p / 1e12 / peak) if peak else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--scales", nargs="+", default=None)
    parser.add_argument("--arch", choices=["llama", "gpt2"], default=None)
    parser.add_argument("--bf16", action="store_true", help="bf16-mixed autocast (GPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--vocab-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=30, help="measured steps per loop")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile, caches)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (auto on known GPUs)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    args.scales = args.scales or (["20M", "60M", "150M", "300M"] if gpu else ["tiny-32", "tiny-64", "tiny-128"])
    args.batch_size = args.batch_size or (16 if gpu else 8)
    args.seq_len = args.seq_len or (1024 if gpu else 64)
    args.vocab_size = args.vocab_size or (32000 if gpu else 1024)
    if args.threads:
        torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} torch threads"
    peak_source = "given"
    if args.peak_tflops is None and gpu:
        args.peak_tflops = next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)
        peak_source = "datasheet, dense bf16"
    if args.peak_tflops is None:  # CPU or unknown GPU: MFU against a measured matmul instead
        args.peak_tflops = statistics.median(
            matmul_peak_tflops(args.device, torch.bfloat16 if args.bf16 else torch.float32) for _ in range(3)
        )
        peak_source = "measured 1024^3 matmul"
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
    warnings.filterwarnings("ignore", message=".*(does not have many workers|LeafSpec|max_epochs).*")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    print(f"# {device_name}; batch {args.batch_size} x seq {args.seq_len}, vocab {args.vocab_size}, "
          f"bf16={args.bf16}, compile={args.compile}, {args.steps} timed steps after {args.warmup}, "
          f"median of {args.repeats}; peak {args.peak_tflops:.4g} TFLOP/s ({peak_source})")
    print("| scale | params | plain tok/s | Lightning tok/s | Lightning overhead | TFLOP/s (Lightning) | MFU |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name in args.scales:
        r = measure(args, name)
        rows.append(r)
        mfu = f"{100 * r['lightning_mfu']:.1f}%" if r["lightning_mfu"] is not None else "n/a"
        print(f"| {r['scale']} | {r['n_params'] / 1e6:.2f}M | {r['plain_tokens_per_s']:,.0f} | "
              f"{r['lightning_tokens_per_s']:,.0f} | {r['lightning_overhead_pct']:+.1f}% | "
              f"{r['lightning_tflops']:.4g} | {mfu} |", flush=True)
        if args.json:  # after every scale: a run cut off at its time limit keeps what it measured
            with open(args.json, "w") as f:
                json.dump({"device": device_name, "args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
