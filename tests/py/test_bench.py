"""The benchmarks are programs, not tests: this only checks that the quick mode runs
and reports every operation with both sides."""

import subprocess
import sys

from conftest import ROOT

OPS = ["create+release+delete (reserved)", "create+release+delete (sparse)", "attach+release",
       "attach checked (shape, dtype)+release", "list 1000 arrays", "first write of every page",
       "first write of every page (populate)", "py create+delete", "py attach+release"]


def test_quick_benchmark_runs():
    r = subprocess.run([sys.executable, str(ROOT / "bench/run.py"), "--quick"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    for op in OPS:
        assert any(row.startswith(f"| {op} |") for row in rows), op
    assert "Targets (ratios from this run)" in r.stdout
