"""Grading beyond Dense and Conv2d: pooling, BatchNorm, the residual split; the report's export.

Each student is written from the layer's equation (docs/theory.md; the
MaxPool2d and Residual docstrings for the two modes and the split),
independently of lrp_ref; a correct one must pass every case, one with a
deliberate bug must fail with a true hint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.testing import grade, grade_network
from lrp_ref.testing.grading_network import compose


def windows(a, kernel_size, stride):
    """(b, c, p, q, rows, cols) of every pooling window of ``a``."""
    B, C, H, W = a.shape
    for p in range((H - kernel_size) // stride + 1):
        for q in range((W - kernel_size) // stride + 1):
            rows = slice(p * stride, p * stride + kernel_size)
            cols = slice(q * stride, q * stride + kernel_size)
            for b in range(B):
                for c in range(C):
                    yield b, c, p, q, rows, cols


def avgpool_eps(a, R, kernel_size, stride, epsilon=0.1, accumulate=True):
    R_in = np.zeros_like(a)
    for b, c, p, q, rows, cols in windows(a, kernel_size, stride):
        z_ij = a[b, c, rows, cols] / kernel_size ** 2
        z = z_ij.sum()
        share = z_ij / (z + (epsilon if z >= 0 else -epsilon)) * R[b, c, p, q]
        if accumulate:
            R_in[b, c, rows, cols] += share
        else:                          # bug: overlapping windows overwrite each other
            R_in[b, c, rows, cols] = share
    return R_in


def maxpool(a, R, kernel_size, stride, mode="winner", split_ties=True):
    R_in = np.zeros_like(a)
    for b, c, p, q, rows, cols in windows(a, kernel_size, stride):
        x = a[b, c, rows, cols]
        if mode == "winner":
            winners = (x == x.max()).astype(float)
            if not split_ties:         # bug: the first maximum takes all
                first = np.zeros(x.size)
                first[np.argmax(x)] = 1.0
                winners = first.reshape(x.shape)
            R_in[b, c, rows, cols] += winners / winners.sum() * R[b, c, p, q]
        elif x.sum() != 0:
            R_in[b, c, rows, cols] += x / x.sum() * R[b, c, p, q]
    return R_in


def batchnorm_eps(a, gamma, beta, mean, var, R, eps, epsilon=0.1, shift=True):
    axes = (1, -1) + (1,) * (a.ndim - 2)
    scale = (gamma / np.sqrt(var + eps)).reshape(axes)
    c = (beta - mean * gamma / np.sqrt(var + eps)).reshape(axes)
    z = a * scale + (c if shift else 0.0)
    return a * scale / (z + epsilon * np.where(z >= 0, 1.0, -1.0)) * R


def residual_split(z_body, z_shortcut, R, epsilon, copy=False):
    if copy:                            # bug: each branch gets all of R
        return R.copy(), R.copy()
    z = z_body + z_shortcut
    d = z + epsilon * np.where(z >= 0, 1.0, -1.0)
    s = np.divide(R, d, out=np.zeros_like(R), where=d != 0)
    return z_body * s, z_shortcut * s


@pytest.mark.parametrize("student, layer, options", [
    (avgpool_eps, "avgpool", {"rule": lrp.Epsilon(0.1)}),
    (maxpool, "maxpool", {"mode": "winner"}),
    (lambda a, R, kernel_size, stride: maxpool(a, R, kernel_size, stride, "proportional"),
     "maxpool", {"mode": "proportional"}),
    (batchnorm_eps, "batchnorm", {"rule": lrp.Epsilon(0.1)}),
    (residual_split, "residual", {}),
])
def test_correct_students_pass(student, layer, options):
    report = grade(student, layer, n_cases=20, **options)
    assert report.ok, str(report)
    assert report.score == 1.0


def test_maxpool_winner_that_does_not_split_ties():
    report = grade(lambda a, R, kernel_size, stride: maxpool(a, R, kernel_size, stride,
                                                              split_ties=False),
                   "maxpool", mode="winner", n_cases=20)
    assert "ties within windows" in dict(report.failed)
    assert "a tie for the window maximum" in report.hint and "splits R_j equally" in report.hint


def test_maxpool_graded_in_the_other_mode_fails():
    assert not grade(maxpool, "maxpool", mode="proportional", n_cases=10).ok


def test_avgpool_overwriting_overlapping_windows():
    report = grade(lambda a, R, kernel_size, stride: avgpool_eps(a, R, kernel_size, stride,
                                                                 accumulate=False),
                   "avgpool", rule=lrp.Epsilon(0.1), n_cases=20)
    assert report.counterexample.case.name.startswith("overlapping windows")
    # a later window overwrites an earlier one's share with its own (0 when probed alone)
    assert "only outputs with overlapping windows" in report.hint
    assert "windows pass" in report.hint and "absorbed" not in report.hint


def test_batchnorm_without_the_shift():
    report = grade(lambda *args, eps: batchnorm_eps(*args, eps=eps, shift=False), "batchnorm",
                   rule=lrp.Epsilon(0.1), n_cases=20)
    assert report.counterexample.case.name.startswith("a shift c")
    assert "b_j != 0" in report.hint and "absorbed_bias" in report.hint


def test_residual_copying_relevance_into_both_branches():
    report = grade(lambda *args, epsilon: residual_split(*args, epsilon, copy=True), "residual",
                   n_cases=20)
    assert not report.ok and report.counterexample.case.name == "both branches positive"
    assert "absorbed" not in report.hint and "only outputs with" not in report.hint


def test_residual_student_returning_one_array_is_told_the_pair():
    report = grade(lambda z_body, z_shortcut, R, epsilon: R, "residual", n_cases=3)
    assert "return the pair (R_body, R_short)" in report.failed[0][1]


def test_report_exports_to_json_with_a_score():
    def student(a, w, b, R):
        z = a @ w                                       # bug: the bias is left out
        return a * ((R / (z + 0.1 * np.where(z >= 0, 1.0, -1.0))) @ w.T)

    report = grade(student, "dense", rule=lrp.Epsilon(0.1), n_cases=10)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total"] == 10 and data["passed"] == len(report.passed)
    assert data["score"] == pytest.approx(len(report.passed) / 10) and not data["ok"]
    c = data["counterexample"]
    assert c["case"] == report.counterexample.case.name
    np.testing.assert_array_equal(np.array(c["got"]), report.counterexample.got)
    assert set(c["arguments"]) == {"a", "w", "b", "R"} and c["hint"] == report.hint
    assert json.loads(report.to_json())["setting"] == "rule " + lrp.rules.describe(lrp.Epsilon(0.1))


def test_nan_in_an_exported_report_becomes_a_string():
    report = grade(lambda a, w, b, R: a * ((R / (a @ w + b)) @ w.T), "dense", rule=lrp.Zero(),
                   n_cases=8)
    got = json.loads(report.to_json())["counterexample"]["got"]
    assert any(v in ("nan", "inf", "-inf") for row in got for v in row)


def test_hidden_cases_are_random_only_and_depend_on_the_seed():
    published = grade(avgpool_eps, "avgpool", rule=lrp.Epsilon(0.1), n_cases=8)
    hidden = grade(avgpool_eps, "avgpool", rule=lrp.Epsilon(0.1), n_cases=8, hidden=True,
                   seed=2026)
    assert published.passed[0].startswith("positive inputs")
    assert hidden.passed == [f"random {k}" for k in range(8)]

    def tailored(a, R, kernel_size, stride):
        """Right on the published tricky cases only (looked up), zero elsewhere."""
        for case in lrp.testing.grading_tasks.TASKS["avgpool"].tricky():
            if case.a.shape == a.shape and np.array_equal(case.a, a):
                return avgpool_eps(a, R, kernel_size, stride)
        return np.zeros_like(a)

    assert not grade(tailored, "avgpool", rule=lrp.Epsilon(0.1), n_cases=6, hidden=True).ok


def test_grade_refuses_settings_the_layer_does_not_take():
    with pytest.raises(ValueError, match="takes no rule"):
        grade(maxpool, "maxpool", rule=lrp.Epsilon())
    with pytest.raises(ValueError, match="mode must be 'winner' or 'proportional'"):
        grade(maxpool, "maxpool", mode="max")
    with pytest.raises(ValueError, match="takes no mode"):
        grade(avgpool_eps, "avgpool", rule=lrp.Epsilon(), mode="winner")
    with pytest.raises(TypeError, match="linear rule"):
        grade(batchnorm_eps, "batchnorm")


# -- a whole network ------------------------------------------------------------------------------


def dense_eps(a, w, b, R, epsilon=0.1):
    z = a @ w + b
    return a * ((R / (z + epsilon * np.where(z >= 0, 1.0, -1.0))) @ w.T)


def test_per_layer_functions_composed_pass():
    report = grade_network({"dense": dense_eps, "residual": residual_split},
                           rule=lrp.Epsilon(0.1), n_cases=6)
    assert report.ok, str(report)


def test_a_full_implementation_returning_the_input_relevance_passes():
    composed = compose({"dense": dense_eps, "residual": residual_split})
    report = grade_network(lambda layers, x, target: composed(layers, x, target)["0"],
                           rule=lrp.Epsilon(0.1), n_cases=4)
    assert report.ok, str(report)


def test_a_wrong_split_is_located_at_the_residual():
    report = grade_network(
        {"dense": dense_eps,
         "residual": lambda *args, epsilon: residual_split(*args, epsilon, copy=True)},
        rule=lrp.Epsilon(0.1), n_cases=4)
    assert not report.ok
    assert "the residual split at '2'" in report.hint
    assert "reference ledger of sample 0" in report.counterexample.ledger


def test_a_wrong_dense_rule_is_located_at_the_top_layer():
    report = grade_network({"dense": lambda a, w, b, R: dense_eps(a, w, b, R, epsilon=0.2),
                            "residual": residual_split}, rule=lrp.Epsilon(0.1), n_cases=4)
    assert "first differs at the input of layer '4' (Dense)" in report.hint
    data = json.loads(report.to_json())
    assert data["layer"] == "network" and data["counterexample"]["arguments"]["layers"]
