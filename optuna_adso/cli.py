"""The ``adso`` command: run a mixture study from a YAML file, watch it, and take its answer away.

::

    adso demo                                  # a demo study on SQLite, plots published
    adso optimize study.yaml [--workers 4 --gpus 0,1,2,3] [--storage URL]
    adso status study.yaml                     # progress, cost spent, current recommendation
    adso recommend study.yaml [--json]
    adso export study.yaml --format megatron -o mixture.json
    adso import runs.csv --storage URL --study-name NAME [--dry-run]   # runs you already have
    adso export-runs --storage URL --study-name NAME --out runs.csv
    adso plot study.yaml --out plots/          # PNGs of every figure
    adso dashboard --storage sqlite:///adso.db # optuna-dashboard on the study

``status``, ``recommend``, ``export`` and ``plot`` take either the config file or
``--storage URL [--study-name NAME]``.  A bad config exits with code 2 and names the bad key.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from optuna_adso import records
from optuna_adso.config import PRETRAIN, ConfigError, StudyConfig, load_config, resolve_objective

__all__ = ["main"]


class CommandError(Exception):
    """A problem the user can fix, reported as one line and exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- storage and workers (another module's job; a plain fallback while it is absent) ----------


def open_storage(url: str | None) -> optuna.storages.BaseStorage | str:
    try:
        from optuna_adso.storage import open_storage as _open
    except ImportError:  # fallback: Optuna's own handling of the URL
        return url or "sqlite:///adso.db"
    return _open(url)


def run_workers(worker_fn: Callable[[int], object], n_workers: int, gpus: Sequence[int] | None) -> list[int]:
    try:
        from optuna_adso.workers import run_workers as _run
    except ImportError:
        return _run_workers_fallback(worker_fn, n_workers, gpus)
    return _run(worker_fn, n_workers, gpus=list(gpus) if gpus else None)


def _run_workers_fallback(worker_fn: Callable[[int], object], n: int, gpus: Sequence[int] | None) -> list[int]:
    import os

    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(n):
        if gpus:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus[i % len(gpus)])
        p = ctx.Process(target=worker_fn, args=(i,))
        p.start()
        procs.append(p)
    for p in procs:
        p.join()
    return [int(p.exitcode or 0) for p in procs]


# --- building a study from a config ------------------------------------------------------------


class ConfigObjective:
    """The Optuna objective for ``objective: package.module:function``.

    It declares the config's mixture and scales, then calls
    ``function(trial, mixture, scale, steps)``, which trains a ``scale``-sized model on
    ``mixture`` for up to ``steps`` steps, reports ``trial.report(value, step)`` as it goes,
    honours ``trial.should_prune()`` and returns the final value.
    """

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.fn = resolve_objective(config)

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna_adso as adso

        cfg = self.config
        mixture = adso.suggest_mixture(
            trial, "mix", cfg.domain_names,
            min_weight={d.name: d.min_weight for d in cfg.domains if d.min_weight is not None} or None,
            max_weight={d.name: d.max_weight for d in cfg.domains if d.max_weight is not None} or None,
        )
        scale = adso.suggest_scale(trial, "model_size", [float(s) for s in cfg.scales])
        return self.fn(trial, mixture, scale, cfg.target_step)


def build_objective(config: StudyConfig) -> tuple[Callable[[optuna.Trial], float], float, Any]:
    """(objective, target scale in parameters, cost model) for a config."""
    import optuna_adso as adso

    if config.objective != PRETRAIN:
        if not all(isinstance(s, float) for s in config.scales) or not isinstance(config.target_scale, float):
            raise ConfigError("scales", "expected numbers (scale names need 'objective: pretrain')", config.source)
        return ConfigObjective(config), config.target_scale, adso.FlopsCost(tokens_per_step=config.tokens_per_step)
    try:
        from optuna_adso.pretrain.data import Domain
        from optuna_adso.pretrain.objective import PretrainObjective
    except ImportError as exc:
        raise CommandError(f"the built-in pre-training objective is not available ({exc})") from None
    missing = [d.name for d in config.domains if not d.path]
    if missing:
        raise ConfigError(f"domains.{missing[0]}.path", "the pretrain objective needs a data path for every domain",
                          config.source)
    options = dict(config.pretrain)
    options.setdefault("steps", config.target_step)
    options.setdefault("seed", config.seed)
    domains = []
    for d in config.domains:
        try:
            domains.append(Domain.from_files(d.name, d.path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"domains.{d.name}.path", str(exc), config.source) from None
    try:
        objective = PretrainObjective(domains, list(config.scales), **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError("pretrain", f"bad PretrainObjective option ({exc})", config.source) from None
    target = config.target_scale
    try:  # a named target needs the exact parameter count: tokenizes the data once (cached)
        target_params = float(objective.n_params(target)) if isinstance(target, str) else float(target)
    except ValueError as exc:
        raise ConfigError("domains", f"the pretrain objective cannot use this data ({exc})", config.source) from None
    return objective, target_params, objective.cost()


def build_sampler(config: StudyConfig, target_scale: float, cost: Any) -> Any:
    import optuna_adso as adso

    try:
        return adso.ADSOSampler(target={"model_size": target_scale, "step": config.target_step}, cost=cost,
                                seed=config.seed, **dict(config.sampler))
    except TypeError as exc:
        raise ConfigError("sampler", f"unknown ADSOSampler option ({exc})", config.source) from None
    except ValueError as exc:
        raise ConfigError("sampler", str(exc), config.source) from None


def _budget_callbacks(config: StudyConfig, sampler: Any) -> list[Callable]:
    from optuna_adso.budget import FlopsBudget

    out: list[Callable] = []
    if config.budget_flops is not None:
        out.append(FlopsBudget(config.budget_flops, sampler=sampler))
    if config.budget_target_runs is not None:
        out.append(FlopsBudget(config.budget_target_runs, sampler=sampler, in_target_runs=True))
    if config.budget_trials is not None:
        out.append(optuna.study.MaxTrialsCallback(config.budget_trials, states=None))
    return out


def _spent_fraction(config: StudyConfig, study: optuna.Study, sampler: Any) -> float:
    """The largest fraction of any budget already used (1.0 = the study is done)."""
    from optuna_adso.recommendation import flops_spent

    fractions = [0.0]
    spent = flops_spent(study, sampler)
    if config.budget_flops is not None:
        fractions.append(spent / config.budget_flops)
    if config.budget_target_runs is not None:
        fractions.append(spent / (config.budget_target_runs * sampler.target_cost))
    if config.budget_trials is not None:
        fractions.append(len(records.all_trials(study)) / config.budget_trials)
    return max(fractions)


class _Progress:
    """A tqdm bar over the budget (the most advanced of FLOPs, target runs or trials)."""

    def __init__(self, config: StudyConfig, sampler: Any) -> None:
        from tqdm.auto import tqdm

        self.config, self.sampler = config, sampler
        self.bar = tqdm(total=100, desc=f"adso {config.study_name}", leave=True,
                        bar_format="{desc}: {percentage:3.0f}% of budget |{bar}| [{elapsed}<{remaining}{postfix}]")

    def __call__(self, study: optuna.Study, trial: Any) -> None:
        done = min(100.0, 100.0 * _spent_fraction(self.config, study, self.sampler))
        self.bar.set_postfix(trial=trial.number, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def optimize_worker(config: StudyConfig, index: int, show_progress: bool = True, dashboard_every: int = 10) -> None:
    """One worker of ``adso optimize``: its own storage connection and objective, the shared study."""
    from optuna_adso.dashboard import DashboardCallback
    from optuna_adso.pruner import ADSOPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective, target_scale, cost = build_objective(config)
    sampler = build_sampler(config, target_scale, cost)
    study = optuna.create_study(storage=open_storage(config.storage), sampler=sampler, pruner=ADSOPruner(),
                                study_name=config.study_name, direction=config.direction, load_if_exists=True)
    if _spent_fraction(config, study, sampler) >= 1.0:
        print(f"study {config.study_name!r}: budget already spent; nothing to do")
        return
    callbacks = _budget_callbacks(config, sampler)
    if dashboard_every > 0 and index == 0:
        callbacks.append(DashboardCallback(dashboard_every, sampler=sampler))
    progress = _Progress(config, sampler) if show_progress and index == 0 else None
    if progress is not None:
        callbacks.append(progress)
    try:
        study.optimize(objective, callbacks=callbacks, catch=())
    finally:
        if progress is not None:
            progress.close()


# --- opening an existing study -----------------------------------------------------------------


def _study_from_args(args: argparse.Namespace) -> tuple[optuna.Study, StudyConfig | None]:
    config = load_config(args.config) if args.config else None
    storage_url = args.storage or (config.storage if config else None)
    if storage_url is None:
        raise CommandError("give a CONFIG file or --storage URL", code=2)
    storage = open_storage(storage_url)
    name = args.study_name or (config.study_name if config else None)
    if name is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if len(names) != 1:
            raise CommandError(f"--study-name is needed: the storage holds {len(names)} studies {names[:10]}", code=2)
        name = names[0]
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise CommandError(f"no study named {name!r} in {storage_url}") from None
    return study, config


def _recommendation(study: optuna.Study, objective: str | None = None) -> Any:
    from optuna_adso.recommendation import recommend

    try:
        return recommend(study, objective=objective)
    except ValueError as exc:
        raise CommandError(f"study {study.study_name!r}: {exc}") from None


# --- commands ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    import time

    name = args.study_name or f"demo-{int(time.time())}"
    argv = ["--trials", str(args.trials), "--storage", args.storage, "--study-name", name, *extra]
    module = "optuna_adso.simulated_demo" if args.simulated else "optuna_adso.pretrain.demo"
    try:
        demo = importlib.import_module(module)
    except ImportError as exc:
        raise CommandError(f"cannot import the demo {module} ({exc})") from None
    demo.main(argv)
    if not args.no_publish:
        from optuna_adso.dashboard import publish

        publish(optuna.load_study(study_name=name, storage=open_storage(args.storage)))
        print(f"plots published to study {name!r}; see them with: adso dashboard --storage {args.storage}")
    return 0


def cmd_optimize(args: argparse.Namespace, extra: list[str]) -> int:
    gpus = None
    if args.gpus:
        try:
            gpus = tuple(int(g) for g in args.gpus.split(","))
        except ValueError:
            raise CommandError(f"--gpus expects indices like 0,1,2, got {args.gpus!r}", code=2) from None
    config = load_config(args.config).with_overrides(storage=args.storage, workers=args.workers, gpus=gpus)
    # Validate everything that can be checked before compute, in this process.
    objective, target_scale, cost = build_objective(config)
    build_sampler(config, target_scale, cost)
    # Create the schema and the study once, here: workers creating a fresh database at the same
    # moment would race on its tables.
    optuna.create_study(storage=open_storage(config.storage), study_name=config.study_name,
                        direction=config.direction, load_if_exists=True)
    if config.workers == 1 and not config.gpus:
        optimize_worker(config, 0, show_progress=not args.no_progress, dashboard_every=args.dashboard_every)
    else:
        n = config.workers if config.workers > 1 else len(config.gpus or (1,))
        worker = functools.partial(optimize_worker, config, show_progress=not args.no_progress,
                                   dashboard_every=args.dashboard_every)
        codes = run_workers(worker, n, config.gpus)
        if any(codes):
            raise CommandError(f"workers exited with codes {codes}")
    study, _ = _study_from_args(argparse.Namespace(config=args.config, storage=config.storage, study_name=None))
    from optuna_adso.dashboard import publish

    rec = publish(study)
    if rec is not None:
        print(rec)
    return 0


def cmd_status(args: argparse.Namespace, extra: list[str]) -> int:
    from optuna_adso.study_model import NoStudyConfig, StudyModel, settings_for_study

    study, config = _study_from_args(args)
    trials = records.all_trials(study)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    print(f"study {study.study_name!r}: {len(trials)} trials (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    try:
        settings = settings_for_study(study)
    except NoStudyConfig:
        print("no ADSO trial yet: nothing spent, no recommendation")
        return 0
    model = StudyModel.load(study, settings)
    spent = 0.0 if model is None else model.flops_spent()
    line = f"cost spent: {spent:.4g} ({spent / settings.target_cost:.2f} target runs)"
    if config is not None:
        line += f"; budget used: {100 * _spent_fraction(config, study, settings):.0f}%"
    print(line)
    print(_recommendation(study))
    return 0


def cmd_recommend(args: argparse.Namespace, extra: list[str]) -> int:
    study, _ = _study_from_args(args)
    rec = _recommendation(study, args.objective)
    if args.json:
        print(json.dumps({"mixture": rec.mixture, "mean": rec.mean, "std": rec.std, "flops_spent": rec.flops_spent,
                          "target": rec.target, "n_trials": rec.n_trials, "notes": rec.notes,
                          "objective": rec.objective, "domains": rec.domains}, indent=2))
    else:
        print(rec)
        if args.objective is not None:
            print(f"objective: {rec.objective}")
        for d, (m, sd) in rec.domains.items():
            print(f"  {d}: {m:.4f} +- {sd:.4f}")
    return 0


def _parse_paths(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        domain, sep, path = item.partition("=")
        if not sep or not domain or not path:
            raise CommandError(f"--path expects DOMAIN=PATH, got {item!r}", code=2)
        out[domain] = path
    return out


def cmd_export(args: argparse.Namespace, extra: list[str]) -> int:
    from optuna_adso.export import export_mixture

    study, config = _study_from_args(args)
    paths = _parse_paths(args.path) or (config.paths if config else None)
    rec = _recommendation(study)
    try:
        text = export_mixture(rec.mixture, args.format, paths=paths, drop_below=args.drop_below)
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote the {args.format} mixture of study {study.study_name!r} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _comma_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise CommandError(f"{what} expects a comma-separated list, got {text!r}", code=2)
    return items


def cmd_import(args: argparse.Namespace, extra: list[str]) -> int:
    from optuna_adso.runs_io import add_runs

    storage = open_storage(args.storage)
    try:
        study = optuna.load_study(study_name=args.study_name, storage=storage)
    except KeyError:
        if not args.create:
            raise CommandError(
                f"no study named {args.study_name!r} in {args.storage} (pass --create to make one)"
            ) from None
        study = optuna.create_study(study_name=args.study_name, storage=storage, direction=args.direction)
    try:
        report = add_runs(
            study, args.runs, mixture_name=args.mixture_name, scale_name=args.scale_name,
            domains=_comma_list(args.domains, "--domains"), scales=_comma_list(args.scales, "--scales"),
            tokens_per_step=args.tokens_per_step, format=args.format, dry_run=args.dry_run,
        )
    except (ValueError, TypeError, ImportError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(report)
    return 0


def cmd_export_runs(args: argparse.Namespace, extra: list[str]) -> int:
    from optuna_adso.runs_io import export_runs

    study, _ = _study_from_args(args)
    try:
        path = export_runs(study, args.out)
    except (ValueError, ImportError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote the runs of study {study.study_name!r} to {path}", file=sys.stderr)
    return 0


def cmd_plot(args: argparse.Namespace, extra: list[str]) -> int:
    from tqdm.auto import tqdm

    from optuna_adso.dashboard import PLOTS
    from optuna_adso.visualization import write_image

    study, _ = _study_from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, plot in tqdm(PLOTS.items(), desc="plots", unit="figure"):
        fig = plot(study)
        fig.write_html(out / f"{name}.html") if args.html else write_image(fig, out / f"{name}.png")
    print(f"wrote {len(PLOTS)} figures to {out}/")
    return 0


def cmd_dashboard(args: argparse.Namespace, extra: list[str]) -> int:
    from optuna_adso.dashboard import publish, serve

    config = load_config(args.config) if args.config else None
    url = args.storage or (config.storage if config else None)
    if url is None:
        raise CommandError("give --storage URL (or a CONFIG file)", code=2)
    storage = open_storage(url)
    if args.publish:
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            publish(optuna.load_study(study_name=summary.study_name, storage=storage))
    serve(storage, host=args.host, port=args.port)
    return 0


# --- argument parsing --------------------------------------------------------------------------


def _study_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="the study's YAML config (or use --storage)")
    p.add_argument("--storage", help="storage URL, e.g. sqlite:///adso.db")
    p.add_argument("--study-name", help="study name (needed when the storage holds several)")


def build_parser() -> argparse.ArgumentParser:
    from optuna_adso.export import FORMATS

    parser = argparse.ArgumentParser(prog="adso", description="Find the best pre-training data mixture at a target scale.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo study on SQLite and publish its plots")
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--simulated", action="store_true",
                   help="a simulated world (optuna_adso.simulated_demo) instead of real tiny-LM pre-training")
    p.add_argument("--storage", default="sqlite:///adso_demo.db")
    p.add_argument("--study-name")
    p.add_argument("--no-publish", action="store_true", help="skip publishing plots to the dashboard")
    p.set_defaults(func=cmd_demo, passthrough=True)
    p = sub.add_parser("optimize", help="run (or resume) the study a config file describes")
    p.add_argument("config")
    p.add_argument("--storage", help="overrides the config's storage")
    p.add_argument("--workers", type=int, help="processes sharing the study (overrides the config)")
    p.add_argument("--gpus", help="GPU indices, e.g. 0,1,2,3: one per worker, round robin")
    p.add_argument("--dashboard-every", type=int, default=10, help="publish plots every N trials (0: never)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_optimize)
    p = sub.add_parser("status", help="progress, cost spent and the current recommendation")
    _study_options(p)
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("recommend", help="the mixture predicted best at the target")
    _study_options(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--objective", help="answer for another objective from the same runs: value, mean, "
                   "worst-excess, domain:NAME or weighted:NAME=W,NAME=W (default: the study's own)")
    p.set_defaults(func=cmd_recommend)
    p = sub.add_parser("export", help="write the recommended mixture for a trainer")
    _study_options(p)
    p.add_argument("--format", "-f", required=True, choices=sorted(FORMATS))
    p.add_argument("--output", "-o", help="file to write (default: stdout)")
    p.add_argument("--path", action="append", default=[], metavar="DOMAIN=PATH",
                   help="data location of a domain (default: the config's domain paths, else the names)")
    p.add_argument("--drop-below", type=float, help="leave out domains at or below this weight")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="add runs you already have (CSV, JSON Lines, Parquet) to a study")
    p.add_argument("runs", help="the runs file (see docs/import.md for its columns)")
    p.add_argument("--storage", required=True, help="storage URL, e.g. sqlite:///adso.db")
    p.add_argument("--study-name", required=True)
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], help="default: from the file's suffix")
    p.add_argument("--dry-run", action="store_true", help="check the file and say what would be imported")
    p.add_argument("--mixture-name", help="the name given to suggest_mixture (default: the study's, else mix)")
    p.add_argument("--scale-name", help="the name given to suggest_scale (default: the study's, else model_size)")
    p.add_argument("--domains", help="comma-separated domains, when the study declares none yet")
    p.add_argument("--scales", help="comma-separated scale choices (1e8 or 100M), when the study declares none yet")
    p.add_argument("--tokens-per-step", type=float, help="turns a 'tokens' column into steps")
    p.add_argument("--create", action="store_true", help="create the study if the storage lacks it")
    p.add_argument("--direction", choices=["minimize", "maximize"], default="minimize",
                   help="direction of a study made by --create")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export-runs", help="write a study's runs (CSV, JSON Lines or Parquet) for add_runs")
    _study_options(p)
    p.add_argument("--out", "-o", required=True, help="file to write; its suffix says the format")
    p.set_defaults(func=cmd_export_runs)
    p = sub.add_parser("plot", help="write every figure as PNG (kaleido + Chromium) or HTML")
    _study_options(p)
    p.add_argument("--out", default="adso_plots")
    p.add_argument("--html", action="store_true")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("dashboard", help="start optuna-dashboard on a storage")
    p.add_argument("config", nargs="?")
    p.add_argument("--storage")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--publish", action="store_true", help="publish our plots to every study first")
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args, extra) or 0)
    except ConfigError as exc:
        print(f"adso {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"adso {args.command}: error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
