"""benchmarks/tradeoff.py: the hypervolume it scores fronts by, and the benchmark end to end."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import tradeoff
from benchmarks.problems import paper_data_available


def test_hypervolume_of_a_two_dimensional_front():
    ref = np.array([4.0, 4.0])
    front = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5], [5.0, 0.0]])  # last two add nothing
    assert tradeoff.hypervolume(front, ref) == pytest.approx(3 * 1 + 2 * 1 + 1 * 1)
    assert tradeoff.hypervolume(np.array([[5.0, 5.0]]), ref) == 0.0


@pytest.mark.skipif(not paper_data_available(), reason="the paper simulator's data is not beside the checkout")
def test_tradeoff_benchmark_writes_its_report(tmp_path):
    out = tmp_path / "tradeoff.md"
    tradeoff.main(["--seeds", "1", "--budget", "2", "--out", str(out)])
    text = out.read_text()
    assert "| ADSO, mean-CE study (predicted front, true values) |" in text
    assert "| ADSO, multi-objective study (predicted front, true values) |" in text
    assert "| GPSampler multi-objective at 1B |" in text
