"""Smoke test of benchmarks/explanation_quality.py in its --quick mode (a few images)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from lrp_ref.rules import composites

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "explanation_quality.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("explanation_quality", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_table_and_figure(tmp_path):
    benchmark = load_benchmark()
    summary = benchmark.main(["--quick", "--out", str(tmp_path)])
    table = (tmp_path / "explanation_quality.md").read_text()
    assert (tmp_path / "explanation_quality.png").stat().st_size > 0
    # every method of the run has a row, and the required baselines are there
    for name in summary:
        assert f"| {name} |" in table
    for name in ("Gradient", "Gradient x Input", "random", "Zero(True)", "Epsilon(1e-06, True)"):
        assert name in summary
    # every composite factory that needs at most the input bounds is evaluated
    factories = [n for n in composites.__all__ if n not in ("uniform", "layer_kind", "KINDS",
                                                            "Composite", "ATTENTION",
                                                            "attention_rules")]
    for factory in factories:
        assert any(name.startswith(factory + "(") for name in summary), factory
    for row in summary.values():
        for metric in ("mass accuracy", "rank accuracy"):
            mean, low, high = row[metric]
            assert 0 <= low <= mean <= high <= 1
        assert np.isfinite(row["AOPC (MoRF)"]).all()
    # LRP-0 is Gradient x Input on a ReLU network (up to the residual split's 1e-6
    # stabilizer): their scores must agree closely
    for metric in ("mass accuracy", "rank accuracy", "AOPC (MoRF)"):
        np.testing.assert_allclose(summary["Zero(True)"][metric][0],
                                   summary["Gradient x Input"][metric][0], atol=1e-3)


def test_quick_token_run_writes_table_and_figure(tmp_path):
    benchmark = load_benchmark()
    summary = benchmark.main(["--task", "tokens", "--quick", "--out", str(tmp_path)])
    table = (tmp_path / "explanation_quality_tokens.md").read_text()
    assert (tmp_path / "explanation_quality_tokens.png").stat().st_size > 0
    assert set(summary) == {"AttnLRP", "CP-LRP", "Gradient x Input", "attention weights",
                            "attention rollout", "random"}
    for name, row in summary.items():
        assert f"| {name} |" in table
        for metric in ("mass accuracy", "rank accuracy"):
            mean, low, high = row[metric]
            assert 0 <= low <= mean <= high <= 1
    # one layer: rollout = attention / 2 + 1 / (2T), the same ranking (up to near-ties that
    # rounding may order differently), so about the same flipping curve
    np.testing.assert_allclose(summary["attention rollout"]["AOPC (MoRF)"][0],
                               summary["attention weights"]["AOPC (MoRF)"][0], rtol=0.02)
