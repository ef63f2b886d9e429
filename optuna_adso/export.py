"""Write a recommended mixture in the formats pre-training frameworks read.

A study ends with a mixture ``{domain: weight}``; the production run needs it in its trainer's
own config.  Each writer below keeps the structure the trainer parses (documented per format), so
that the text can be pasted or loaded as is.  ``paths`` maps each domain to the trainer's data
location (a Megatron/NeMo ``.bin/.idx`` prefix, a litdata ``input_dir``, a folder...); without it
the domain names stand in for the paths.

Weights are rounded to ``digits`` decimals and the rounding residue goes to the largest weight,
so every file's weights sum to 1 exactly as written (trainers that normalize get the same blend).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from optuna_adso.validation import as_int

__all__ = ["FORMATS", "export_mixture", "normalized_weights"]


def normalized_weights(
    mixture: Mapping[str, float], *, digits: int = 6, drop_below: float | None = None
) -> dict[str, float]:
    """Validated weights, rounded, summing to 1; with ``drop_below``, domains at or below it
    are left out (zero weights are kept otherwise: the file names every domain).

    Raises ``ValueError`` naming the bad domain for a negative, non-finite or non-numeric weight.
    """
    if not isinstance(mixture, Mapping) or not mixture:
        raise ValueError(f"mixture must be a non-empty dict {{domain: weight}}, got {mixture!r}")
    clean: dict[str, float] = {}
    for domain, weight in mixture.items():
        if not isinstance(domain, str) or not domain:
            raise ValueError(f"mixture keys must be non-empty domain names, got {domain!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"mixture[{domain!r}] must be a finite number, got {weight!r}")
        if weight < 0:
            raise ValueError(f"mixture[{domain!r}] must be >= 0, got {weight!r}")
        if drop_below is None or weight > drop_below:
            clean[domain] = float(weight)
    total = sum(clean.values())
    if total <= 0:
        raise ValueError(f"mixture has no weight above {drop_below or 0.0:g}: {dict(mixture)!r}")
    rounded = {d: round(w / total, digits) for d, w in clean.items()}
    largest = max(rounded, key=lambda d: rounded[d])
    rounded[largest] = round(rounded[largest] + 1.0 - sum(rounded.values()), digits)
    return rounded


def _paths_for(weights: Mapping[str, float], paths: Mapping[str, str] | None) -> dict[str, str]:
    if paths is None:
        return {d: d for d in weights}
    if not isinstance(paths, Mapping):
        raise ValueError(f"paths must be a dict {{domain: path}}, got {paths!r}")
    missing = [d for d in weights if d not in paths]
    if missing:
        raise ValueError(f"paths has no entry for domains {missing}; give a path for every domain")
    for d in weights:
        if not isinstance(paths[d], str) or not paths[d]:
            raise ValueError(f"paths[{d!r}] must be a non-empty string, got {paths[d]!r}")
    return {d: paths[d] for d in weights}


def _blend(weights: Mapping[str, float], paths: Mapping[str, str]) -> list[Any]:
    """The ``[w1, p1, w2, p2, ...]`` list that Megatron-LM and NeMo share."""
    out: list[Any] = []
    for d, w in weights.items():
        out += [w, paths[d]]
    return out


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _megatron(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """Megatron-LM ``--per-split-data-args-path`` JSON.

    Megatron reads ``{"train": [...], "valid": [...], "test": [...]}``, each a blend list
    ``[weight, prefix, weight, prefix, ...]`` (``get_blend_from_list`` pairs them and normalizes
    the weights).  The same blend is written for the three splits.
    """
    blend = _blend(weights, paths)
    return json.dumps({"train": blend, "valid": blend, "test": blend}, indent=2) + "\n"


def _megatron_args(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """The text of Megatron-LM's ``--data-args-path`` file: ``w1 p1 w2 p2 ...`` on one line
    (the same tokens ``--data-path`` takes on the command line)."""
    return " ".join(str(x) for x in _blend(weights, paths)) + "\n"


def _nemo(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """NeMo blend list as a YAML config fragment: ``model.data.data_prefix: [w1, p1, ...]``.

    NeMo 1.x GPT configs read ``model.data.data_prefix``; NeMo 2.x
    ``PreTrainingDataModule(paths=...)`` takes the same flat list.
    """
    return _dump_yaml({"model": {"data": {"data_prefix": _blend(weights, paths)}}})


def _olmo_core(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """OLMo-core ``SourceMixtureDatasetConfig`` fields as YAML.

    ``source_configs`` is a list of ``SourceMixtureConfig(source_name, paths, target_ratio,
    max_repetition_ratio)``; OLMo-core checks that the target ratios sum to 1.
    """
    sources = [
        {"source_name": d, "target_ratio": w, "paths": [paths[d]], "max_repetition_ratio": 1.0}
        for d, w in weights.items()
    ]
    return _dump_yaml({"source_mixture_config": {"source_configs": sources}})


def _nanotron(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """nanotron ``data_stages`` YAML with a Nanoset: ``dataset_folder`` and ``dataset_weights``
    are parallel lists (one tokenized folder per domain)."""
    stage = {
        "name": "adso_mixture",
        "start_training_step": 1,
        "data": {
            "dataset": {
                "dataset_folder": [paths[d] for d in weights],
                "dataset_weights": list(weights.values()),
            },
            "num_loading_workers": 1,
            "seed": 42,
        },
    }
    return _dump_yaml({"data_stages": [stage]})


def _litgpt(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """Arguments of litdata's ``CombinedStreamingDataset`` as litgpt data modules build it, JSON.

    ``datasets`` lists one ``StreamingDataset(input_dir=...)`` per domain, ``weights`` the
    sampling weights in the same order; ``iterate_over_all`` must be false for weights to apply::

        cfg = json.load(open("mixture.json"))
        CombinedStreamingDataset(
            datasets=[StreamingDataset(input_dir=d["input_dir"]) for d in cfg["datasets"]],
            weights=cfg["weights"], iterate_over_all=False, seed=cfg["seed"])
    """
    payload = {
        "datasets": [{"name": d, "input_dir": paths[d]} for d in weights],
        "weights": list(weights.values()),
        "iterate_over_all": False,
        "seed": 42,
    }
    return json.dumps(payload, indent=2) + "\n"


def _regmix(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """RegMix mixture config YAML: ``train`` maps each dataset prefix to its weight, ``valid``
    the validation set(s) (the same mixture here), as in RegMix's ``mixture_config`` files."""
    mapping = {paths[d]: w for d, w in weights.items()}
    return _dump_yaml({"train": mapping, "valid": dict(mapping)})


def _json(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """Plain JSON ``{domain: weight}``."""
    return json.dumps(weights, indent=2) + "\n"


def _yaml(weights: dict[str, float], paths: dict[str, str], **_: Any) -> str:
    """Plain YAML ``domain: weight``."""
    return _dump_yaml(dict(weights))


FORMATS: dict[str, Callable[..., str]] = {
    "megatron": _megatron,
    "megatron-args": _megatron_args,
    "nemo": _nemo,
    "olmo-core": _olmo_core,
    "nanotron": _nanotron,
    "litgpt": _litgpt,
    "regmix": _regmix,
    "json": _json,
    "yaml": _yaml,
}
"""Every format name :func:`export_mixture` accepts, with its writer (see each docstring)."""


def export_mixture(
    mixture: Mapping[str, float],
    fmt: str,
    *,
    paths: Mapping[str, str] | None = None,
    digits: int = 6,
    drop_below: float | None = None,
) -> str:
    """The mixture as the text of a ``fmt`` config file (one of :data:`FORMATS`).

    Args:
        mixture: ``{domain: weight}``, e.g. ``recommend(study).mixture``; normalized here.
        fmt: the trainer format, e.g. ``"megatron"``, ``"nemo"``, ``"litgpt"``, ``"json"``.
        paths: ``{domain: data location}`` for the trainer; defaults to the domain names.
        digits: decimals kept per weight (the residue goes to the largest weight).
        drop_below: leave out domains whose weight is at or below this, e.g. ``0.0`` (some
            trainers refuse zero-weight datasets); by default every domain is written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    if as_int(digits, "digits", 1) > 15:
        raise ValueError(f"digits must be an int in [1, 15], got {digits!r}")
    weights = normalized_weights(mixture, digits=digits, drop_below=drop_below)
    return FORMATS[fmt](weights, _paths_for(weights, paths))
