"""benchmarks/demo_calibration.py: how predictions are scored against new runs of real training."""

from __future__ import annotations

import math

import pytest

import optuna_adso as adso
from benchmarks.demo_calibration import MixtureCheck, report


def _check(runs: list[float], mean: float = 5.9, std: float = 0.02, noise_std: float = 0.05) -> MixtureCheck:
    prediction = adso.Prediction({"a": 0.5, "b": 0.5}, mean, std, noise_std, {"step": 80.0})
    return MixtureCheck("m", {"a": 0.5, "b": 0.5}, prediction, runs)


def test_the_runs_mean_is_scored_with_both_uncertainties_and_each_run_against_one_run_interval():
    check = _check([5.85, 5.95, 5.90, 6.10])
    # mean 5.95 against 5.9: std 0.02 of the expected value, noise 0.05 over 4 runs
    assert check.z == pytest.approx(0.05 / math.sqrt(0.02**2 + 0.05**2 / 4))
    lo, hi = check.predicted.interval(0.9, new_run=True)
    assert lo < 5.85 and 5.95 < hi < 6.10
    assert check.runs_inside == 3
    text = report([check, _check([5.5, 5.5], mean=5.9)], "t")
    assert "| m | `predict` | 5.9000" in text
    assert "`predict`: expected values" in text and "1 of 2; mean z" in text and "3 of 6" in text
    assert "`recommend`:" not in text  # only sources that were scored


def test_the_paired_replicates_report_summarises_each_arm_against_uniform():
    from benchmarks.demo_replicates import report as paired_report

    def row(seed: int, arm: str, mean: float, z: float) -> dict:
        return {"seed": seed, "arm": arm, "mean": mean, "z": z, "inside": 3, "runs": [mean] * 4}

    results = [row(0, "replicates", 5.90, 0.3), row(0, "no replicates", 5.95, 4.0),
               row(1, "replicates", 5.88, -0.2), row(1, "no replicates", 5.86, 0.1)]
    text = paired_report(results, [5.92, 5.92], "t")
    assert "| 0 | 5.9000 | +0.30 | 3 of 4 | 5.9500 | +4.00 | 3 of 4 |" in text
    assert "- replicates: 2 studies" in text and "0 worse than uniform" in text
    assert "- no replicates: 2 studies" in text and "1 worse than uniform" in text
    assert "inside its 90% interval in 1 of 2" in text  # z +4.0 is outside
