"""Importing runs you already have (CSV, JSON Lines, Parquet), exporting a study's runs, the CLI."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import DOMAINS, SCALES, make_objective, make_sampler, synthetic_loss

import optuna_adso as adso
from optuna_adso import records
from optuna_adso.cli import main
from optuna_adso.runs_io import parse_scale
from optuna_adso.study_model import StudyModel

STEPS = (100, 250, 500, 1000)
MIXTURES = {
    "a": (0.6, 0.3, 0.1),
    "b": (0.2, 0.2, 0.6),
    "c": (0.1, 0.8, 0.1),
    "d": (0.4, 0.4, 0.2),
}
SCALE_OF = {"a": "10M", "b": "100M", "c": "1B", "d": "10M"}
HEADER = ["run", "step", "value", "mix/web", "mix/code", "mix/books", "model_size"]


def long_rows(runs=MIXTURES, steps=STEPS) -> list[dict]:
    rows = []
    for run, w in runs.items():
        for step in steps:
            row = {"run": run, "step": step, "value": synthetic_loss(w, parse_scale(SCALE_OF[run]), step)}
            row.update({f"mix/{d}": x for d, x in zip(DOMAINS, w)})
            row["model_size"] = SCALE_OF[run]
            rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(cols)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def fresh_study(**kwargs) -> optuna.Study:
    return optuna.create_study(sampler=make_sampler(n_candidates=64), pruner=optuna.pruners.NopPruner(), **kwargs)


def declared_study() -> optuna.Study:
    """A study whose objective already declared the mixture and the scales (one trial ran)."""
    study = fresh_study()
    study.optimize(make_objective(), n_trials=1)
    return study


def imported(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if records.is_imported(t)]


# --- each format -------------------------------------------------------------------------------


def check_imported(study: optuna.Study, n: int = 4) -> None:
    runs = imported(study)
    assert len(runs) == n
    for t in runs:
        run = t.user_attrs["adso:run_id"]
        w = MIXTURES[run]
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert [t.params[f"mix/{d}"] for d in DOMAINS] == pytest.approx(w)
        assert t.user_attrs["mix"] == pytest.approx(dict(zip(DOMAINS, w)))
        assert t.params["model_size"] == parse_scale(SCALE_OF[run])
        assert sorted(t.intermediate_values) == list(STEPS)
        assert t.value == t.intermediate_values[1000]
        assert t.distributions["model_size"].choices == SCALES


def test_csv(tmp_path: Path) -> None:
    study = declared_study()
    report = adso.add_runs(study, write_csv(tmp_path / "runs.csv", long_rows()))
    assert report.runs == ["a", "b", "c", "d"] and report.n_points == 16
    assert len(report.trial_numbers) == 4
    check_imported(study)
    assert imported(study)[0].user_attrs["adso:imported"] == "runs.csv"


def test_jsonl_long_and_wide(tmp_path: Path) -> None:
    study = declared_study()
    path = tmp_path / "runs.jsonl"
    rows = long_rows({k: MIXTURES[k] for k in "ab"})
    wide = []
    for run in "cd":
        w = MIXTURES[run]
        wide.append({"run": run, "mixture": dict(zip(DOMAINS, w)), "model_size": SCALE_OF[run], "steps": list(STEPS),
                     "values": [synthetic_loss(w, parse_scale(SCALE_OF[run]), s) for s in STEPS]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + wide))
    adso.add_runs(study, path)
    check_imported(study)


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    import pyarrow.parquet as pq

    study = declared_study()
    path = tmp_path / "runs.parquet"
    pq.write_table(pa.Table.from_pylist(long_rows()), path)
    adso.add_runs(study, path)
    check_imported(study)


def test_list_of_dicts_with_bare_domain_columns_json_mixture_and_tokens() -> None:
    study = declared_study()
    rows = []
    for r in long_rows():
        w = {d: r.pop(f"mix/{d}") for d in DOMAINS}
        if r["run"] in "ab":
            r.update(w)  # bare domain names: the study declares them
        else:
            r["mixture"] = json.dumps(w)
        if r["run"] == "d":
            r["tokens"] = r.pop("step") * 1024
        rows.append(r)
    adso.add_runs(study, rows, tokens_per_step=1024)
    check_imported(study)


def test_per_domain_values_and_cost_are_kept() -> None:
    study = declared_study()
    rows = long_rows({"a": MIXTURES["a"]})
    for r in rows:
        r["domain/web"], r["domain/code"] = r["value"] + 0.1, r["value"] - 0.1
        r["cost"] = 6 * 1e7 * r["step"]
    adso.add_runs(study, rows)
    (t,) = imported(study)
    assert t.user_attrs["adso:domains"]["1000"] == pytest.approx({"web": t.value + 0.1, "code": t.value - 0.1})
    assert t.user_attrs["val_losses"] == pytest.approx({"web": t.value + 0.1, "code": t.value - 0.1})
    assert t.user_attrs["adso:cost"] == 6e10


def test_into_a_study_that_declares_nothing_yet() -> None:
    study = fresh_study()
    adso.add_runs(study, long_rows(), scales=list(SCALES))
    check_imported(study)
    study.optimize(make_objective(), n_trials=1)  # the objective's declarations agree
    assert len(study.trials) == 5


# --- bad rows ----------------------------------------------------------------------------------


def mutate(which: str, **changes):
    rows = long_rows()
    for r in rows:
        if r["run"] == which:
            r.update(changes)
    return rows


@pytest.mark.parametrize(
    "rows, match",
    [
        (mutate("b", **{"mix/web": 0.3}), r"run 'b' \(runs\[4\]\): mixture weights sum to 1\.1, expected 1"),
        (mutate("c", **{"mix/web": -0.1, "mix/code": 1.0}), r"run 'c' .*weight of 'web' must be finite and >= 0"),
        (mutate("c", **{"mix/web": math.nan}), r"run 'c' .*weight of 'web' must be finite and >= 0"),
        (mutate("a", **{"mix/math": 0.0}), r"run 'a' .*unknown domains \['math'\]; mixture 'mix' has domains"),
        (mutate("a", model_size="30M"), r"run 'a' .*scale '30M' \(3e\+07 parameters\) is not one of the declared"),
        (mutate("a", model_size="huge"), r"runs\[0\]: scale 'huge' is neither a number nor a name"),
        (mutate("a", tokens=1000), r"runs\[0\]: gives both 'step' \(100\) and 'tokens' \(1000\)"),
        (mutate("a", step=None, tokens=102400), r"runs\[0\]: gives 'tokens' \(102400\) but no tokens_per_step"),
        (mutate("a", step=None), r"runs\[0\]: gives neither 'step' nor 'tokens'"),
        (mutate("a", step=2.5), r"runs\[0\]: step must be a whole number >= 1"),
        (mutate("a", run=None), r"runs\[0\]: no 'run' column"),
        (mutate("a", step=100), r"run 'a': step 100 is reported twice"),
        (mutate("a", value="low"), r"runs\[0\]: value must be a number, got 'low'"),
        ([{**r, "run": "a"} for r in long_rows({"a": MIXTURES["a"], "b": MIXTURES["b"]})[:5]],
         r"run 'a': runs\[4\] gives mixture .* runs\[0\] gave"),
        ([{k: v for k, v in r.items() if not k.startswith("mix/")} for r in long_rows()],
         r"runs\[0\]: no mixture: give columns 'mix/<domain>', a JSON column 'mixture'"),
        ([{k: v for k, v in r.items() if k != "model_size"} for r in long_rows()],
         r"the runs give no scale .* but the study declares scale 'model_size'"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_added(rows, match) -> None:
    study = declared_study()
    with pytest.raises(ValueError, match=match):
        adso.add_runs(study, rows)
    assert imported(study) == []


def test_names_that_are_not_the_studys() -> None:
    with pytest.raises(ValueError, match=r"mixture_name='blend', but the study declares the mixture \['mix'\]"):
        adso.add_runs(declared_study(), long_rows(), mixture_name="blend")
    rows = [{("params" if k == "model_size" else k): v for k, v in r.items()} for r in long_rows()]
    with pytest.raises(ValueError, match=r"scale_name='params', but the study declares the scale \['model_size'\]"):
        adso.add_runs(declared_study(), rows, scale_name="params")
    with pytest.raises(ValueError, match=r"runs\[0\]: no 'value' column"):
        adso.add_runs(declared_study(), [{k: v for k, v in r.items() if k != "value"} for r in long_rows()])


def test_parquet_without_pyarrow_names_what_to_install(tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    with pytest.raises(ImportError, match="Parquet files need pyarrow .*pip install pyarrow"):
        adso.add_runs(declared_study(), write_csv(tmp_path / "runs.parquet", long_rows()))


def test_mixed_units_in_one_run() -> None:
    rows = long_rows({"a": MIXTURES["a"]})
    rows[2]["tokens"], rows[2]["step"] = rows[2].pop("step") * 1024, None
    with pytest.raises(ValueError, match=r"run 'a' mixes steps and tokens \(runs\[2\]\)"):
        adso.add_runs(declared_study(), rows, tokens_per_step=1024)


def test_unknown_domains_against_domains_passed() -> None:
    with pytest.raises(ValueError, match=r"unknown domains \['books'\]"):
        adso.add_runs(fresh_study(), long_rows(), domains=["web", "code"])


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "runs.csv", mutate("b", **{"mix/web": 0.3}))
    with pytest.raises(ValueError, match=r"run 'b' \(runs\.csv line 6\): mixture weights sum to 1\.1"):
        adso.add_runs(declared_study(), path)
    with pytest.raises(ValueError, match=r"cannot tell the format of .*runs\.txt"):
        adso.add_runs(declared_study(), tmp_path / "runs.txt")


def test_nan_values_are_skipped_with_a_warning() -> None:
    rows = mutate("a", value=math.nan)
    rows[4]["value"] = None  # run b's first step
    study = declared_study()
    with pytest.warns(UserWarning, match=r"skipped 5 NaN or infinite values; runs left with no finite value, skipped: \['a'\]"):
        report = adso.add_runs(study, rows)
    assert report.empty == ["a"] and report.runs == ["b", "c", "d"] and report.n_nan == 5
    b = next(t for t in imported(study) if t.user_attrs["adso:run_id"] == "b")
    assert sorted(b.intermediate_values) == [250, 500, 1000]


def test_parse_scale() -> None:
    assert parse_scale("20M") == 2e7 and parse_scale("1.5B") == 1.5e9 and parse_scale("350k") == 3.5e5
    assert parse_scale("1e9") == 1e9 and parse_scale(7) == 7.0 and parse_scale("tiny", {"tiny": 3.2e6}) == 3.2e6


# --- duplicates, dry run ---------------------------------------------------------------------


def test_importing_twice_adds_nothing(tmp_path: Path) -> None:
    study = declared_study()
    path = write_csv(tmp_path / "runs.csv", long_rows())
    adso.add_runs(study, path)
    again = adso.add_runs(study, path)
    assert again.runs == [] and again.duplicates == ["a", "b", "c", "d"]
    assert len(imported(study)) == 4


def test_a_run_repeated_in_the_file_is_imported_once() -> None:
    rows = long_rows() + [{**r, "run": "a-copy"} for r in long_rows({"a": MIXTURES["a"]})]
    report = adso.add_runs(declared_study(), rows)
    assert report.duplicates == ["a-copy"] and len(report.runs) == 4


def test_a_run_the_study_made_itself_is_a_duplicate() -> None:
    study = declared_study()
    t = study.trials[0]
    rows = [{"run": "mine", "step": s, "value": v, "mixture": t.user_attrs["mix"], "model_size": t.params["model_size"]}
            for s, v in t.intermediate_values.items()]
    assert adso.add_runs(study, rows).duplicates == ["mine"]


def test_dry_run_writes_nothing() -> None:
    study = fresh_study()
    report = adso.add_runs(study, long_rows(), dry_run=True)
    assert report.runs == ["a", "b", "c", "d"] and report.trial_numbers == []
    assert "would import 4 runs (16 reported points)" in str(report)
    assert study.trials == [] and records.study_attrs(study) == {}


# --- the sampler uses imported runs --------------------------------------------------------------


def test_imported_runs_are_not_charged_to_the_budget() -> None:
    study = declared_study()
    before = adso.FlopsBudget(1.0, in_target_runs=True)
    before(study, study.trials[0])
    adso.add_runs(study, long_rows())
    after = adso.FlopsBudget(1.0, in_target_runs=True)
    after(study, study.trials[0])
    assert after.spent == before.spent > 0


def test_adso_study_continues_from_imported_runs() -> None:
    study = declared_study()
    adso.add_runs(study, long_rows())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "proposing a random mixture" fallback
        study.optimize(make_objective(), n_trials=3)
    new = [t for t in study.trials if not records.is_imported(t)]
    assert len(new) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in new)
    assert all(records.read_proposal(t) for t in new[1:])  # the model proposed them
    rec = adso.recommend(study)
    assert math.isfinite(rec.mean) and sum(rec.mixture.values()) == pytest.approx(1.0)
    assert rec.n_trials == 8


def test_imported_runs_at_the_target_count_as_startup() -> None:
    """Three imported runs at the top scale are the three startup runs: the next trial is the
    model's."""
    study = declared_study()
    adso.add_runs(study, [{**r, "model_size": "1B"} for r in long_rows()[: 3 * len(STEPS)]])
    study.optimize(make_objective(), n_trials=1)
    assert records.read_proposal(study.trials[-1])["basis"] != "startup"


def test_imported_small_runs_leave_the_startup_to_the_study() -> None:
    """Imported runs below the top scale are tested before they are trusted: the study still
    makes the startup runs a cold study would, and the model leaves them out until its own
    anchor runs show that they help (a misleading swarm must not steer the first proposals)."""
    study = declared_study()
    adso.add_runs(study, [r for r in long_rows() if r["model_size"] != "1B"])
    study.optimize(make_objective(), n_trials=2)
    new = [t for t in study.trials if not records.is_imported(t)]
    assert [records.read_proposal(t)["basis"] for t in new] == ["startup"] * 3
    model = StudyModel.of(study)
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(study.trials), maxiter=0)
    assert fitted.imported is not None and not fitted.imported.decided
    assert not np.isin(fitted.observations.trial_numbers, [t.number for t in imported(study)]).any()


# --- export and round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    study = fresh_study()
    study.optimize(make_objective(), n_trials=4)
    path = tmp_path / f"runs.{suffix}"
    assert adso.export_runs(study, path) == str(path)
    copy = optuna.create_study()
    report = adso.add_runs(copy, path)
    assert len(report.runs) == 4
    for old, new in zip(study.trials, copy.trials):
        assert new.user_attrs["mix"] == pytest.approx(old.user_attrs["mix"], abs=1e-12)
        assert new.params["model_size"] == old.params["model_size"]
        assert new.intermediate_values == old.intermediate_values
        assert new.value == old.value
    assert adso.add_runs(study, path).runs == []  # back into its own study: all duplicates


def test_export_text_and_reimport_of_imported_runs() -> None:
    study = declared_study()
    adso.add_runs(study, long_rows())
    text = adso.export_runs(study, "csv")
    assert text.splitlines()[0].startswith("run,step,value,mix/web,mix/code,mix/books,model_size")
    assert "\na,100," in text  # imported runs keep their ids
    assert json.loads(adso.export_runs(study, "jsonl").splitlines()[0])["run"] == "trial-0"
    with pytest.raises(ValueError, match="declares no mixture"):
        adso.export_runs(optuna.create_study(), "csv")


# --- the command line ------------------------------------------------------------------------------


def test_cli_import_and_export(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="s", sampler=make_sampler())
    study.optimize(make_objective(), n_trials=1)
    path = write_csv(tmp_path / "runs.csv", long_rows())
    base = ["--storage", storage, "--study-name", "s"]
    assert main(["import", str(path), *base, "--dry-run"]) == 0
    assert "would import 4 runs" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1
    assert main(["import", str(path), *base]) == 0
    assert "imported 4 runs" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 5
    out = tmp_path / "out.jsonl"
    assert main(["export-runs", *base, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 20
    capsys.readouterr()
    assert main(["import", str(out), *base, "--format", "jsonl"]) == 0
    assert "imported 0 runs" in capsys.readouterr().out


def test_cli_errors_exit_nonzero_without_traceback(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="s", sampler=make_sampler())
    study.optimize(make_objective(), n_trials=1)
    bad = write_csv(tmp_path / "bad.csv", mutate("b", **{"mix/web": 0.3}))
    assert main(["import", str(bad), "--storage", storage, "--study-name", "s"]) == 1
    err = capsys.readouterr().err
    assert "adso import: error: run 'b' (bad.csv line 6): mixture weights sum to 1.1" in err
    assert "Traceback" not in err
    assert main(["import", str(tmp_path / "missing.csv"), "--storage", storage, "--study-name", "s"]) == 1
    assert "no runs file" in capsys.readouterr().err
    assert main(["import", str(bad), "--storage", storage, "--study-name", "nope"]) == 1
    assert "no study named 'nope'" in capsys.readouterr().err
    assert main(["export-runs", "--storage", storage, "--study-name", "s", "--out", str(tmp_path / "x.txt")]) == 1
    assert "cannot tell the format" in capsys.readouterr().err


def test_cli_import_creates_the_study_when_asked(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    path = write_csv(tmp_path / "runs.csv", long_rows())
    assert main(["import", str(path), "--storage", storage, "--study-name", "new", "--create",
                 "--scales", "1e7,1e8,1e9"]) == 0
    study = optuna.load_study(study_name="new", storage=storage)
    assert len(study.trials) == 4
    assert np.all([records.is_imported(t) for t in study.trials])



def test_imported_runs_are_not_the_study_s_effort_at_any_scale() -> None:
    """A swarm of small imported runs must not hold the study at the top scale: the share floor
    (min_target_share) counts the study's own spending only."""
    from optuna_adso.study_model import StudyModel, settings_for_study

    study = declared_study()
    sampler = study.sampler
    model = StudyModel.load(study, settings_for_study(study, sampler))
    top = max(model.scale_choices)
    own = model.spending(top)
    adso.add_runs(study, long_rows())
    model = StudyModel.load(study, settings_for_study(study, sampler))
    assert model.spending(top) == own and own[1] > 0


def _swarm_rows(centre, scale: float, n: int = 40, seed: int = 2) -> list[dict]:
    """``n`` imported runs at ``scale`` on the conftest world's learning curve, with a mixture
    penalty centred on ``centre`` (the world's own centre there, or another)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        w = rng.dirichlet(np.ones(len(DOMAINS)))
        for step in STEPS:
            curve = synthetic_loss(np.asarray(centre), scale, step)  # the curve, no penalty
            value = curve + 1.5 * float(np.sum((w - np.asarray(centre)) ** 2))
            rows.append({"run": f"swarm-{i}", "step": step, "value": value, "model_size": scale,
                         **{f"mix/{d}": float(x) for d, x in zip(DOMAINS, w)}})
    return rows


@pytest.mark.parametrize(("centre", "used"), [(None, True), ((0.05, 0.9, 0.05), False)])
def test_imported_small_runs_are_used_only_where_they_predict_the_target_runs(centre, used) -> None:
    """A swarm that tells the truth about its scale (here the world's own 100M landscape, whose
    optimum is not the target's) helps predict the study's anchor runs and is used; one that
    contradicts the study's own runs is left out of the model that proposes and recommends.
    At 100M the truthful swarm adds 12 nats over the nine anchor runs of twelve trials, the
    contradicting one loses 4.  (A truthful swarm at 10M, where the study has runs of its own,
    adds 0.2 to 0.3 nats per run: near the bar, on whichever side the machine's floating point
    puts it.)"""
    from conftest import optimum_at

    study = fresh_study()
    study.optimize(make_objective(), n_trials=12)
    adso.add_runs(study, _swarm_rows(optimum_at(1e8) if centre is None else centre, 1e8))
    fitted = StudyModel.of(study).fit_surrogate(np.random.default_rng(0), now=len(study.trials))
    assert fitted.imported is not None and fitted.imported.decided
    assert fitted.imported.earned is used
    swarm = [t.number for t in imported(study)]
    assert bool(np.isin(fitted.observations.trial_numbers, swarm).any()) is used
    study.optimize(make_objective(), n_trials=1)
    assert records.read_proposal(study.trials[-1])["imported_used"] is used


def test_a_swarm_the_model_has_not_admitted_leaves_the_study_as_a_cold_one(monkeypatch) -> None:
    """Imported runs shift every trial number; the sampler's and the pruner's random streams
    count the study's own trials, so a swarm that the held-out test keeps out (here one that
    contradicts the study's runs) changes nothing but the shape it teaches (the lengthscale
    prior of :mod:`optuna_adso.swarm_shape`, switched off here): the warm study proposes, runs and
    recommends exactly what the cold study of the same seed does.  The warm study runs until a
    proposal is made after the swarm was judged (and left out): 7 trials on one machine, 13 on
    another, where the floating point sent the early runs to other scales."""
    import optuna_adso.study_model

    monkeypatch.setattr(optuna_adso.study_model, "MIN_SWARM_RUNS", 10**9)
    warm = optuna.create_study(sampler=make_sampler(seed=3, n_candidates=64), pruner=adso.ADSOPruner())
    adso.add_runs(warm, _swarm_rows((0.05, 0.9, 0.05), 1e7), mixture_name="mix", scale_name="model_size",
                  domains=DOMAINS, scales=SCALES)
    for n in range(1, 21):
        warm.optimize(make_objective(), n_trials=1)
        if records.read_proposal(warm.trials[-1]).get("imported_gain") is not None:
            break
    own = [t for t in warm.trials if not records.is_imported(t)]
    assert len(own) == n and len(warm.trials) == n + 40
    cold = optuna.create_study(sampler=make_sampler(seed=3, n_candidates=64), pruner=adso.ADSOPruner())
    cold.optimize(make_objective(), n_trials=n)
    proposals = [records.read_proposal(t) for t in own]
    assert all(p is None or not p.get("imported_used") for p in proposals)
    assert proposals[-1] is not None and proposals[-1].get("imported_gain") is not None  # judged, left out
    assert [t.params for t in own] == [t.params for t in cold.trials]
    assert [(t.state, t.value) for t in own] == [(t.state, t.value) for t in cold.trials]
    assert adso.recommend(warm).mixture == pytest.approx(adso.recommend(cold).mixture)


def test_a_swarm_the_model_has_not_admitted_still_shapes_its_first_multi_fidelity_gps() -> None:
    """The swarm's values stay out of the model until they predict the study's runs, but its
    lengthscales centre the prior of the multi-fidelity GPs (:mod:`optuna_adso.swarm_shape`)
    until three complete anchor runs; the anchor-only GP, the hedge, stays target-only BO.  A
    cold study knows no shape."""
    warm = fresh_study()
    adso.add_runs(warm, _swarm_rows((0.05, 0.9, 0.05), 1e7), mixture_name="mix", scale_name="model_size",
                  domains=DOMAINS, scales=SCALES)
    warm.optimize(make_objective(), n_trials=1)
    model = StudyModel.of(warm)
    shape = model.mixture_shape()
    assert shape is not None and shape.shape == (len(DOMAINS),) and np.all(shape > 0)
    assert model.complete_anchor_runs() < 3
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(warm.trials), maxiter=20)
    assert fitted.surrogate.shape is not None and np.array_equal(fitted.surrogate.shape, shape)
    for _ in range(30):
        warm.optimize(make_objective(), n_trials=1)
        if StudyModel.of(warm).complete_anchor_runs() >= 3:
            break
    model = StudyModel.of(warm)
    assert model.complete_anchor_runs() >= 3
    fitted = model.fit_surrogate(np.random.default_rng(0), now=len(warm.trials), maxiter=20)
    assert fitted.surrogate.shape is None
    check = model.check_anchor(fitted, now=len(warm.trials), maxiter=20)
    assert check.anchor_only is not None and check.anchor_only.shape is None
    cold = declared_study()
    assert StudyModel.of(cold).mixture_shape() is None
