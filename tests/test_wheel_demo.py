"""``adso demo --simulated`` runs from the built wheel, away from the repository.

The demo used to import the repository's ``benchmarks`` folder, which the wheel does not ship;
only a run from an installed wheel, outside the checkout, catches that kind of mistake.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.timeout(300)
def test_simulated_demo_runs_from_the_installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("wheel_demo")
    assert ROOT not in tmp.parents, "the venv must live outside the checkout"

    # A clean copy of what the wheel is built from, so that the build writes no build/ or
    # egg-info into the checkout and no stale build/lib file slips into the wheel.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "optuna_adso", src / "optuna_adso", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
         cwd=tmp, timeout=180)
    (wheel,) = wheels.glob("optuna_adso-*.whl")

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt").create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-index", "-q", str(wheel)],
         cwd=tmp, timeout=120)

    # torch, botorch, optuna...: this interpreter's packages, behind the venv's own site-packages
    # (a .pth path line appends, and the .pth files of the bridged directory, the checkout's
    # editable install among them, are not run).  Written after pip, so pip never saw them.
    purelib = _run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp, timeout=60).stdout.strip()
    (Path(purelib) / "_test_bridge.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))

    where = _run([str(python), "-I", "-c", "import optuna_adso, torch; print(optuna_adso.__file__)"],
                 cwd=tmp, timeout=120).stdout.strip()
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), where

    db = tmp / "demo.db"
    out = _run([str(bin_dir / "adso"), "demo", "--simulated", "--trials", "6", "--storage", f"sqlite:///{db}"],
               cwd=tmp, timeout=240).stdout
    assert "recommended mixture at" in out, out
    assert "best possible" in out and "of the gap left" in out, out
    assert db.is_file()
