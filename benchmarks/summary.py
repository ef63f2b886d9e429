"""One verdict table over several saved suites: the whole protocol at a glance.

The protocol runs in parts (``--preset headline``, ``paper-all``, ``paper-capped``, ``synth-a``,
``synth-b``) that each fit in an hour of 2 cores; each part has its own report.  This page puts
every problem of every part in one table, ADSO against the strongest single-fidelity baseline of
that problem (as :func:`benchmarks.report.judge` chooses it), and counts where ADSO loses, by
kind of problem, so that no loss hides in a part nobody opens.

Two bars, both from the issues:

- *never loses* (:func:`~benchmarks.report.judge`): median, p90 and worst-seed final regret no
  higher than the baseline's, and sustained FLOPs to 1% no more;
- *2x* (:func:`halves_the_cost`): ADSO's median sustained FLOPs to 1% at most half the
  baseline's; where the baseline does not keep 1% within the budget, ADSO keeps it or ends with
  at most half its median final regret.

    python -m benchmarks summary --suites headline paper-all paper-capped synth-a synth-b \\
        --out docs/benchmarks-full.md
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.problems import Problem, minimize_on_simplex
from benchmarks.report import SUBJECT, Summary, Verdict, _num, calibration_table, judge, kept_within, label
from benchmarks.runner import Trace
from benchmarks.suite import (
    PAPER_PROBLEMS,
    SYNTH_WORLDS,
    SuiteConfig,
    available_problems,
    load_suite,
    make_problem,
    saved_meta,
)


@dataclass
class ProblemResult:
    """One problem of one suite, summarized and judged."""

    problem: str
    suite: str
    kind: str  # "paper" or the synthetic world's small scales: informative / uninformative / misleading
    runnable: bool  # the target can be run (else it lies beyond the largest runnable scale)
    seeds: int
    adso: Summary
    baseline: Summary | None
    verdict: Verdict
    halves: tuple[bool, str]  # the 2x bar: met, and how
    transfer_oracle: float = math.nan  # target regret of the true optimum at the top runnable scale (beyond only)


def halves_the_cost(a: Summary, b: Summary, budget: float) -> tuple[bool, str]:
    """Whether ADSO (``a``) needs at most half the strongest baseline's (``b``) FLOPs to keep 1%.

    A baseline that keeps 1% only past ``budget`` (it runs on) did not keep it within the
    budget: then ADSO must keep 1% within the budget, or end with at most half the baseline's
    median final regret."""
    a1, b1 = kept_within(a.to[0.01][1], budget), kept_within(b.to[0.01][1], budget)
    if math.isfinite(b1):
        if math.isfinite(a1) and a1 <= b1 / 2:
            return True, f"{b1 / a1:.1f}x fewer FLOPs"
        return False, ("never keeps 1%" if not math.isfinite(a1) else f"only {b1 / a1:.1f}x fewer FLOPs")
    if math.isfinite(a1):
        return True, "keeps 1%; the baseline does not within the budget"
    ratio = a.final[1] / b.final[1] if b.final[1] > 0 else math.inf
    if ratio <= 0.5:
        return True, f"median final regret {ratio:.2f}x the baseline's"
    return False, f"median final regret {ratio:.2f}x the baseline's (at most 0.5x needed)"


def transfer_oracle(problem: Problem) -> float:
    """The regret at the target of the mixture truly best at the largest runnable scale: the
    best that "optimize the proxy, transfer its mixture" can do, and what a method that returns
    its best mixture there is bounded by.  Beyond it only a validated extrapolation gains."""
    sign = -1.0 if problem.maximize else 1.0
    top, step = float(problem.top_scale), float(problem.target_step)
    w, _ = minimize_on_simplex(lambda x: sign * np.asarray(problem.loss(x, top, step), dtype=float), problem.k, seed=0)
    return float(problem.regret(w))


def problem_kind(name: str) -> str:
    if name in PAPER_PROBLEMS:
        return "paper"
    if name in SYNTH_WORLDS:
        return str(SYNTH_WORLDS[name]["small_scales"])
    return "other"


def collect(suites: Sequence[str], results: Path) -> tuple[list[ProblemResult], dict[str, dict[str, list[Trace]]]]:
    """Every problem of the saved ``suites`` (the first suite that has a problem wins), with the
    traces the calibration table needs."""
    out: list[ProblemResult] = []
    traces_all: dict[str, dict[str, list[Trace]]] = {}
    for name in suites:
        saved = saved_meta(name, results)
        if saved is None:
            raise ValueError(f"no suite.json for suite {name!r} under {results}: run it first")
        config: SuiteConfig = saved[0]
        problems, _ = available_problems(config)
        traces = load_suite(config, results)
        for p in problems:
            if p in traces_all or p not in traces or SUBJECT not in traces[p]:
                continue
            summaries = {m: Summary.of(m, ts, config.budget) for m, ts in traces[p].items() if ts}
            verdict = judge(p, summaries, config.budget)
            built = make_problem(p, config.paper_dir)
            base = summaries.get(verdict.baseline) if verdict.baseline else None
            out.append(ProblemResult(
                problem=p, suite=name, kind=problem_kind(p), runnable=built.target_runnable,
                seeds=summaries[SUBJECT].seeds, adso=summaries[SUBJECT],
                baseline=base, verdict=verdict,
                halves=halves_the_cost(summaries[SUBJECT], base, config.budget) if base else (False, "no baseline"),
                transfer_oracle=math.nan if built.target_runnable else transfer_oracle(built),
            ))
            traces_all[p] = traces[p]
    return out, traces_all


def _triple(s: Summary) -> str:
    return f"{_num(s.final[1], 4)} / {_num(s.p90, 4)} / {_num(s.worst, 4)}"


def _counts(rows: Sequence[ProblemResult]) -> list[str]:
    lines = ["| problems | how many | ADSO never loses | ADSO at 2x | a seed of ADSO worse than uniform |",
             "|---|---|---|---|---|"]
    groups: dict[str, list[ProblemResult]] = {"all": list(rows)}
    for r in rows:
        groups.setdefault(f"{r.kind}, {'target runnable' if r.runnable else 'target beyond the runs'}", []).append(r)
    for g, rs in groups.items():
        met = sum(r.verdict.status == "MET" for r in rs)
        two = sum(r.halves[0] for r in rs)
        bad = sum(r.adso.worse_than_uniform > 0 for r in rs)
        lines.append(f"| {g} | {len(rs)} | {met} | {two} | {bad} |")
    return lines


def plot_finals(rows: Sequence[ProblemResult], path: Path) -> None:
    """Final regret per problem, ADSO against the strongest baseline: median (dot), 90th
    percentile (bar end) and worst seed (cross), on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-4
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(rows) + 2.0), dpi=110)
    oracle_labelled = False
    for i, r in enumerate(rows):
        for s, dy, color, name in ((r.adso, -0.16, "tab:blue", "ADSO"), (r.baseline, 0.16, "tab:orange", "strongest baseline")):
            if s is None:
                continue
            y = i + dy
            med, p90, worst = (max(v, floor) for v in (s.final[1], s.p90, s.worst))
            ax.plot([med, p90], [y, y], color=color, lw=2.0, label=name if i == 0 else None)
            ax.plot(med, y, "o", color=color, ms=4)
            ax.plot(worst, y, "x", color=color, ms=4)
        if r.verdict.status == "NOT MET":
            ax.axhspan(i - 0.45, i + 0.45, color="tab:red", alpha=0.08, lw=0)
        if math.isfinite(r.transfer_oracle):
            ax.plot(max(r.transfer_oracle, floor), i, "|", color="black", ms=12, mew=1.5,
                    label="transfer oracle (beyond only)" if not oracle_labelled else None)
            oracle_labelled = True
    ax.axvline(1.0, color="black", lw=0.8, ls="--", label="uniform mixture")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.problem}{'' if r.runnable else ' (beyond)'}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("final regret at the target (fraction of the uniform - optimum gap)\n"
                  "dot: median, bar: to the 90th percentile, x: worst seed", fontsize=8)
    ax.set_title("ADSO vs the strongest baseline of each problem (red rows: ADSO loses on something)",
                 fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 2.0 / (len(rows) + 4)), ncol=4, frameon=False)
    ax.grid(alpha=0.3, which="both", axis="x", lw=0.4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_summary(suites: Sequence[str], *, results: Path, out: Path, img_dir: Path) -> list[ProblemResult]:
    """The cross-suite page (and its figure); returns its rows."""
    rows, traces = collect(suites, results)
    if not rows:
        raise ValueError(f"no ADSO traces in suites {list(suites)} under {results}")
    img = Path(img_dir) / "bench-summary-finals.png"
    plot_finals(rows, img)
    lost = [r.problem for r in rows if r.verdict.status == "NOT MET"]
    seeds = sorted({r.seeds for r in rows})
    lines = [
        "# Benchmarks: the whole protocol",
        "",
        f"Every problem of the suites {', '.join(f'`{s}`' for s in suites)} "
        f"({len(rows)} problems, {'/'.join(map(str, seeds))} seeds), ADSO against the strongest",
        "single-fidelity baseline of each problem (both parametrizations of every family; see",
        "[the headline report](benchmarks.md) for the configurations and the definitions).",
        "Final regret is median / 90th percentile / worst seed at the budget; *FLOPs to 1%* is the",
        "median FLOPs after which the recommendation stays under 1% of the gap (full runs at the",
        "target, or at the largest runnable scale when the target lies beyond it).",
        "",
        "- **never loses**: no higher median, p90 or worst-seed final regret (beyond 0.001 of the",
        "  gap) and no more FLOPs to a kept 1%.",
        "- **2x**: at most half the baseline's FLOPs to a kept 1%; where the baseline does not keep",
        "  1% within the budget, ADSO keeps it, or ends with at most half its median final regret.",
        "- **transfer oracle** (targets beyond the runs): the target regret of the mixture truly best",
        "  at the largest runnable scale, the best that optimizing there and transferring can do.",
        "  Above it, a method lost at that scale; below it, it beat plain transfer.",
        "",
        f"ADSO loses on something on **{len(lost)} of {len(rows)}** problems"
        + (f": {', '.join(lost)}." if lost else "."),
        "",
        *_counts(rows),
        "",
        f"![final regret per problem]({os.path.relpath(img, Path(out).parent)})",
        "",
        "| problem | suite | kind | ADSO: FLOPs to 1%, seeds | ADSO final | strongest baseline "
        "| its FLOPs to 1%, seeds | its final | transfer oracle | never loses | 2x |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r.baseline
        where = "runnable" if r.runnable else "beyond"
        base_cells = (f"{label(r.verdict.baseline)} | {_num(b.to[0.01][1], 1)}, {b.reached[0.01]}/{b.seeds} "
                      f"| {_triple(b)}") if b is not None else "- | - | -"
        why = f" ({r.verdict.why})" if r.verdict.why else ""
        lines.append(
            f"| {r.problem} | {r.suite} | {r.kind}, {where} "
            f"| {_num(r.adso.to[0.01][1], 1)}, {r.adso.reached[0.01]}/{r.adso.seeds} | {_triple(r.adso)} "
            f"| {base_cells} | {_num(r.transfer_oracle, 4) if math.isfinite(r.transfer_oracle) else '-'} "
            f"| **{r.verdict.status}**{why} | {'yes' if r.halves[0] else 'no'}: {r.halves[1]} |"
        )
    lines += [""] + calibration_table(traces, {r.problem: not r.runnable for r in rows})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines).rstrip() + "\n")
    return rows
