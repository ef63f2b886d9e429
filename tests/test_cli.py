"""The ``adso`` command on config files: optimize, status, recommend, export, and clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import yaml

from optuna_adso.cli import main
from optuna_adso.records import copy_declarations
from optuna_adso.recommendation import flops_spent

CONFIG = {
    "study_name": "cli",
    "domains": {"web": {"path": "/data/web"}, "code": {"path": "/data/code"}, "books": {"path": "/data/books"}},
    "scales": ["1e7", 1e8, 1e9],
    "target": {"scale": 1e9, "step": 1000},
    "cost": {"tokens_per_step": 1024},
    "budget": {"trials": 7},
    "objective": "cli_objective:run",
    "seed": 0,
}


def write_config(tmp_path: Path, **changes) -> Path:
    data = {**CONFIG, "storage": f"sqlite:///{tmp_path / 'study.db'}", **changes}
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load(path: Path) -> optuna.Study:
    cfg = yaml.safe_load(path.read_text())
    return optuna.load_study(study_name=cfg["study_name"], storage=cfg["storage"])


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """One finished 7-trial study, made by ``adso optimize``."""
    tmp = tmp_path_factory.mktemp("cli")
    path = write_config(tmp)
    assert main(["optimize", str(path), "--no-progress", "--dashboard-every", "0"]) == 0
    return path


def test_optimize_runs_the_trial_budget_and_publishes_plots(done: Path) -> None:
    study = load(done)
    assert len(study.trials) == 7
    assert {t.params["model_size"] for t in study.trials} <= {1e7, 1e8, 1e9}
    assert all(math.isclose(sum(t.user_attrs["mix"].values()), 1.0) for t in study.trials)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for name in ("mixtures", "fidelity-cost", "recommendation-history", "optimum-shift", "domain-losses"):
        assert any(f"adso-{name}" in k for k in attrs), name  # the final publish, for the dashboard
    from optuna_dashboard import get_note

    assert "ADSO recommendation (after 7 trials)" in get_note(study)


def test_status_and_recommend(done: Path, capsys) -> None:
    assert main(["status", str(done)]) == 0
    out = capsys.readouterr().out
    assert "7 trials" in out and "cost spent" in out and "budget used: 100%" in out
    assert "recommended mixture" in out
    assert main(["recommend", str(done), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert set(rec["mixture"]) == {"web", "code", "books"}
    assert sum(rec["mixture"].values()) == pytest.approx(1.0)
    assert rec["n_trials"] == 7 and math.isfinite(rec["mean"])


def test_export_writes_the_recommendation_with_config_paths(done: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "blend.yaml"
    assert main(["export", str(done), "--format", "nemo", "-o", str(out)]) == 0
    blend = yaml.safe_load(out.read_text())["model"]["data"]["data_prefix"]
    assert blend[1::2] == ["/data/web", "/data/code", "/data/books"]
    assert sum(blend[0::2]) == pytest.approx(1.0)
    assert main(["recommend", str(done), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert blend[0::2] == pytest.approx([rec["mixture"][d] for d in ("web", "code", "books")], abs=1e-6)
    # --storage without a config; a single study in the storage needs no name
    storage = yaml.safe_load(done.read_text())["storage"]
    assert main(["export", "--storage", storage, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(rec["mixture"], abs=1e-6)


def test_flops_budget_stops_the_study(tmp_path: Path) -> None:
    path = write_config(tmp_path, budget={"target_runs": 0.6, "trials": 40})
    assert main(["optimize", str(path), "--no-progress", "--dashboard-every", "0"]) == 0
    study = load(path)
    from optuna_adso.study_model import settings_for_study

    settings = settings_for_study(study)  # rebuilt from what the study stores
    budget = 0.6 * settings.target_cost
    assert flops_spent(study) >= budget  # stopped because the budget was spent...
    assert len(study.trials) < 40  # ...not because the trial cap was reached
    before_last = optuna.create_study()
    before_last.add_trials(study.trials[:-1])
    copy_declarations(study, before_last)
    assert flops_spent(before_last) < budget  # and no later than it was spent


@pytest.mark.parametrize(
    ("changes", "key", "expected"),
    [
        ({"budgte": {"trials": 3}}, "budgte", "did you mean 'budget'"),
        ({"workers": "two"}, "workers", "expected an int, got str 'two'"),
        ({"scales": "1e7, 1e8"}, "scales", "expected a non-empty list"),
        ({"target": {"scale": 1e9, "steps": 1000}}, "target.steps", "did you mean 'target.step'"),
        ({"budget": {"flops": "lots"}}, "budget.flops", "expected a number, got str 'lots'"),
        ({"domains": ["web"]}, "domains", "at least two domains"),
        ({"objective": None}, "objective", "missing"),
        ({"objective": "no_such_module_xyz:run"}, "objective", "cannot import module"),
        ({"target": {"scale": 1e6, "step": 1000}}, "target.scale", "at or above the smallest proxy scale"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys, changes: dict, key: str, expected: str) -> None:
    path = write_config(tmp_path, **changes)
    assert main(["optimize", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"config key '{key}'" in err and expected in err
    assert not (tmp_path / "study.db").exists()  # validated before any compute or storage


def test_argument_errors_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--format", "parquet"])
    assert info.value.code == 2
    assert main(["status", str(tmp_path / "missing.yaml")]) == 2
    assert "no config file" in capsys.readouterr().err


def test_two_workers_share_one_study(tmp_path: Path) -> None:
    path = write_config(tmp_path, budget={"trials": 4}, workers=2)
    assert main(["optimize", str(path), "--no-progress", "--dashboard-every", "0"]) == 0
    study = load(path)
    assert 4 <= len(study.trials) <= 5  # each worker checks the cap after its trial
    assert all(t.state.is_finished() for t in study.trials)


def test_demo_runs_and_publishes_plots(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    argv = ["demo", "--simulated", "--trials", "4", "--storage", storage, "--study-name", "d"]
    assert main(argv) == 0
    assert "adso dashboard --storage" in capsys.readouterr().out
    study = optuna.load_study(study_name="d", storage=storage)
    assert len(study.trials) == 4
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert any("adso-mixtures" in k for k in attrs)


def test_plot_writes_every_figure(done: Path, tmp_path: Path) -> None:
    assert main(["plot", str(done), "--out", str(tmp_path / "plots"), "--html"]) == 0
    names = sorted(p.stem for p in (tmp_path / "plots").glob("*.html"))
    assert names == ["domain-losses", "domain-predictions", "fidelity-cost", "mixtures", "optimum-shift",
                     "recommendation-history", "scale-fan", "tradeoff-front"]


def test_pretrain_objective_from_config(tmp_path: Path) -> None:
    """``objective: pretrain``: real tiny-LM training on files named in the config, 2 trials."""
    corpus = pytest.importorskip("optuna_adso.pretrain.corpus")
    root = Path(corpus.build_corpus(tmp_path, max_chars_per_domain=40_000)[0].source[0]).parent
    domains = {"code": {"path": str(root / "code.jsonl")}, "docs": {"path": str(root / "docs.parquet")},
               "docstrings": {"path": str(root / "docstrings")}}
    path = write_config(
        tmp_path, domains=domains, scales=["tiny-32", "tiny-64"],
        target={"scale": "tiny-64", "step": 16}, budget={"trials": 2}, objective="pretrain", cost=None,
        pretrain={"batch_size": 4, "seq_len": 32, "vocab_size": 512, "eval_every": 8, "accelerator": "cpu",
                  "cache_dir": str(tmp_path / "cache"), "max_val_blocks": 4},
    )
    assert main(["optimize", str(path), "--no-progress", "--dashboard-every", "0"]) == 0
    study = load(path)
    assert len(study.trials) == 2
    assert all(set(t.user_attrs["mix"]) == {"code", "docs", "docstrings"} for t in study.trials)
    no_paths = write_config(tmp_path, domains=["code", "docs"], objective="pretrain", scales=["tiny-32"],
                            target={"scale": "tiny-32", "step": 16}, cost=None)
    assert main(["optimize", str(no_paths), "--no-progress"]) == 2
    missing = write_config(tmp_path, domains={**domains, "docs": {"path": str(tmp_path / "nowhere.jsonl")}},
                           objective="pretrain", scales=["tiny-32"], target={"scale": "tiny-32", "step": 16}, cost=None)
    assert main(["optimize", str(missing), "--no-progress"]) == 2
