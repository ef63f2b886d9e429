"""``optuna_adso.config`` on its own: what a valid file gives, and what each bad key says.

The CLI tests run a few bad configs end to end (exit code 2, nothing stored); these check the
parser directly: the StudyConfig fields, one ConfigError per kind of mistake naming the key and
what was expected, the YAML number quirk, overrides, file loading and objective import.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from optuna_adso.config import (
    ConfigError,
    DomainConfig,
    StudyConfig,
    load_config,
    parse_config,
    resolve_objective,
)

FULL_YAML = """\
study_name: mix
storage: postgresql://adso@db.example/optuna
direction: maximize
domains:
  web: {path: /data/web, max_weight: 0.8}
  code: {path: /data/code, min_weight: 0.05}
  books: {path: /data/books}
scales: [20e6, 60e6, 150e6]
target: {scale: 1e9, step: 20000}
cost: {tokens_per_step: 524288}
budget: {flops: 1e20, trials: 200, target_runs: 30}
workers: 2
gpus: [0, 1]
seed: 7
objective: mypackage.train:run
sampler: {min_target_share: 0.5}
"""

# The smallest valid document, as Python values; each bad case below changes one key of it.
BASE = {
    "study_name": "s",
    "domains": ["web", "code"],
    "scales": [1e7, 1e8],
    "target": {"scale": 1e9, "step": 1000},
    "budget": {"trials": 5},
    "objective": "pkg.mod:run",
}

_DROP = object()


def with_changes(**changes) -> dict:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def test_full_document_gives_every_field() -> None:
    cfg = parse_config(yaml.safe_load(FULL_YAML), "study.yaml")
    assert cfg == StudyConfig(
        study_name="mix",
        domains=(
            DomainConfig("web", "/data/web", None, 0.8),
            DomainConfig("code", "/data/code", 0.05, None),
            DomainConfig("books", "/data/books", None, None),
        ),
        scales=(20e6, 60e6, 150e6),
        target_scale=1e9,
        target_step=20000,
        objective="mypackage.train:run",
        budget_flops=1e20,
        budget_trials=200,
        budget_target_runs=30.0,
        storage="postgresql://adso@db.example/optuna",
        direction="maximize",
        tokens_per_step=524288.0,
        workers=2,
        gpus=(0, 1),
        seed=7,
        pretrain={},
        sampler={"min_target_share": 0.5},
        source="study.yaml",
    )
    assert cfg.domain_names == ["web", "code", "books"]
    assert isinstance(cfg.budget_trials, int) and isinstance(cfg.target_step, int)


def test_defaults_of_the_optional_keys() -> None:
    cfg = parse_config(with_changes())
    assert (cfg.storage, cfg.direction, cfg.tokens_per_step, cfg.workers, cfg.gpus, cfg.seed) == (
        "sqlite:///adso.db", "minimize", 1.0, 1, None, 0)
    assert cfg.budget_flops is None and cfg.budget_target_runs is None and cfg.budget_trials == 5
    assert cfg.domains == (DomainConfig("web"), DomainConfig("code"))
    assert cfg.source is None and cfg.pretrain == {} and cfg.sampler == {}


def test_yaml_exponent_without_a_dot_is_read_as_a_number() -> None:
    raw = yaml.safe_load("scales: [1e7, 2.5e8]\ntarget: {scale: 1e9, step: 1000}\nbudget: {flops: 1e20}\n")
    assert raw["scales"][0] == "1e7" and raw["target"]["scale"] == "1e9"  # PyYAML's YAML 1.1 quirk
    cfg = parse_config(with_changes(**raw))
    assert cfg.scales == (1e7, 2.5e8) and cfg.target_scale == 1e9 and cfg.budget_flops == 1e20
    assert all(isinstance(s, float) for s in cfg.scales)
    # a float that is a whole number is an int where an int is expected
    assert parse_config(with_changes(target={"scale": 1e9, "step": 1000.0})).target_step == 1000
    # and so is an int written with an exponent (YAML reads 2e4 as a string too)
    assert parse_config(with_changes(**yaml.safe_load("target: {scale: 1e9, step: 2e4}"))).target_step == 20000


def test_pretrain_objective_takes_scale_names_and_options() -> None:
    cfg = parse_config(with_changes(objective="pretrain", scales=["tiny-32", "1e8"],
                                    target={"scale": "tiny-64", "step": 16}, pretrain={"batch_size": 4}))
    assert cfg.scales == ("tiny-32", 1e8) and cfg.target_scale == "tiny-64"
    assert cfg.pretrain == {"batch_size": 4}


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        (["study_name"], "<top level>", "expected a mapping of config keys, got list"),
        (with_changes(study_name=_DROP), "study_name", "missing; expected the study's name"),
        (with_changes(study_name="  "), "study_name", "expected a non-empty string, got str '  '"),
        (with_changes(storage=""), "storage", "expected a non-empty string"),
        (with_changes(direction="down"), "direction", "expected 'minimize' or 'maximize', got 'down'"),
        (with_changes(objective="train.run"), "objective", "expected 'package.module:function' or 'pretrain'"),
        (with_changes(objective="mod:"), "objective", "expected 'package.module:function'"),
        (with_changes(objective=42), "objective", "expected a non-empty string, got int 42"),
        (with_changes(pretrain={"steps": 5}), "pretrain", "only used with 'objective: pretrain'"),
        (with_changes(objective="pretrain", pretrain=[1]), "pretrain", "a mapping of PretrainObjective options"),
        (with_changes(domains="web,code"), "domains", "expected a list of domain names, or a mapping"),
        (with_changes(domains=["web"]), "domains", "expected at least two domains, got ['web']"),
        (with_changes(domains=["web", "web"]), "domains", "domain names must be unique; ['web'] repeat"),
        (with_changes(domains=["a/b", "c"]), "domains", "cannot contain '/'"),
        (with_changes(domains=["web", ""]), "domains[1]", "expected a non-empty string"),
        (with_changes(domains={"web": [1], "code": None}), "domains.web", "expected a mapping with ['path'"),
        (with_changes(domains={"web": {"max_weight": 1.5}, "code": None}), "domains.web.max_weight",
         "expected a number in [0, 1], got 1.5"),
        (with_changes(domains={"web": {"min_weight": "some"}, "code": None}), "domains.web.min_weight",
         "expected a number, got str 'some'"),
        (with_changes(domains={"web": {"path": ""}, "code": None}), "domains.web.path", "expected a non-empty string"),
        (with_changes(scales=_DROP), "scales", "missing; expected a list of proxy model sizes"),
        (with_changes(scales=[]), "scales", "expected a non-empty list, got list []"),
        (with_changes(scales=1e7), "scales", "expected a non-empty list, got float"),
        (with_changes(scales=[1e7, "big"]), "scales[1]", "expected a number, got str 'big'"),
        (with_changes(scales=[1e7, -1]), "scales[1]", "expected a positive number, got -1"),
        (with_changes(scales=[1e7, True]), "scales[1]", "expected a number, got bool True"),
        (with_changes(scales=[1e7, float("inf")]), "scales[1]", "expected a number, got float inf"),
        (with_changes(scales=[1e7, "1e7"]), "scales", "scales must be unique"),
        (with_changes(target=1e9), "target", "expected a mapping {scale: <target size>, step: <target steps>}"),
        (with_changes(target={"scale": 1e9}), "target.step", "missing; expected the target number of training steps"),
        (with_changes(target={"scale": 1e9, "step": 0}), "target.step", "expected an int >= 1, got 0"),
        (with_changes(target={"scale": 1e9, "step": 2.5}), "target.step", "expected an int, got float 2.5"),
        (with_changes(target={"step": 10}), "target.scale", "missing; expected the target model size"),
        (with_changes(target={"scale": 1e6, "step": 10}), "target.scale",
         "expected a size at or above the smallest proxy scale 1e+07, got 1e+06"),
        (with_changes(cost={"tokens_per_step": 0}), "cost.tokens_per_step", "expected a positive number, got 0"),
        (with_changes(cost=[]), "cost", "expected a mapping {tokens_per_step"),
        (with_changes(objective="pretrain", scales=["tiny-32"], target={"scale": "tiny-32", "step": 16},
                      cost={"tokens_per_step": 8}), "cost", "not used with 'objective: pretrain'"),
        (with_changes(budget={}), "budget", "expected at least one of ['flops', 'trials', 'target_runs']"),
        (with_changes(budget=100), "budget", "expected a mapping with flops, trials and/or target_runs"),
        (with_changes(budget={"flops": "lots"}), "budget.flops", "expected a number, got str 'lots'"),
        (with_changes(budget={"flops": -1e20}), "budget.flops", "expected a positive number"),
        (with_changes(budget={"trials": 0}), "budget.trials", "expected an int >= 1, got 0"),
        (with_changes(budget={"target_runs": float("nan")}), "budget.target_runs", "expected a number, got float nan"),
        (with_changes(workers=0), "workers", "expected an int >= 1, got 0"),
        (with_changes(workers="two"), "workers", "expected an int, got str 'two'"),
        (with_changes(seed=-1), "seed", "expected an int >= 0, got -1"),
        (with_changes(gpus=[]), "gpus", "expected a non-empty list of GPU indices, got []"),
        (with_changes(gpus="0,1"), "gpus", "expected a non-empty list of GPU indices"),
        (with_changes(gpus=[0, -1]), "gpus[1]", "expected an int >= 0, got -1"),
        (with_changes(sampler="fast"), "sampler", "expected a mapping of extra ADSOSampler options, got str"),
    ],
)
def test_bad_input_names_the_key_and_what_was_expected(data, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "my.yaml")
    assert info.value.key == key
    message = str(info.value)
    assert message.startswith(f"my.yaml: config key '{key}': "), message
    assert expected in message, message


@pytest.mark.parametrize(
    ("data", "key", "suggestion"),
    [
        (with_changes(domians=["a", "b"]), "domians", "did you mean 'domains'?"),
        (with_changes(target={"scale": 1e9, "stpe": 10}), "target.stpe", "did you mean 'target.step'?"),
        (with_changes(budget={"flop": 1e20}), "budget.flop", "did you mean 'budget.flops'?"),
        (with_changes(cost={"tokens_per_stp": 8}), "cost.tokens_per_stp", "did you mean 'cost.tokens_per_step'?"),
        (with_changes(domains={"web": {"max_wieght": 0.5}, "code": None}), "domains.web.max_wieght",
         "did you mean 'domains.web.max_weight'?"),
    ],
)
def test_misspelt_key_suggests_the_close_one(data, key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.key == key
    assert "unknown key; expected one of [" in str(info.value) and suggestion in str(info.value)


def test_unknown_key_with_nothing_close_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_changes(zzzzzz=1))
    assert info.value.key == "zzzzzz" and "did you mean" not in str(info.value)
    assert "'study_name'" in str(info.value)  # the list of known keys


def test_config_error_is_a_value_error_without_source_prefix() -> None:
    err = ConfigError("budget.flops", "expected a number")
    assert isinstance(err, ValueError) and err.key == "budget.flops"
    assert str(err) == "config key 'budget.flops': expected a number"


def test_with_overrides_replaces_given_values_and_ignores_none() -> None:
    cfg = parse_config(with_changes(workers=2), "a.yaml")
    new = cfg.with_overrides(storage="sqlite:///other.db", workers=None, gpus=(3,), seed=5)
    assert (new.storage, new.workers, new.gpus, new.seed) == ("sqlite:///other.db", 2, (3,), 5)
    assert new.study_name == cfg.study_name and new.source == "a.yaml" and new.domains == cfg.domains
    assert (cfg.storage, cfg.gpus, cfg.seed) == ("sqlite:///adso.db", None, 0)  # the original is unchanged
    assert cfg.with_overrides() == cfg
    with pytest.raises(TypeError):
        cfg.with_overrides(no_such_field=1)


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ({"web": {"path": "/d/web"}, "code": {"path": "/d/code"}}, {"web": "/d/web", "code": "/d/code"}),
        ({"web": {"path": "/d/web"}, "code": None}, None),  # one domain without a path: no paths
        (["web", "code"], None),
    ],
)
def test_paths_only_when_every_domain_has_one(domains, expected) -> None:
    assert parse_config(with_changes(domains=domains)).paths == expected


def test_load_config_reads_a_file_and_names_it_as_source(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(FULL_YAML)
    cfg = load_config(path)
    assert cfg.source == str(path) and cfg.scales == (20e6, 60e6, 150e6) and cfg.budget_flops == 1e20
    path.write_text(FULL_YAML.replace("workers: 2", "workers: -3"))
    with pytest.raises(ConfigError, match=rf"^{path}: config key 'workers': expected an int >= 1, got -3$"):
        load_config(str(path))


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.key == "<file>"
    assert str(info.value) == f"config key '<file>': no config file at {str(missing)!r}"
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path)  # a directory is not a config file


def test_load_config_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("study_name: [unclosed\ndomains: {a: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "<file>"
    assert str(info.value).startswith(f"{path}: config key '<file>': not valid YAML: ")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_load_config_empty_file_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"'<top level>': expected a mapping of config keys, got null None"):
        load_config(path)


def test_resolve_objective_imports_the_function() -> None:
    assert resolve_objective(parse_config(with_changes(objective="math:sqrt"))) is math.sqrt
    assert resolve_objective(parse_config(with_changes(objective="os.path:join"))) is __import__("os").path.join


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("no_such_module_adso_xyz:run", "cannot import module 'no_such_module_adso_xyz' (No module named"),
        ("math:no_such_function", "module 'math' has no callable 'no_such_function'"),
        ("math:pi", "module 'math' has no callable 'pi'"),  # present but not callable
    ],
)
def test_resolve_objective_failures_name_the_module(objective: str, expected: str) -> None:
    cfg = parse_config(with_changes(objective=objective), "obj.yaml")
    with pytest.raises(ConfigError) as info:
        resolve_objective(cfg)
    assert info.value.key == "objective"
    assert str(info.value).startswith("obj.yaml: config key 'objective': ") and expected in str(info.value)
