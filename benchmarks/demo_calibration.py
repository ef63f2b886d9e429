"""Are ``adso.predict``'s intervals honest about real training?  Checked on the demo's study.

The simulator's calibration (:mod:`benchmarks.calibration`) scores the intervals against a known
truth.  Real runs have no known truth, but they have seeds: the expected value of a mixture at the
target is the mean over new runs, and each new run is a draw of "one new run".  This trains
chosen mixtures of a finished demo study at its target with seeds no run of the study used, and
compares them with what ``predict`` said before any of them ran (and, for the recommended mixture,
what ``recommend`` said: it may answer from another model):

- the interval for the expected value against the mean of the new runs (its own standard error
  added in quadrature: the runs' mean is an estimate too), as a z-score;
- the interval for one new run against each new run.

    python -m benchmarks.demo_calibration --storage sqlite:///adso_demo.db --out docs/demo-calibration.md

Mixtures: the recommendation, the study's best runs at the target (where a lucky run is most
likely to be mistaken for a good mixture), and the uniform mixture.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import optuna
import torch

import optuna_adso as adso
from optuna_adso.pretrain.demo import TARGET_SCALE, make_objective, target_runs

FRESH_SEED = 10_000  # new runs use seeds from here on; the study's own are drawn from its seed
Z90 = NormalDist().inv_cdf(0.95)


@dataclass(frozen=True)
class MixtureCheck:
    label: str
    mixture: dict[str, float]
    predicted: adso.Prediction
    runs: list[float]
    source: str = "predict"  # or "recommend": whose statement is scored

    @property
    def runs_mean(self) -> float:
        return float(np.mean(self.runs))

    @property
    def runs_se(self) -> float:
        return float(np.std(self.runs, ddof=1) / math.sqrt(len(self.runs))) if len(self.runs) > 1 else math.nan

    @property
    def z(self) -> float:
        """The runs' mean against the predicted expected value, both uncertainties counted."""
        p = self.predicted
        return (self.runs_mean - p.mean) / math.sqrt(p.std**2 + p.noise_std**2 / len(self.runs))

    @property
    def runs_inside(self) -> int:
        lo, hi = self.predicted.interval(0.9, new_run=True)
        return sum(lo <= r <= hi for r in self.runs)


def _mixtures(study: optuna.Study, n_best: int, rec: adso.Recommendation) -> list[tuple[str, dict[str, float]]]:
    chosen = [("recommended", dict(rec.mixture))]
    for t in sorted(target_runs(study), key=lambda t: t.value)[:n_best]:
        if any(max(abs(t.user_attrs["mix"][d] - w[d]) for d in w) < 1e-6 for _, w in chosen):
            continue
        chosen.append((f"trial {t.number} ({t.value:.4f})", dict(t.user_attrs["mix"])))
    names = list(rec.mixture)
    chosen.append(("uniform", dict.fromkeys(names, 1.0 / len(names))))
    return chosen


def check(study: optuna.Study, n_seeds: int = 4, n_best: int = 3, cache_dir: str = ".adso_cache") -> list[MixtureCheck]:
    """Predict, then train each chosen mixture ``n_seeds`` times at the target with fresh seeds.

    The first check is ``recommend``'s own statement about its mixture (it may answer from
    another model than ``predict``: the anchor-only GP where the cheap fidelities have not
    earned their place); the rest are ``predict``'s."""
    rec = adso.recommend(study)
    chosen = _mixtures(study, n_best, rec)
    predictions = adso.predict(study, [w for _, w in chosen])  # before any new run exists
    stated = adso.Prediction(dict(rec.mixture), rec.mean, rec.std, rec.noise_std, dict(rec.target))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results = []
    try:
        objectives = [make_objective(cache_dir, FRESH_SEED + i).prepare() for i in range(n_seeds)]
        for (label, w), p in zip(chosen, predictions):
            runs = [o.train(w, TARGET_SCALE).objective for o in objectives]
            results.append(MixtureCheck(label, w, p, runs))
            logging.info("%s: predicted %.4f +- %.4f, new runs %s", label, p.mean, p.std, np.round(runs, 4))
        results.append(MixtureCheck("recommended", dict(rec.mixture), stated, results[0].runs, "recommend"))
    finally:
        torch.set_num_threads(threads)
    return results


def report(results: list[MixtureCheck], title: str) -> str:
    lines = [
        f"### {title}", "",
        "| mixture | stated by | predicted expected value (90%) | new runs: mean +- se | z | one-run 90% interval "
        "| runs inside |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p = r.predicted
        lo, hi = p.interval(0.9)
        nlo, nhi = p.interval(0.9, new_run=True)
        lines.append(
            f"| {r.label} | `{r.source}` | {p.mean:.4f} [{lo:.4f}, {hi:.4f}] | {r.runs_mean:.4f} +- {r.runs_se:.4f} "
            f"| {r.z:+.2f} "
            f"| [{nlo:.4f}, {nhi:.4f}] | {r.runs_inside} of {len(r.runs)} |"
        )
    lines.append("")
    for source in ("predict", "recommend"):
        rows = [r for r in results if r.source == source]
        if not rows:
            continue
        n_runs = sum(len(r.runs) for r in rows)
        inside = sum(r.runs_inside for r in rows)
        covered = sum(abs(r.z) <= Z90 for r in rows)
        lines.append(
            f"`{source}`: expected values inside their 90% interval (|z| <= {Z90:.3f}): {covered} of {len(rows)}; "
            f"mean z {np.mean([r.z for r in rows]):+.2f}. New runs inside the one-run 90% interval: "
            f"{inside} of {n_runs}."
        )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///adso_demo.db")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--seeds", type=int, default=4, help="new runs per mixture")
    parser.add_argument("--best", type=int, default=3, help="the study's best target runs to check")
    parser.add_argument("--cache-dir", default=".adso_cache")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", default=None, help="append the table to this markdown file")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    text = report(check(study, args.seeds, args.best, args.cache_dir), args.title or f"study {study.study_name}")
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
