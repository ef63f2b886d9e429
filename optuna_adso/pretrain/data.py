"""Data domains, tokenized once into memory-mapped token files, mixed by token share.

A :class:`Domain` is a named text source.  :func:`pack_domain` tokenizes it once into a flat token
file (documents separated by end-of-text) cached under ``cache_dir``, keyed by the tokenizer and
the source, so later trials and other workers memory-map it instead of re-tokenizing.  Blocks are
fixed-length windows of that stream; all blocks have the same length, so sampling blocks in
proportion to the weights mixes by TOKEN share, not document share.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optuna_adso.pretrain.tokenizer import TextTokenizer
from optuna_adso.validation import as_optional_int

FILE_KINDS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "txt"}


class DataBudgetError(ValueError):
    """A domain holds too few tokens for the planned run under the repetition cap."""


@dataclass(frozen=True)
class Domain:
    """A named text source.  Build one with the ``from_*`` constructors."""

    name: str
    kind: str  # "files" | "hf" | "dataset" | "texts"
    source: Any
    text_field: str = "text"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"Domain name must be a non-empty string without '/', got {self.name!r}")

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_files(cls, name: str, paths: str | os.PathLike | Sequence[str | os.PathLike], text_field: str = "text") -> Domain:
        """Local ``.jsonl`` / ``.parquet`` files (one document per row) or ``.txt`` (one per file):
        paths, directories (searched recursively) or glob patterns."""
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not items:
            raise ValueError(f"Domain {name!r}: paths is empty")
        resolved = []
        for p in items:
            if any(c in str(p) for c in "*?["):
                matched = sorted(Path(q) for q in glob.glob(str(p), recursive=True))
                resolved += [q for q in matched if q.suffix in FILE_KINDS]
                if not matched:
                    raise FileNotFoundError(f"Domain {name!r}: no file matches {p}")
                continue
            p = Path(p)
            if p.is_dir():
                resolved += sorted(q for q in p.rglob("*") if q.suffix in FILE_KINDS)
            elif not p.exists():
                raise FileNotFoundError(f"Domain {name!r}: {p} does not exist")
            elif p.suffix not in FILE_KINDS:
                raise ValueError(f"Domain {name!r}: {p} is not one of {sorted(FILE_KINDS)}")
            else:
                resolved.append(p)
        if not resolved:
            raise ValueError(f"Domain {name!r}: no {sorted(FILE_KINDS)} files under {items}")
        return cls(name, "files", tuple(str(p.resolve()) for p in resolved), text_field)

    @classmethod
    def from_hf(
        cls, name: str, path: str, config: str | None = None, split: str = "train", text_field: str = "text",
        streaming: bool = False, max_documents: int | None = None, data_files: Any = None,
    ) -> Domain:
        """A dataset loaded with ``datasets.load_dataset(path, config, split=..., streaming=...)``.

        ``data_files`` goes to ``load_dataset`` too (e.g. ``path="json"`` with local or remote
        files).  Cap a streamed source with ``max_documents``: it is tokenized once, in full.
        """
        as_optional_int(max_documents, f"Domain {name!r}: max_documents", 1)
        opts = {"config": config, "split": split, "streaming": bool(streaming), "max_documents": max_documents,
                "data_files": data_files}
        return cls(name, "hf", path, text_field, opts)

    @classmethod
    def from_dataset(cls, name: str, dataset: Any, text_field: str = "text", max_documents: int | None = None) -> Domain:
        """An in-memory ``datasets.Dataset``, or the path of one saved with ``save_to_disk``."""
        if isinstance(dataset, (str, os.PathLike)):
            import datasets

            dataset = datasets.load_from_disk(str(dataset))
        if text_field not in dataset.column_names:
            raise ValueError(f"Domain {name!r}: column {text_field!r} not in {dataset.column_names}")
        return cls(name, "dataset", dataset, text_field, {"max_documents": max_documents})

    @classmethod
    def from_texts(cls, name: str, texts: Sequence[str]) -> Domain:
        return cls(name, "texts", tuple(texts))

    # -- reading --------------------------------------------------------------------------------
    def iter_texts(self) -> Iterator[str]:
        """Every document's text, in a fixed order."""
        if self.kind == "texts":
            yield from self.source
        elif self.kind == "files":
            for p in self.source:
                yield from _read_file(Path(p), self.text_field, self.name)
        elif self.kind in ("hf", "dataset"):
            ds = self.source if self.kind == "dataset" else self._load_hf()
            limit = self.options.get("max_documents")
            for i, row in enumerate(ds):
                if limit is not None and i >= limit:
                    break
                if self.text_field not in row:
                    raise ValueError(f"Domain {self.name!r}: rows have no field {self.text_field!r}: {sorted(row)}")
                yield row[self.text_field]
        else:
            raise ValueError(f"Domain {self.name!r}: unknown kind {self.kind!r}")

    def _load_hf(self):
        import datasets

        o = self.options
        extra = {"data_files": o["data_files"]} if o.get("data_files") is not None else {}
        return datasets.load_dataset(self.source, o["config"], split=o["split"], streaming=o["streaming"], **extra)

    def fingerprint(self) -> str:
        """What identifies the content: files by path, size and mtime; datasets by their fingerprint."""
        h = hashlib.sha256(f"{self.kind}|{self.text_field}|{sorted(self.options.items())}".encode())
        if self.kind == "files":
            for p in self.source:
                st = os.stat(p)
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        elif self.kind == "hf":
            h.update(str(self.source).encode())
        elif self.kind == "dataset":
            h.update(str(getattr(self.source, "_fingerprint", id(self.source))).encode())
        else:
            for t in self.source:
                h.update(t.encode())
                h.update(b"\0")
        return h.hexdigest()[:16]


def _read_file(path: Path, text_field: str, name: str) -> Iterator[str]:
    kind = FILE_KINDS[path.suffix]
    if kind == "txt":
        yield path.read_text(encoding="utf-8", errors="replace")
    elif kind == "jsonl":
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    row = json.loads(line)
                    if text_field not in row:
                        raise ValueError(f"Domain {name!r}: {path}:{lineno} has no field {text_field!r}")
                    yield row[text_field]
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=[text_field])
        yield from table.column(text_field).to_pylist()


# -- tokenize + pack, cached --------------------------------------------------------------------
@dataclass
class PackedDomain:
    """A domain's token stream (memory-mapped) cut into ``seq_len`` blocks: held-out first, then train."""

    name: str
    tokens: np.ndarray
    path: Path
    from_cache: bool

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def n_blocks(self, seq_len: int) -> int:
        return self.n_tokens // seq_len

    def __getstate__(self) -> dict[str, Any]:
        # pickled by path (DDP spawn, DataLoader workers): never copy the token file into a pickle
        return {"name": self.name, "path": str(self.path), "dtype": self.tokens.dtype.str, "from_cache": self.from_cache}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self.path, self.from_cache = state["name"], Path(state["path"]), state["from_cache"]
        self.tokens = np.memmap(self.path, dtype=np.dtype(state["dtype"]), mode="r")

    def block(self, i: int, seq_len: int) -> torch.Tensor:
        return torch.from_numpy(self.tokens[i * seq_len : (i + 1) * seq_len].astype(np.int64))


def pack_domain(domain: Domain, tokenizer: TextTokenizer, cache_dir: str | os.PathLike, batch_docs: int = 256) -> PackedDomain:
    """Tokenize a domain once; later calls (any process) memory-map the cached file."""
    key = hashlib.sha256(f"{tokenizer.fingerprint}|{domain.fingerprint()}".encode()).hexdigest()[:20]
    path = Path(cache_dir) / "tokens" / f"{domain.name}-{key}.bin"
    meta_path = path.with_suffix(".json")
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32
    if path.exists() and meta_path.exists():
        return PackedDomain(domain.name, np.memmap(path, dtype=dtype, mode="r"), path, True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    n = 0
    with open(tmp, "wb") as out:
        batch: list[str] = []
        for text in domain.iter_texts():
            batch.append(text)
            if len(batch) >= batch_docs:
                n += _write(out, tokenizer, batch, dtype)
                batch = []
        if batch:
            n += _write(out, tokenizer, batch, dtype)
    if n == 0:
        tmp.unlink()
        raise DataBudgetError(f"Domain {domain.name!r} has no text")
    os.replace(tmp, path)
    meta_path.write_text(json.dumps({"domain": domain.name, "n_tokens": n, "dtype": np.dtype(dtype).name}))
    return PackedDomain(domain.name, np.memmap(path, dtype=dtype, mode="r"), path, False)


def _write(out, tokenizer: TextTokenizer, texts: list[str], dtype) -> int:
    ids = tokenizer.encode_batch(texts)
    flat = np.fromiter(
        (t for doc in ids for t in (*doc, tokenizer.eos_id)), dtype=dtype, count=sum(len(d) + 1 for d in ids)
    )
    out.write(flat.tobytes())
    return int(flat.shape[0])


# -- mixing by token share ----------------------------------------------------------------------
def apportion(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total`` closest to ``weights * total`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all zero, got {list(weights)}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


@dataclass
class MixturePlan:
    """Which train block of which domain each sample of the run reads, in training order."""

    domain_index: np.ndarray  # (n_samples,) index into the domains
    block_index: np.ndarray  # (n_samples,) block index within that domain
    counts: dict[str, int]


def plan_mixture(
    train_blocks: Mapping[str, int], weights: Mapping[str, float], n_samples: int, max_epochs: float, seed: int
) -> MixturePlan:
    """Draw ``n_samples`` blocks with domain shares = weights; fail early if a domain runs dry.

    Counts are apportioned exactly, each domain's blocks are read in a shuffled order (reshuffled
    per repetition), and the whole sequence is shuffled so any prefix of the run (a pruned run)
    has the same mixture in expectation.  A zero weight draws nothing and never blocks.
    """
    names = list(train_blocks)
    missing = sorted(set(weights) ^ set(names))
    if missing:
        raise ValueError(f"weights and domains differ on {missing}; domains are {names}")
    if not (math.isfinite(max_epochs) and max_epochs > 0):
        raise ValueError(f"max_epochs (repetition cap) must be a positive number, got {max_epochs!r}")
    counts = apportion([weights[n] for n in names], n_samples)
    rng = np.random.default_rng(seed)
    dom, blk = [], []
    for i, (name, count) in enumerate(zip(names, counts)):
        if count == 0:
            continue
        have = train_blocks[name]
        if count > have * max_epochs:
            raise DataBudgetError(
                f"domain {name!r} has {have} training blocks but weight {weights[name]:.3g} of "
                f"{n_samples} blocks needs {count}, more than {max_epochs:g} repetitions (max_epochs) allow; "
                "add data, lower its max weight, or shorten the run"
            )
        reps = -(-count // have)
        order = np.concatenate([rng.permutation(have) for _ in range(reps)])[:count]
        dom.append(np.full(count, i))
        blk.append(order)
    perm = rng.permutation(n_samples)
    return MixturePlan(np.concatenate(dom)[perm], np.concatenate(blk)[perm], dict(zip(names, counts)))


@dataclass(frozen=True)
class HeldOutSplit:
    """Which of a domain's ``n_blocks`` blocks are held out: ``n_val`` of them, evenly strided.

    Strided rather than the first blocks, so the held-out loss covers the whole domain (a domain's
    first blocks are often one document) and no block is both trained on and evaluated.
    """

    n_blocks: int
    n_val: int

    def __post_init__(self) -> None:
        if not (1 <= self.n_val < self.n_blocks):
            raise DataBudgetError(f"need 1 <= held-out blocks < blocks, got {self.n_val} of {self.n_blocks}")

    @property
    def stride(self) -> int:
        return self.n_blocks // self.n_val

    @property
    def n_train(self) -> int:
        return self.n_blocks - self.n_val

    def val_block(self, i: int) -> int:
        return i * self.stride

    def train_block(self, t: int) -> int:
        """The t-th training block: skip the held-out block at the start of each stride."""
        per = self.stride - 1
        if per > 0 and t < self.n_val * per:
            return (t // per) * self.stride + 1 + t % per
        return self.n_val * self.stride + (t - self.n_val * per)


class MixtureDataset(torch.utils.data.Dataset):
    """Training samples in planned order, read from each domain's training blocks."""

    def __init__(self, packed: Sequence[PackedDomain], plan: MixturePlan, seq_len: int,
                 splits: Sequence[HeldOutSplit]) -> None:
        self.packed, self.plan, self.seq_len, self.splits = list(packed), plan, seq_len, list(splits)

    def __len__(self) -> int:
        return len(self.plan.domain_index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        d = int(self.plan.domain_index[i])
        block = self.splits[d].train_block(int(self.plan.block_index[i]))
        return {"input_ids": self.packed[d].block(block, self.seq_len), "domain": torch.tensor(d)}


class HeldOutDataset(torch.utils.data.Dataset):
    """One domain's held-out blocks, never trained on."""

    def __init__(self, packed: PackedDomain, split: HeldOutSplit, seq_len: int) -> None:
        self.packed, self.split, self.seq_len = packed, split, seq_len

    def __len__(self) -> int:
        return self.split.n_val

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.packed.block(self.split.val_block(i), self.seq_len)}
