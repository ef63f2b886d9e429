"""Did a change help?  Two saved runs on the same problems, compared seed by seed: one method
before and after a change, or two methods of one suite (a warm start against a cold one).

An ADSO study's final regret depends on its whole trajectory: one different early proposal and
every later fit, proposal and the final recommendation differ.  Five seeds of one code end
synth-21 at 0.16, 0.16, 0.17, 0.34 and 0.52 of the gap, so two unpaired medians of five seeds
say little.  This puts the same seeds of the same problem side by side, counts the seeds each
side wins by more than the protocol's tolerance, and gives both sides' median, 90th percentile
and worst seed of the final regret, and the median sustained FLOPs to 1% (with how many seeds
kept it).

    python -m benchmarks compare --before benchmarks/results/headline \\
        --after ../variant/benchmarks/results/headline --method adso

Each side is a suite's results folder (``<results>/<suite name>``, with its ``suite.json``), so
the two can come from two checkouts.  ``--after-method`` pairs another method's seeds on the
``after`` side (default: the same method):

    python -m benchmarks compare --before benchmarks/results/warm-start \
        --after benchmarks/results/warm-start --method adso --after-method adso-warm256

Computes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.report import FLOOR_TOL, _num, flops_to_stay, percentiles, quartiles, regret_at
from benchmarks.runner import Trace
from benchmarks.suite import load_suite, saved_meta


@dataclass(frozen=True)
class PairedComparison:
    """One problem, the seeds both sides ran, their final regrets and FLOPs to a kept 1%."""

    problem: str
    seeds: tuple[int, ...]
    before: np.ndarray  # final regret per seed (read at the suite's budget)
    after: np.ndarray
    before_to_1pct: np.ndarray  # sustained FLOPs to 1% per seed (inf: not kept)
    after_to_1pct: np.ndarray
    tolerance: float = FLOOR_TOL

    @property
    def better(self) -> int:
        """Seeds where ``after`` ends lower by more than the tolerance."""
        return int(np.sum(self.after < self.before - self.tolerance))

    @property
    def worse(self) -> int:
        return int(np.sum(self.after > self.before + self.tolerance))

    @property
    def ties(self) -> int:
        return len(self.seeds) - self.better - self.worse

    @property
    def median_change(self) -> float:
        """Median over seeds of (after - before): negative when the change helped."""
        return float(np.median(self.after - self.before)) if len(self.seeds) else math.nan

    @staticmethod
    def spread(finals: np.ndarray) -> tuple[float, float, float]:
        """Median, 90th percentile and worst seed."""
        if len(finals) == 0:
            return (math.nan,) * 3
        return float(np.median(finals)), percentiles(list(finals), (90,))[0], float(np.max(finals))


def paired(
    before: Mapping[str, Sequence[Trace]],
    after: Mapping[str, Sequence[Trace]],
    budget: float | None = None,
    tolerance: float = FLOOR_TOL,
) -> list[PairedComparison]:
    """Per problem both sides ran (in ``before``'s order), the seeds both ran.

    ``budget``: where final regrets are read (None: at each trace's end)."""
    rows = []
    for problem, traces in before.items():
        if problem not in after:
            continue
        a = {t.seed: t for t in traces}
        b = {t.seed: t for t in after[problem]}
        seeds = tuple(sorted(set(a) & set(b)))
        if not seeds:
            continue
        rows.append(PairedComparison(
            problem=problem,
            seeds=seeds,
            before=np.array([regret_at(a[s], budget) for s in seeds]),
            after=np.array([regret_at(b[s], budget) for s in seeds]),
            before_to_1pct=np.array([flops_to_stay(a[s], 0.01) for s in seeds]),
            after_to_1pct=np.array([flops_to_stay(b[s], 0.01) for s in seeds]),
            tolerance=tolerance,
        ))
    return rows


def load_method(folder: Path, method: str) -> tuple[dict[str, list[Trace]], float]:
    """``method``'s saved traces per problem in the suite saved under ``folder``, and the
    suite's budget."""
    folder = Path(folder)
    saved = saved_meta(folder.name, folder.parent)
    if saved is None:
        raise ValueError(f"no suite.json under {folder}: give a suite's results folder, e.g. benchmarks/results/headline")
    config, _ = saved
    if method not in config.methods:
        raise ValueError(f"suite {folder} ran {', '.join(config.methods)}, not {method!r}")
    traces = load_suite(config, folder.parent)
    return {p: m[method] for p, m in traces.items() if method in m}, config.budget


def _median_flops(flops: np.ndarray) -> str:
    """Median FLOPs to a kept 1% ("never" when half the seeds or more did not keep it), and how
    many seeds kept it."""
    kept = int(np.isfinite(flops).sum())
    return f"{_num(quartiles(list(flops))[1], 1)} ({kept}/{len(flops)})"


def comparison_table(rows: Sequence[PairedComparison], before: str = "before", after: str = "after") -> list[str]:
    """Markdown lines: one row per problem."""
    lines = [
        f"| problem | seeds | {before}: median / p90 / worst | {after}: median / p90 / worst | "
        f"{after} better / worse / tied (seeds) | median change | FLOPs to 1% kept: {before} | {after} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = " / ".join(_num(v, 4) for v in r.spread(r.before))
        b = " / ".join(_num(v, 4) for v in r.spread(r.after))
        lines.append(
            f"| {r.problem} | {len(r.seeds)} | {a} | {b} | {r.better} / {r.worse} / {r.ties} | "
            f"{r.median_change:+.4f} | {_median_flops(r.before_to_1pct)} | {_median_flops(r.after_to_1pct)} |"
        )
    return lines


def compare(before: Path, after: Path, method: str = "adso", after_method: str | None = None) -> list[str]:
    """The table of :func:`comparison_table` for two suites' results folders: ``method`` in
    ``before`` against ``after_method`` (default ``method``) in ``after``."""
    after_method = after_method or method
    a, budget_a = load_method(before, method)
    b, budget_b = load_method(after, after_method)
    if not math.isclose(budget_a, budget_b):
        raise ValueError(f"the suites ran different budgets ({budget_a:g} and {budget_b:g} target runs)")
    rows = paired(a, b, budget_a)
    if not rows:
        raise ValueError(f"{before} and {after} share no (problem, seed) of {method!r} and {after_method!r}")
    labels = [Path(before).name, Path(after).name]
    if after_method != method:  # two methods: name them, with their folders where these differ
        labels = [m if labels[0] == labels[1] else f"{f}/{m}" for f, m in zip(labels, (method, after_method))]
    return comparison_table(rows, *labels)
