"""What a mixture is optimized for, as objects: the mean loss, one domain, a weighted set, the worst
domain's excess over a reference mixture, and per-domain constraints.

Every run that reports per-domain values (:func:`optuna_adso.report` with ``domains=``) measures
all of these at once, so an objective is a function of those values, not of the run: the sampler
optimizes one (``ADSOSampler(objective=...)``), and :func:`optuna_adso.recommend` and
:func:`optuna_adso.predict` answer for any other from the same runs, with no new training.

The names an objective uses are *evaluation* domains (the keys the runs report), which need not be
the mixture's domains (the paper simulator mixes 5 SlimPajama sources and evaluates 7 held-out
sets).  A reference, where one is needed, is a *mixture* of the study's domains, or ``"uniform"``.

Objectives are linear (a fixed weighting of the domain losses: :class:`MeanLoss`,
:class:`DomainLoss`, :class:`WeightedLoss`), so that a GP fitted to the weighted values is exact,
or not (:class:`WorstExcessLoss`), which the joint per-domain model answers by sampling.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REFERENCE_SUM_TOL = 1e-6
MAX_STORAGE_KEY = 64


def _check_domains(names: Sequence[str], available: Sequence[str], what: str) -> None:
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ValueError(f"{what} names unknown domains {unknown}; the runs report {sorted(available)}")


def reference_weights(reference: str | Mapping[str, float], mixture_domains: Sequence[str], what: str) -> np.ndarray:
    """A reference mixture as weights in the study's domain order; ``"uniform"`` or ``{domain: w}``."""
    k = len(mixture_domains)
    if isinstance(reference, str):
        if reference != "uniform":
            raise ValueError(f"{what} must be 'uniform' or a mixture {{domain: weight}}, got {reference!r}")
        return np.full(k, 1.0 / k)
    if not isinstance(reference, Mapping):
        raise ValueError(f"{what} must be 'uniform' or a mixture {{domain: weight}}, got {reference!r}")
    missing = sorted(set(mixture_domains) - set(reference))
    unknown = sorted(set(reference) - set(mixture_domains))
    if missing or unknown:
        raise ValueError(
            f"{what} must be a mixture of the study's domains {list(mixture_domains)}; "
            f"missing {missing}, unknown {unknown}"
        )
    try:
        w = np.array([float(reference[d]) for d in mixture_domains])
    except (TypeError, ValueError):
        raise ValueError(f"{what}: weights must be numbers, got {dict(reference)!r}") from None
    if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > REFERENCE_SUM_TOL:
        raise ValueError(f"{what}: weights must be finite, >= 0 and sum to 1, got {dict(reference)!r}")
    return w


def _reference_config(reference: str | Mapping[str, float]) -> str | dict[str, float]:
    return reference if isinstance(reference, str) else {str(k): float(v) for k, v in reference.items()}


class MixtureObjective(ABC):
    """A scalar to minimize, computed from a run's per-domain losses (lower is better)."""

    @property
    @abstractmethod
    def key(self) -> str:
        """A short stable name: in stored GP states, plots and the command line."""

    @property
    def storage_key(self) -> str:
        """:attr:`key`, shortened with a digest when long: it is part of a storage attribute's
        name, which RDB storages cap (512 characters, fewer in practice on MySQL indexes)."""
        if len(self.key) <= MAX_STORAGE_KEY:
            return self.key
        digest = hashlib.sha1(self.key.encode()).hexdigest()[:12]
        return f"{self.key[:MAX_STORAGE_KEY - 13]}#{digest}"

    @abstractmethod
    def domains_used(self, available: Sequence[str]) -> list[str]:
        """The evaluation domains this objective reads, in ``available``'s order."""

    def validate(self, available: Sequence[str], mixture_domains: Sequence[str]) -> None:
        """A clear error when the objective names a domain the runs do not report."""

    def linear_weights(self, available: Sequence[str]) -> np.ndarray | None:
        """Weights ``a`` with value ``a @ losses`` over ``available``; None if not linear."""
        return None

    @property
    def linear(self) -> bool:
        """A fixed weighting of the domain losses (a GP on the weighted values is then exact)."""
        return False

    @property
    def reference(self) -> str | Mapping[str, float] | None:
        """The reference mixture the value is measured against, if any."""
        return None

    @abstractmethod
    def evaluate(self, losses: np.ndarray, reference_losses: np.ndarray | None, available: Sequence[str]) -> np.ndarray:
        """Values from per-domain losses ``(..., D)`` (and the reference's, broadcastable)."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """A JSON-able description that :func:`objective_from_config` rebuilds."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MixtureObjective) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key})"


class _Linear(MixtureObjective):
    @property
    def linear(self) -> bool:
        return True

    def evaluate(self, losses: np.ndarray, reference_losses: np.ndarray | None, available: Sequence[str]) -> np.ndarray:
        a = self.linear_weights(available)
        assert a is not None
        return np.asarray(losses, dtype=float) @ a


class MeanLoss(_Linear):
    """The average of every reported domain's loss (what ``PretrainObjective(target="mean")`` reports)."""

    @property
    def key(self) -> str:
        return "mean"

    def domains_used(self, available: Sequence[str]) -> list[str]:
        return list(available)

    def linear_weights(self, available: Sequence[str]) -> np.ndarray:
        return np.full(len(available), 1.0 / len(available))

    def to_config(self) -> dict[str, Any]:
        return {"kind": "mean"}


class WeightedLoss(_Linear):
    """``sum_d w_d loss_d / sum_d w_d``: the domains that matter for the product, by weight."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError(f"WeightedLoss needs a non-empty {{domain: weight}}, got {weights!r}")
        clean: dict[str, float] = {}
        for name, w in weights.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"WeightedLoss: domain names must be non-empty strings, got {name!r}")
            try:
                w = float(w)
            except (TypeError, ValueError):
                raise ValueError(f"WeightedLoss: the weight of {name!r} must be a number, got {w!r}") from None
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"WeightedLoss: the weight of {name!r} must be finite and >= 0, got {w!r}")
            clean[name] = w
        total = sum(clean.values())
        if total <= 0:
            raise ValueError(f"WeightedLoss: the weights must not all be zero, got {dict(weights)!r}")
        self.weights = {k: v / total for k, v in clean.items()}

    @property
    def key(self) -> str:
        return "weighted(" + ",".join(f"{k}={v:.4g}" for k, v in sorted(self.weights.items())) + ")"

    def domains_used(self, available: Sequence[str]) -> list[str]:
        return [d for d in available if d in self.weights]

    def validate(self, available: Sequence[str], mixture_domains: Sequence[str]) -> None:
        _check_domains(list(self.weights), available, "the objective")

    def linear_weights(self, available: Sequence[str]) -> np.ndarray:
        return np.array([self.weights.get(d, 0.0) for d in available])

    def to_config(self) -> dict[str, Any]:
        return {"kind": "weighted", "weights": dict(self.weights)}


class DomainLoss(WeightedLoss):
    """One domain's loss alone."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"DomainLoss needs a domain name, got {name!r}")
        super().__init__({name: 1.0})
        self.name = name

    @property
    def key(self) -> str:
        return f"domain({self.name})"

    def to_config(self) -> dict[str, Any]:
        return {"kind": "domain", "name": self.name}


class WorstExcessLoss(MixtureObjective):
    """``max_d (loss_d(w) - loss_d(reference))``: the worst domain's excess over a reference
    mixture at the same model size and step (DoReMi's view).  Below 0, every domain beats the
    reference; the reference itself scores 0 (its worst excess over itself)."""

    def __init__(self, reference: str | Mapping[str, float] = "uniform", domains: Sequence[str] | None = None) -> None:
        if not (reference == "uniform" or isinstance(reference, Mapping)):
            raise ValueError(f"WorstExcessLoss: reference must be 'uniform' or a mixture {{domain: weight}}, got {reference!r}")
        self._reference = _reference_config(reference)
        self.domains = None if domains is None else [str(d) for d in domains]
        if self.domains is not None and not self.domains:
            raise ValueError("WorstExcessLoss: domains, when given, must name at least one domain")

    @property
    def reference(self) -> str | Mapping[str, float]:
        return self._reference

    @property
    def key(self) -> str:
        ref = self._reference if isinstance(self._reference, str) else "custom"
        over = "" if self.domains is None else ";" + ",".join(self.domains)
        return f"worst-excess({ref}{over})"

    def domains_used(self, available: Sequence[str]) -> list[str]:
        return list(available) if self.domains is None else [d for d in available if d in self.domains]

    def validate(self, available: Sequence[str], mixture_domains: Sequence[str]) -> None:
        if self.domains is not None:
            _check_domains(self.domains, available, "WorstExcessLoss")
        reference_weights(self._reference, mixture_domains, "WorstExcessLoss reference")

    def evaluate(self, losses: np.ndarray, reference_losses: np.ndarray | None, available: Sequence[str]) -> np.ndarray:
        if reference_losses is None:
            raise ValueError("WorstExcessLoss needs the reference mixture's losses")
        idx = [list(available).index(d) for d in self.domains_used(available)]
        excess = np.asarray(losses, dtype=float)[..., idx] - np.asarray(reference_losses, dtype=float)[..., idx]
        return excess.max(axis=-1)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "worst-excess", "reference": self._reference}
        if self.domains is not None:
            out["domains"] = list(self.domains)
        return out


class ChebyshevScalarization(MixtureObjective):
    """One random weighting of several objectives, for a multi-objective study (ParEGO, Knowles
    2006): ``max_j l_j u_j + RHO * sum_j l_j u_j`` with ``u_j = (f_j - low_j) / span_j`` the
    objectives brought to a common scale.  Each proposal draws its own weights ``l``, so the runs
    spread along the whole front; the sum term keeps weakly dominated mixtures from tying.
    Built by the sampler per trial, never stored: its GP state is kept under one key.
    """

    RHO = 0.05

    def __init__(self, components: Sequence[MixtureObjective], weights: Sequence[float],
                 low: Sequence[float], span: Sequence[float]) -> None:
        self.components = list(components)
        self.weights = np.asarray(weights, dtype=float)
        self.low = np.asarray(low, dtype=float)
        self.span = np.maximum(np.asarray(span, dtype=float), 1e-12)
        if any(o.reference is not None or not o.linear for o in self.components):
            raise ValueError("a multi-objective study's objectives must be linear (MeanLoss, DomainLoss, WeightedLoss)")

    @property
    def key(self) -> str:
        return "chebyshev(" + ",".join(o.key for o in self.components) + ")"

    def domains_used(self, available: Sequence[str]) -> list[str]:
        used = {d for o in self.components for d in o.domains_used(available)}
        return [d for d in available if d in used]

    def validate(self, available: Sequence[str], mixture_domains: Sequence[str]) -> None:
        for o in self.components:
            o.validate(available, mixture_domains)

    def evaluate(self, losses: np.ndarray, reference_losses: np.ndarray | None, available: Sequence[str]) -> np.ndarray:
        values = np.stack([o.evaluate(losses, None, available) for o in self.components], axis=-1)
        u = self.weights * (values - self.low) / self.span
        return u.max(axis=-1) + self.RHO * u.sum(axis=-1)

    def to_config(self) -> dict[str, Any]:
        return {"kind": "chebyshev", "objectives": [o.to_config() for o in self.components],
                "weights": self.weights.tolist(), "low": self.low.tolist(), "span": self.span.tolist()}


@dataclass(frozen=True)
class DomainConstraint:
    """A limit on one domain's loss at the target: ``at_most`` a value, or ``not_worse_than`` a
    reference mixture (``"uniform"`` or ``{domain: weight}``) on that domain."""

    name: str
    at_most: float | None = None
    not_worse_than: str | Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"DomainConstraint needs a domain name, got {self.name!r}")
        if (self.at_most is None) == (self.not_worse_than is None):
            raise ValueError(f"DomainConstraint({self.name!r}) needs exactly one of at_most= or not_worse_than=")
        if self.at_most is not None:
            try:
                limit = float(self.at_most)
            except (TypeError, ValueError):
                raise ValueError(f"DomainConstraint({self.name!r}): at_most must be a number, got {self.at_most!r}") from None
            if not math.isfinite(limit):
                raise ValueError(f"DomainConstraint({self.name!r}): at_most must be finite, got {self.at_most!r}")
            object.__setattr__(self, "at_most", limit)
        elif not (self.not_worse_than == "uniform" or isinstance(self.not_worse_than, Mapping)):
            raise ValueError(
                f"DomainConstraint({self.name!r}): not_worse_than must be 'uniform' or a mixture, got {self.not_worse_than!r}"
            )

    def validate(self, available: Sequence[str], mixture_domains: Sequence[str]) -> None:
        _check_domains([self.name], available, f"DomainConstraint({self.name!r})")
        if self.not_worse_than is not None:
            reference_weights(self.not_worse_than, mixture_domains, f"DomainConstraint({self.name!r}) not_worse_than")

    def describe(self) -> str:
        if self.at_most is not None:
            return f"{self.name} <= {self.at_most:g}"
        ref = self.not_worse_than if isinstance(self.not_worse_than, str) else "reference"
        return f"{self.name} not worse than {ref}"


def objective_from_config(config: Mapping[str, Any] | None) -> MixtureObjective | None:
    """The objective :meth:`MixtureObjective.to_config` described (None: the reported value)."""
    if config is None:
        return None
    kind = config.get("kind")
    if kind == "mean":
        return MeanLoss()
    if kind == "domain":
        return DomainLoss(config["name"])
    if kind == "weighted":
        return WeightedLoss(config["weights"])
    if kind == "worst-excess":
        return WorstExcessLoss(config.get("reference", "uniform"), config.get("domains"))
    if kind == "chebyshev":
        parts = [objective_from_config(c) for c in config["objectives"]]
        return ChebyshevScalarization([p for p in parts if p is not None], config["weights"], config["low"],
                                      config["span"])
    raise ValueError(f"unknown stored objective {dict(config)!r}")


def parse_objective(spec: str | MixtureObjective | None) -> MixtureObjective | None:
    """An objective from an object or its command-line spelling: ``mean``, ``worst-excess``,
    ``domain:NAME``, ``weighted:NAME=W,NAME=W``.  None (or ``value``): the reported value."""
    if spec is None or isinstance(spec, MixtureObjective):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"objective must be a MixtureObjective (e.g. optuna_adso.MeanLoss()) or a string, got {spec!r}")
    text = spec.strip()
    if text in ("value", "reported"):
        return None
    if text == "mean":
        return MeanLoss()
    if text == "worst-excess":
        return WorstExcessLoss("uniform")
    if text.startswith("domain:") and len(text) > len("domain:"):
        return DomainLoss(text[len("domain:"):])
    if text.startswith("weighted:"):
        pairs = {}
        for part in text[len("weighted:"):].split(","):
            name, sep, w = part.partition("=")
            if not sep:
                raise ValueError(f"objective {spec!r}: expected weighted:NAME=W,NAME=W")
            pairs[name.strip()] = w.strip()
        return WeightedLoss(pairs)
    raise ValueError(
        f"unknown objective {spec!r}; expected value, mean, worst-excess, domain:NAME or weighted:NAME=W,..."
    )
