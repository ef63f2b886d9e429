"""``python -m benchmarks run|report|summary|list``: the benchmark suite and its report.

    python -m benchmarks run --quick                 # CI smoke test, under 3 minutes
    python -m benchmarks run --preset headline       # the headline suite -> docs/benchmarks.md
    python -m benchmarks run --preset synth-a --out docs/benchmarks-synth-a.md   # a part of the rest
    python -m benchmarks report --name full          # rebuild the report from saved traces
    python -m benchmarks summary --suites headline paper-all paper-capped synth-a synth-b
                                                     # every part in one verdict table -> docs/benchmarks-full.md
    python -m benchmarks list                        # problems and methods

Traces are saved under ``benchmarks/results/<name>/``; ``run`` computes only the cells that are
missing (or were saved with other settings), then writes the report.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.problems import PAPER_ENV_VAR
from benchmarks.runner import METHODS
from benchmarks.suite import (
    PRESETS,
    PROBLEMS,
    REPO,
    RESULTS,
    SuiteConfig,
    available_problems,
    cell_seconds,
    cells,
    code_fingerprint,
    load_suite,
    make_problem,
    run_suite,
    saved_fingerprint,
    saved_meta,
)

DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
DEFAULT_IMG = REPO / "docs" / "img"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def outputs(p: argparse.ArgumentParser, out: Path = DEFAULT_OUT) -> None:
        p.add_argument("--results", type=Path, default=RESULTS, help="folder of saved traces")
        p.add_argument("--out", type=Path, default=out, help="the markdown report")
        p.add_argument("--img-dir", type=Path, default=DEFAULT_IMG, help="folder for the PNGs")

    run = sub.add_parser("run", help="run the missing cells, then write the report")
    run.add_argument("--quick", action="store_true", help="2 seeds, small budget, a subset (CI)")
    run.add_argument("--preset", choices=list(PRESETS),
                     help="a named suite: headline (the README's figures) or a part of the full protocol")
    run.add_argument("--name", help="suite name: the results subfolder (default: the preset's, full or quick)")
    run.add_argument("--problems", nargs="+", choices=list(PROBLEMS))
    run.add_argument("--methods", nargs="+", choices=list(METHODS))
    run.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10, quick 2)")
    run.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    run.add_argument("--budget", type=float, help="FLOPs budget in full target runs (default 30)")
    run.add_argument(
        "--baseline-budget", type=float,
        help="how far the single-fidelity baselines run (default 5x --budget; final regrets are compared at --budget)",
    )
    run.add_argument("--max-trials", type=int, help="trial cap of ADSO studies")
    run.add_argument("--paper-max-trials", type=int, help="trial cap of the paper's method (default 1000)")
    run.add_argument("--paper-budget", type=float, help="how far the paper's method runs (default: as the baselines)")
    run.add_argument("--recommend-every", type=float, help="ADSO: re-ask recommend() every X target runs")
    run.add_argument(
        "--paper-simulator", help=f"folder with mlp.npz and flops.csv (default ${PAPER_ENV_VAR} or ../shared/data/paper_simulator)"
    )
    run.add_argument("--no-report", action="store_true", help="only compute and save traces")
    run.add_argument(
        "--rerun-stale", action="store_true",
        help="recompute saved cells that older code (optuna_adso, runner, problems) computed",
    )
    run.add_argument("--dry-run", action="store_true", help="print the cells to run and a time estimate, run nothing")
    outputs(run)

    report = sub.add_parser("report", help="rebuild the report from saved traces (computes nothing)")
    report.add_argument("--name", default="full", help="suite name (default full)")
    outputs(report)

    summary = sub.add_parser("summary", help="one verdict table over several saved suites (computes nothing)")
    summary.add_argument("--suites", nargs="+", required=True, help="suite names, e.g. headline paper-all synth-a")
    outputs(summary, REPO / "docs" / "benchmarks-full.md")

    compare = sub.add_parser("compare", help="two saved runs of one method, seed by seed (computes nothing)")
    compare.add_argument("--before", type=Path, required=True, help="a suite's results folder, e.g. benchmarks/results/headline")
    compare.add_argument("--after", type=Path, required=True, help="the other suite's results folder (may be another checkout's)")
    compare.add_argument("--method", default="adso", help="the method to compare (default adso)")
    compare.add_argument("--after-method", help="another method of the --after suite, paired with --method's seeds "
                         "(e.g. adso-warm256 against adso; default: --method)")
    compare.add_argument("--out", type=Path, help="also write the table to this markdown file")

    sub.add_parser("list", help="the suite's problems and methods")
    return parser


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    overrides = {
        key: value
        for key, value in {
            "name": args.name,
            "problems": tuple(args.problems) if args.problems else None,
            "methods": tuple(args.methods) if args.methods else None,
            "seeds": args.seeds,
            "budget": args.budget,
            "baseline_budget": args.baseline_budget,
            "max_trials": args.max_trials,
            "paper_max_trials": args.paper_max_trials,
            "paper_budget": args.paper_budget,
            "recommend_every": args.recommend_every,
            "paper_dir": args.paper_simulator,
        }.items()
        if value is not None
    }
    if args.quick:
        return SuiteConfig.quick_config(**overrides)
    if args.preset:
        preset = {"name": args.preset, **PRESETS[args.preset]}
        return replace(SuiteConfig(), **{**preset, **overrides})
    return replace(SuiteConfig(), **overrides)


def write(config: SuiteConfig, meta: dict, *, results: Path, out: Path, img_dir: Path) -> int:
    from benchmarks.report import write_report

    problems, skipped = available_problems(config)
    traces = load_suite(config, results)
    if not traces:
        print(f"no saved traces for suite {config.name!r} under {results}", file=sys.stderr)
        return 1
    built = {p: make_problem(p, config.paper_dir) for p in problems if p in traces}
    root = results / config.name
    codes: dict[str, int] = {}
    for cell in cells(config, problems):
        code = saved_fingerprint(cell.path(root))
        if code is not None:
            codes[code] = codes.get(code, 0) + 1
    current = code_fingerprint()
    code_note = "; ".join(
        f"{n} cells by code `{c}`{' (the current code)' if c == current else ''}" for c, n in codes.items()
    )
    verdicts = write_report(
        {p: traces[p] for p in problems if p in traces},
        out=out,
        img_dir=img_dir,
        suite_name=config.name,
        budget=config.budget,
        descriptions={p: b.description for p, b in built.items()},
        noisy={p: b.noisy for p, b in built.items()},
        beyond={p: not b.target_runnable for p, b in built.items()},
        settings_note=(
            f"{config.seeds} seeds, budget {config.budget:g} target runs (baselines run on to "
            f"{config.baseline_horizon:g}), ADSO studies capped at {config.max_trials} trials and the "
            f"paper's method at {config.paper_max_trials} (it runs on to "
            f"{config.paper_horizon:g}), `recommend()` re-asked every {config.recommend_every:g} "
            f"target runs; last run {meta.get('finished_at', '?')} on {meta.get('jobs', '?')} "
            f"process(es), {meta.get('last_run_wall_seconds', 0.0) / 60:.1f} min for "
            f"{meta.get('last_run_cells', '?')} cells. Traces: {code_note or 'no code fingerprint'}."
        ),
        command=meta.get("command") or "python -m benchmarks run",
        quick=config.quick,
        skipped=skipped,
        cell_seconds=cell_seconds(config, results),
        cell_cpu=cell_seconds(config, results, "cell_cpu_seconds"),
    )
    status = {s: sum(v.status == s for v in verdicts) for s in ("MET", "NOT MET", "N/A")}
    print(f"wrote {out} (ADSO never loses on {status['MET']} problems, loses on {status['NOT MET']}, "
          f"{status['N/A']} n/a)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        print("problems:", " ".join(PROBLEMS))
        print("methods: ", " ".join(METHODS))
        return 0
    if args.command == "summary":
        from benchmarks.summary import write_summary

        try:
            rows = write_summary(args.suites, results=args.results, out=args.out, img_dir=args.img_dir)
        except ValueError as e:
            parser.error(str(e))
        lost = sum(r.verdict.status == "NOT MET" for r in rows)
        print(f"wrote {args.out}: {len(rows)} problems, ADSO loses on something on {lost}")
        return 0
    if args.command == "compare":
        from benchmarks.compare import compare

        try:
            lines = compare(args.before, args.after, args.method, args.after_method)
        except ValueError as e:
            parser.error(str(e))
        print("\n".join(lines))
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")
        return 0
    if args.command == "report":
        saved = saved_meta(args.name, args.results)
        if saved is None:
            parser.error(f"no suite.json for suite {args.name!r} under {args.results}: run it first")
        config, meta = saved
        return write(config, meta, results=args.results, out=args.out, img_dir=args.img_dir)
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    try:
        config = config_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    meta = run_suite(
        config, jobs=args.jobs, results=args.results, command=command, dry_run=args.dry_run,
        rerun_stale=args.rerun_stale,
    )
    if args.dry_run:
        return 0
    if args.no_report:
        return 0
    return write(config, meta, results=args.results, out=args.out, img_dir=args.img_dir)


if __name__ == "__main__":
    raise SystemExit(main())
