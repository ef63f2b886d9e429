"""The OptunaHub folder loads as a registry package and carries the registry's front matter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import optuna_adso

PACKAGE = Path(__file__).resolve().parent.parent / "optunahub" / "package"
SAMPLER = PACKAGE / "samplers" / "adso"


def test_registry_layout_and_front_matter() -> None:
    for name in ("__init__.py", "README.md", "LICENSE", "requirements.txt"):
        assert (SAMPLER / name).is_file(), name
    text = (SAMPLER / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    for key in ("author", "title", "description", "tags", "optuna_versions", "license"):
        assert front.get(key), key
    assert isinstance(front["tags"], list) and isinstance(front["optuna_versions"], list)
    for section in ("## Abstract", "## APIs", "## Installation", "## Example"):
        assert section in text


def test_loads_with_optunahub_and_reexports_the_sampler_and_pruner() -> None:
    optunahub = pytest.importorskip("optunahub")
    module = optunahub.load_local_module("samplers/adso", registry_root=str(PACKAGE))
    assert module.ADSOSampler is optuna_adso.ADSOSampler
    assert module.ADSOPruner is optuna_adso.ADSOPruner
    assert module.suggest_mixture is optuna_adso.suggest_mixture
