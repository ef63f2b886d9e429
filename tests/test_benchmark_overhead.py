"""benchmarks/overhead.py runs end to end (it once broke silently when declarations moved)."""

from __future__ import annotations

from benchmarks import overhead


def test_overhead_writes_its_table(tmp_path):
    out = tmp_path / "overhead.md"
    overhead.main(["--sizes", "12", "--reports", "4", "--repeats", "2", "--out", str(out)])
    text = out.read_text()
    assert "| trials | sampler | median s | p90 s | max s | recommend s |" in text
    rows = [line for line in text.splitlines() if line.startswith("| 12 |")]
    assert {row.split("|")[2].strip() for row in rows} == {"ADSOSampler", "GPSampler"}


def test_overhead_with_per_domain_objectives_writes_its_table(tmp_path):
    out = tmp_path / "overhead-domains.md"
    overhead.main(["--sizes", "12", "--reports", "4", "--repeats", "2", "--domains", "3", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 12 |")]
    assert {row.split("|")[2].strip() for row in rows} == {"mean of the domains", "worst excess over uniform"}
