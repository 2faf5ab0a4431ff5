"""benchmarks/resnet50.py runs end to end on a small input and its agreement check passes
(the benchmark's numbers themselves are measured by hand, never asserted: timing is not
what the tests test)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_resnet50_benchmark_smoke():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "resnet50.py"),
                           "--image", "32", "--runs", "1", "--no-memory", "--dtype", "float64"],
                          capture_output=True, text=True, check=True, timeout=600)
    assert "agreement plus: lrp_ref vs Zennit relative error" in done.stdout
    assert "(ok: <= 1e-08)" in done.stdout, done.stdout
    assert "lrp_ref / Zennit plus:" in done.stdout
