"""The README's minimal example is examples/readme_example.py, and it runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_code() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Minimal example\n\n```python\n", 1)[1].split("```", 1)[0]


def test_example_file_is_the_readme_code() -> None:
    example = (ROOT / "examples" / "readme_example.py").read_text()
    assert example.endswith(_readme_code())


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # As written, except for fewer trials so that the suite stays quick.
    code = _readme_code().replace("n_trials=100", "n_trials=12")
    script = tmp_path / "example.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "recommended mixture" in out
    assert (tmp_path / "mixtures.db").exists()
