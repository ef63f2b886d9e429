"""The package's shape: data flows one way, storage -> study model -> acquisition -> params.

Every import in ``optuna_adso`` is read from the source (function-level and TYPE_CHECKING
imports included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optuna_adso"
FRONT_DOORS = {"optuna_adso", "optuna_adso.cli"}  # may import the sampler module


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The modules ``name`` imports, anywhere in its body: ``optuna_adso.*`` and ``benchmarks*``."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # a module named in a string is imported by name somewhere (importlib, a lazy map)
            if node.value in MODULES or node.value.split(".")[0] == "benchmarks":
                out.add(node.value)
    return {m for m in out if m.startswith(("optuna_adso", "benchmarks"))}


GRAPH = {name: _imports(name) - {name} for name in MODULES}


def test_no_import_cycle_inside_the_package():
    """Depth-first search over every import; the front door (which only re-exports) aside."""
    graph = {m: {d for d in deps if d in MODULES and d != "optuna_adso"} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state and name != "optuna_adso":
            visit(name, [name])
    assert cycles == []


def test_only_the_front_door_and_the_cli_import_the_sampler():
    importers = sorted(m for m, deps in GRAPH.items() if "optuna_adso.sampler" in deps)
    assert set(importers) <= FRONT_DOORS, importers


def test_the_pruner_budget_recommendation_and_plots_stand_on_the_study_model():
    for name in ("pruner", "budget", "recommendation", "visualization"):
        assert "optuna_adso.study_model" in GRAPH[f"optuna_adso.{name}"], name


def test_no_module_of_the_package_imports_the_benchmarks():
    assert sorted(m for m, deps in GRAPH.items() if any(d.startswith("benchmarks") for d in deps)) == []


def test_the_sampler_is_glue_only():
    assert len((PACKAGE / "sampler.py").read_text().splitlines()) <= 400


def test_optunas_private_storage_api_is_called_in_one_module():
    callers = sorted(
        _module_name(p) for p in MODULES.values()
        if any(token in p.read_text() for token in ("._storage", "._study_id", "._trial_id"))
    )
    assert callers == ["optuna_adso.records"]


def test_adso_keys_are_spelt_in_one_module():
    spellers = sorted(_module_name(p) for p in MODULES.values() if '"adso:' in p.read_text())
    assert spellers == ["optuna_adso.records"]


@pytest.mark.parametrize(
    "module, absent",
    [
        ("optuna_adso.pretrain.objective", ["plotly", "optuna_dashboard", "optuna_adso.visualization",
                                            "optuna_adso.sampler", "botorch", "gpytorch"]),
        ("optuna_adso", ["plotly", "torch", "botorch", "optuna_adso.sampler"]),
    ],
)
def test_a_process_imports_only_what_it_needs(module, absent):
    """A training process loads the training stack, not the GP, the plots or the dashboard."""
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
