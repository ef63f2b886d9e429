"""Tokenizers: any Hugging Face tokenizer, or an offline byte-level BPE trained on the domains.

The offline default needs no hub: a byte-level BPE is trained with ``tokenizers`` on a sample of
the domains' own text and cached on disk, keyed by the domains and the vocabulary size, so every
trial (and every worker) of a study shares it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna_adso.validation import as_int

EOS = "<|endoftext|>"


@dataclass
class TextTokenizer:
    """What the data pipeline needs of a tokenizer: encode a batch, an end-of-text id, a hash."""

    encode_batch: Any  # (list[str]) -> list[list[int]]
    eos_id: int
    vocab_size: int
    fingerprint: str
    hf: Any = None  # the underlying Hugging Face tokenizer, for users who want to decode


def _hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def from_tokenizers(tok) -> TextTokenizer:
    """Wrap a ``tokenizers.Tokenizer``."""
    eos = tok.token_to_id(EOS)
    if eos is None:
        raise ValueError(f"tokenizer has no {EOS!r} token; add it or pass a Hugging Face tokenizer with an eos token")
    return TextTokenizer(
        encode_batch=lambda texts: [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)],
        eos_id=eos,
        vocab_size=tok.get_vocab_size(),
        fingerprint=_hash(tok.to_str()),
        hf=tok,
    )


def from_hf(tok) -> TextTokenizer:
    """Wrap a ``transformers`` tokenizer object (fast or slow)."""
    eos = tok.eos_token_id
    if eos is None:
        raise ValueError(f"tokenizer {tok.name_or_path!r} has no eos_token_id; documents must be separated")
    backend = getattr(tok, "backend_tokenizer", None)
    fp = _hash(backend.to_str()) if backend is not None else _hash(tok.name_or_path, str(len(tok)))

    def encode(texts: list[str]) -> list[list[int]]:
        return tok(texts, add_special_tokens=False)["input_ids"]

    return TextTokenizer(encode, eos, len(tok), fp, hf=tok)


def train_bpe(texts: Iterable[str], vocab_size: int, path: Path) -> Any:
    """Train a byte-level BPE and save it to ``path`` (atomically: workers may race)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tok.save(str(tmp))
    os.replace(tmp, path)
    return tok


def resolve_tokenizer(
    tokenizer: Any,
    domains: Sequence[Any],
    cache_dir: Path,
    vocab_size: int = 8192,
    train_chars_per_domain: int = 2_000_000,
) -> TextTokenizer:
    """``None`` -> the cached offline BPE; a path/name -> ``AutoTokenizer``; an object -> wrapped."""
    if tokenizer is None:
        from tokenizers import Tokenizer

        as_int(vocab_size, "vocab_size (of a byte-level BPE)", 260)
        key = _hash("bpe", str(vocab_size), str(train_chars_per_domain), *(d.fingerprint() for d in domains))
        path = Path(cache_dir) / "tokenizers" / f"bpe-{key}.json"
        if path.exists():
            return from_tokenizers(Tokenizer.from_file(str(path)))
        sample = itertools.chain.from_iterable(_prefix(d.iter_texts(), train_chars_per_domain) for d in domains)
        return from_tokenizers(train_bpe(sample, vocab_size, path))
    if isinstance(tokenizer, TextTokenizer):
        return tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        return from_hf(AutoTokenizer.from_pretrained(str(tokenizer)))
    if hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "token_to_id"):
        return from_tokenizers(tokenizer)
    if hasattr(tokenizer, "eos_token_id"):
        return from_hf(tokenizer)
    raise TypeError(
        f"tokenizer must be None (offline BPE), a Hugging Face tokenizer, a tokenizers.Tokenizer or a "
        f"name/path for AutoTokenizer, got {type(tokenizer).__name__}"
    )


def _prefix(texts: Iterator[str], max_chars: int) -> Iterator[str]:
    """The first ``max_chars`` characters of a text stream: enough to learn merges, bounded cost."""
    seen = 0
    for text in texts:
        if seen >= max_chars:
            return
        yield text
        seen += len(text)
