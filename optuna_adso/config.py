"""The YAML file behind ``adso optimize``: what to mix, where the mixture will be used, what to spend.

Example (every key; ``#`` marks the optional ones)::

    study_name: mix
    storage: sqlite:///adso.db              # default: sqlite:///adso.db
    direction: minimize                     # or maximize
    domains: [web, code, books]             # or {web: {path: /data/web, max_weight: 0.8}, ...}
    scales: [20e6, 60e6, 150e6]             # proxy model sizes (parameters)
    target: {scale: 1e9, step: 20000}       # where the mixture will be used
    cost: {tokens_per_step: 524288}         # FLOPs = 6 * parameters * tokens
    budget: {flops: 1e20}                   # and/or trials: 200, target_runs: 30
    workers: 1                              # processes sharing the study
    gpus: [0, 1]                            # one GPU per worker, round robin
    seed: 0
    objective: mypackage.train:run          # run(trial, mixture, scale, steps) -> float
    # objective: pretrain                   # the built-in Lightning objective, options below
    # pretrain: {steps: 2000, batch_size: 8, ...}
    sampler: {min_target_share: 0.5}        # extra ADSOSampler options

Validation happens before any compute; a :class:`ConfigError` names the bad key (``budget.flops``)
and what was expected, and suggests the closest known key for a misspelt one.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "DomainConfig", "StudyConfig", "load_config", "parse_config", "resolve_objective"]

PRETRAIN = "pretrain"
_TOP_KEYS = {
    "study_name": "the study's name in storage (a string)",
    "storage": "a storage URL, e.g. sqlite:///adso.db or postgresql://user@host/db",
    "direction": "'minimize' or 'maximize'",
    "domains": "a list of domain names, or a mapping {domain: {path, min_weight, max_weight}}",
    "scales": "a list of proxy model sizes (numbers; scale names for the pretrain objective)",
    "target": "a mapping {scale: <target size>, step: <target steps>}",
    "cost": "a mapping {tokens_per_step: <tokens per optimizer step>}",
    "budget": "a mapping with flops, trials and/or target_runs",
    "workers": "a positive int",
    "gpus": "a list of GPU indices",
    "seed": "an int",
    "objective": "'package.module:function' or 'pretrain'",
    "pretrain": "a mapping of PretrainObjective options",
    "sampler": "a mapping of extra ADSOSampler options",
}
_REQUIRED = ("study_name", "domains", "target", "budget", "objective")
_DOMAIN_KEYS = ("path", "min_weight", "max_weight")
_BUDGET_KEYS = ("flops", "trials", "target_runs")


class ConfigError(ValueError):
    """A config file problem: which key, what was wrong, what was expected."""

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        where = f"{source}: " if source else ""
        super().__init__(f"{where}config key '{key}': {message}")


@dataclass(frozen=True)
class DomainConfig:
    name: str
    path: str | None = None
    min_weight: float | None = None
    max_weight: float | None = None


@dataclass(frozen=True)
class StudyConfig:
    """A validated config; build it with :func:`load_config` or :func:`parse_config`."""

    study_name: str
    domains: tuple[DomainConfig, ...]
    scales: tuple[float | str, ...]
    target_scale: float | str | None
    target_step: int
    objective: str
    budget_flops: float | None = None
    budget_trials: int | None = None
    budget_target_runs: float | None = None
    storage: str = "sqlite:///adso.db"
    direction: str = "minimize"
    tokens_per_step: float = 1.0
    workers: int = 1
    gpus: tuple[int, ...] | None = None
    seed: int = 0
    pretrain: Mapping[str, Any] = field(default_factory=dict)
    sampler: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    @property
    def paths(self) -> dict[str, str] | None:
        """``{domain: path}`` for export, when every domain gives one."""
        if all(d.path for d in self.domains):
            return {d.name: str(d.path) for d in self.domains}
        return None

    def with_overrides(self, **changes: Any) -> StudyConfig:
        """A copy with command-line overrides (``storage``, ``workers``, ``gpus``...) applied."""
        values = {k: v for k, v in changes.items() if v is not None}
        return StudyConfig(**{**self.__dict__, **values})


# --- checks ----------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, key: str, what: str, src: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected {what}, got {_type_name(value)} {value!r}", src)
    return value


def _unknown_keys(data: Mapping[str, Any], allowed: Any, prefix: str, src: str | None) -> None:
    for key in data:
        if key not in allowed:
            where = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(where, f"unknown key; expected one of {sorted(allowed)}{hint}", src)


def _number(value: Any, key: str, src: str | None, *, positive: bool = True, lo: float | None = None,
            hi: float | None = None) -> float:
    if isinstance(value, str):  # YAML reads 1e9 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(key, f"expected a number, got {_type_name(value)} {value!r}", src)
    if positive and value <= 0:
        raise ConfigError(key, f"expected a positive number, got {value!r}", src)
    if lo is not None and not (lo <= value <= (hi if hi is not None else math.inf)):
        raise ConfigError(key, f"expected a number in [{lo:g}, {hi:g}], got {value!r}", src)
    return float(value)


def _int(value: Any, key: str, src: str | None, minimum: int) -> int:
    if isinstance(value, str):  # YAML reads 2e4 (no dot) as a string, as it does 1e9
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an int, got {_type_name(value)} {value!r}", src)
    if value < minimum:
        raise ConfigError(key, f"expected an int >= {minimum}, got {value!r}", src)
    return value


def _string(value: Any, key: str, src: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty string, got {_type_name(value)} {value!r}", src)
    return value.strip()


def _domains(value: Any, src: str | None) -> tuple[DomainConfig, ...]:
    if isinstance(value, list):
        names = [_string(v, f"domains[{i}]", src) for i, v in enumerate(value)]
        out = [DomainConfig(n) for n in names]
    elif isinstance(value, Mapping):
        out = []
        for name, spec in value.items():
            name = _string(name, "domains", src)
            spec = {} if spec is None else _mapping(spec, f"domains.{name}", f"a mapping with {list(_DOMAIN_KEYS)}", src)
            _unknown_keys(spec, _DOMAIN_KEYS, f"domains.{name}.", src)
            path = _string(spec["path"], f"domains.{name}.path", src) if "path" in spec else None
            lo = _number(spec["min_weight"], f"domains.{name}.min_weight", src, positive=False, lo=0, hi=1) if "min_weight" in spec else None
            hi = _number(spec["max_weight"], f"domains.{name}.max_weight", src, positive=False, lo=0, hi=1) if "max_weight" in spec else None
            out.append(DomainConfig(name, path, lo, hi))
    else:
        raise ConfigError("domains", f"expected {_TOP_KEYS['domains']}, got {_type_name(value)} {value!r}", src)
    names = [d.name for d in out]
    if len(out) < 2:
        raise ConfigError("domains", f"expected at least two domains, got {names}", src)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError("domains", f"domain names must be unique; {dupes} repeat", src)
    bad = [n for n in names if "/" in n]
    if bad:
        raise ConfigError("domains", f"domain names cannot contain '/': {bad}", src)
    return tuple(out)


def _scale(value: Any, key: str, src: str | None, names_allowed: bool) -> float | str:
    if names_allowed and isinstance(value, str):
        try:
            return _number(value, key, src)
        except ConfigError:
            return _string(value, key, src)
    return _number(value, key, src)


def parse_config(data: Any, source: str | None = None) -> StudyConfig:
    """Validate a parsed YAML document; raise :class:`ConfigError` naming the first bad key."""
    src = source
    data = _mapping(data, "<top level>", "a mapping of config keys", src)
    _unknown_keys(data, _TOP_KEYS, "", src)
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(key, f"missing; expected {_TOP_KEYS[key]}", src)
    objective = _string(data["objective"], "objective", src)
    is_pretrain = objective == PRETRAIN
    if not is_pretrain and (objective.count(":") != 1 or not all(objective.split(":"))):
        raise ConfigError("objective", f"expected 'package.module:function' or 'pretrain', got {objective!r}", src)
    if "pretrain" in data and not is_pretrain:
        raise ConfigError("pretrain", "only used with 'objective: pretrain'", src)
    pretrain = dict(_mapping(data.get("pretrain", {}), "pretrain", _TOP_KEYS["pretrain"], src))
    if "scales" not in data:
        raise ConfigError("scales", f"missing; expected {_TOP_KEYS['scales']}", src)
    raw_scales = data["scales"]
    if not isinstance(raw_scales, list) or not raw_scales:
        raise ConfigError("scales", f"expected a non-empty list, got {_type_name(raw_scales)} {raw_scales!r}", src)
    scales = tuple(_scale(v, f"scales[{i}]", src, is_pretrain) for i, v in enumerate(raw_scales))
    if len(set(scales)) != len(scales):
        raise ConfigError("scales", f"scales must be unique, got {list(scales)}", src)
    target = _mapping(data["target"], "target", _TOP_KEYS["target"], src)
    _unknown_keys(target, ("scale", "step"), "target.", src)
    if "step" not in target:
        raise ConfigError("target.step", "missing; expected the target number of training steps (an int)", src)
    step = _int(target["step"], "target.step", src, 1)
    if "scale" not in target:
        raise ConfigError("target.scale", "missing; expected the target model size", src)
    target_scale = _scale(target["scale"], "target.scale", src, is_pretrain)
    numeric = [s for s in scales if isinstance(s, float)]
    if isinstance(target_scale, float) and numeric and target_scale < min(numeric):
        raise ConfigError("target.scale", f"expected a size at or above the smallest proxy scale {min(numeric):g}, "
                          f"got {target_scale:g}", src)
    if is_pretrain and "cost" in data:
        raise ConfigError("cost", "not used with 'objective: pretrain' (its FLOPs count, from its own tokens "
                          "per step, is the cost); remove it", src)
    cost = _mapping(data.get("cost", {}), "cost", _TOP_KEYS["cost"], src)
    _unknown_keys(cost, ("tokens_per_step",), "cost.", src)
    tokens = _number(cost["tokens_per_step"], "cost.tokens_per_step", src) if "tokens_per_step" in cost else 1.0
    budget = _mapping(data["budget"], "budget", _TOP_KEYS["budget"], src)
    _unknown_keys(budget, _BUDGET_KEYS, "budget.", src)
    if not budget:
        raise ConfigError("budget", f"expected at least one of {list(_BUDGET_KEYS)}", src)
    direction = data.get("direction", "minimize")
    if direction not in ("minimize", "maximize"):
        raise ConfigError("direction", f"expected 'minimize' or 'maximize', got {direction!r}", src)
    gpus = None
    if data.get("gpus") is not None:
        if not isinstance(data["gpus"], list) or not data["gpus"]:
            raise ConfigError("gpus", f"expected a non-empty list of GPU indices, got {data['gpus']!r}", src)
        gpus = tuple(_int(g, f"gpus[{i}]", src, 0) for i, g in enumerate(data["gpus"]))
    return StudyConfig(
        study_name=_string(data["study_name"], "study_name", src),
        domains=_domains(data["domains"], src),
        scales=scales,
        target_scale=target_scale,
        target_step=step,
        objective=objective,
        budget_flops=_number(budget["flops"], "budget.flops", src) if "flops" in budget else None,
        budget_trials=_int(budget["trials"], "budget.trials", src, 1) if "trials" in budget else None,
        budget_target_runs=_number(budget["target_runs"], "budget.target_runs", src) if "target_runs" in budget else None,
        storage=_string(data["storage"], "storage", src) if "storage" in data else "sqlite:///adso.db",
        direction=direction,
        tokens_per_step=tokens,
        workers=_int(data.get("workers", 1), "workers", src, 1),
        gpus=gpus,
        seed=_int(data.get("seed", 0), "seed", src, 0),
        pretrain=pretrain,
        sampler=dict(_mapping(data.get("sampler", {}), "sampler", _TOP_KEYS["sampler"], src)),
        source=src,
    )


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("<file>", f"no config file at {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError("<file>", f"not valid YAML: {exc}", str(path)) from None
    return parse_config(data, str(path))


def resolve_objective(config: StudyConfig) -> Callable[..., float]:
    """Import the user's ``package.module:function`` (named in the error if it cannot be found)."""
    module_name, attr = config.objective.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("objective", f"cannot import module {module_name!r} ({exc})", config.source) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError("objective", f"module {module_name!r} has no callable {attr!r}", config.source)
    return fn
