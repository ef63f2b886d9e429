"""Named proxy model scales and their exact parameter counts.

The cost model and the sampler's scale axis need the *real* parameter count of each proxy, so a
scale is counted from the instantiated model (on the meta device: counting a 1B model allocates
no memory), for the tokenizer's vocabulary and the run's sequence length.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import lru_cache

import torch

from optuna_adso.validation import as_int

ARCHITECTURES = ("llama", "gpt2")


@dataclass(frozen=True)
class Scale:
    """A decoder-only transformer shape; ``d_ff=None`` picks the architecture's usual width."""

    name: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int | None = None
    arch: str = "llama"
    n_kv_heads: int | None = None
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"Scale {self.name!r}: arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        for field in ("d_model", "n_layers", "n_heads"):
            as_int(getattr(self, field), f"Scale {self.name!r}: {field}", 1)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"Scale {self.name!r}: d_model {self.d_model} must be divisible by n_heads {self.n_heads}"
            )
        if self.n_kv_heads is not None and (self.n_kv_heads < 1 or self.n_heads % self.n_kv_heads):
            raise ValueError(f"Scale {self.name!r}: n_kv_heads must divide n_heads, got {self.n_kv_heads!r}")

    @property
    def ffn_width(self) -> int:
        if self.d_ff is not None:
            return self.d_ff
        if self.arch == "gpt2":
            return 4 * self.d_model
        return 256 * -(-(8 * self.d_model // 3) // 256) if self.d_model >= 256 else 8 * self.d_model // 3

    def with_arch(self, arch: str) -> Scale:
        return dataclasses.replace(self, arch=arch, d_ff=None if self.arch != arch else self.d_ff)

    def config(self, vocab_size: int, seq_len: int):
        """The Hugging Face config of this shape (no weights)."""
        from transformers import GPT2Config, LlamaConfig

        if vocab_size < 2 or seq_len < 1:
            raise ValueError(f"vocab_size must be >= 2 and seq_len >= 1, got {vocab_size}, {seq_len}")
        if self.arch == "gpt2":
            return GPT2Config(
                vocab_size=vocab_size, n_positions=seq_len, n_embd=self.d_model, n_layer=self.n_layers,
                n_head=self.n_heads, n_inner=self.ffn_width, bos_token_id=vocab_size - 1,
                eos_token_id=vocab_size - 1, use_cache=False, tie_word_embeddings=self.tie_embeddings,
                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, loss_type="ForCausalLM",
            )
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=self.d_model, intermediate_size=self.ffn_width,
            num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
            num_key_value_heads=self.n_kv_heads or self.n_heads, max_position_embeddings=seq_len,
            bos_token_id=None, eos_token_id=vocab_size - 1, use_cache=False,
            tie_word_embeddings=self.tie_embeddings, loss_type="ForCausalLM",
        )

    def build(self, vocab_size: int, seq_len: int, attn_implementation: str = "sdpa"):
        """Instantiate the model (randomly initialized) on the current default device."""
        from transformers import AutoModelForCausalLM

        quiet = logging.getLogger("transformers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            return AutoModelForCausalLM.from_config(
                self.config(vocab_size, seq_len), attn_implementation=attn_implementation
            )
        finally:
            quiet.setLevel(level)

    def n_params(self, vocab_size: int, seq_len: int) -> int:
        """Exact parameter count (shared tensors counted once), computed on the meta device."""
        return _count(self, vocab_size, seq_len)

    def flops_per_token(self, vocab_size: int, seq_len: int) -> float:
        """Training FLOPs per token: 6 N plus attention scores (PaLM appendix B), for MFU."""
        return 6.0 * self.n_params(vocab_size, seq_len) + 12.0 * self.n_layers * self.d_model * seq_len


@lru_cache(maxsize=256)
def _count(scale: Scale, vocab_size: int, seq_len: int) -> int:
    with torch.device("meta"):
        model = scale.build(vocab_size, seq_len, attn_implementation="eager")
    return int(sum(p.numel() for p in model.parameters()))


def _ladder() -> dict[str, Scale]:
    shapes = [
        # tiny proxies for CPU tests and the offline demo
        ("tiny-32", 32, 2, 2), ("tiny-64", 64, 2, 4), ("tiny-128", 128, 3, 4),
        # the paper's ladder (arXiv 2503.21023), nominal sizes at a 32k vocabulary; the 500M and
        # 700M shapes are ours (head dim 128), placed between 300M and 1B
        ("20M", 256, 8, 8), ("60M", 512, 8, 8), ("150M", 768, 12, 12), ("300M", 1024, 16, 16),
        ("500M", 1408, 16, 11), ("700M", 1792, 16, 14), ("1B", 2048, 16, 16),
    ]
    return {name: Scale(name, d, layers, heads) for name, d, layers, heads in shapes}


SCALES: dict[str, Scale] = _ladder()


def get_scale(scale: str | Scale | dict, arch: str | None = None) -> Scale:
    """A named scale (``"150M"``), a :class:`Scale`, or an explicit dict of Scale fields."""
    if isinstance(scale, Scale):
        out = scale
    elif isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; named scales are {sorted(SCALES)}, or pass a Scale")
        out = SCALES[scale]
    elif isinstance(scale, dict):
        try:
            out = Scale(**{"name": "custom", **scale})
        except TypeError as exc:
            raise ValueError(f"scale dict {scale!r} is not a valid Scale: {exc}") from None
    else:
        raise TypeError(f"scale must be a name, a Scale or a dict of Scale fields, got {scale!r}")
    return out.with_arch(arch) if arch is not None and arch != out.arch else out
