"""lrp_ref.testing: assert_relevance_close, the hypothesis strategies and the grader."""

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.testing import assert_relevance_close, grade, max_relative_difference

# -- assert_relevance_close -------------------------------------------------------------------


def test_equal_maps_pass_including_an_all_zero_sample():
    x = np.array([[0.5, -1e-12, 3.0], [0.0, 0.0, 0.0]])
    assert_relevance_close(x, x.copy(), rtol=0.0)
    assert max_relative_difference(x, x.copy()) == 0.0


def test_tolerance_is_relative_to_each_samples_largest_relevance():
    expected = np.array([[1000.0, 1e-9, -3.0], [1e-3, 2e-3, 0.0]])
    # sample 0: 5e-4 on a near-zero element is 5e-7 of max|expected| = 1000: inside rtol 1e-6,
    # although element-wise it is 5e5 times the element
    actual = expected + np.array([[0.0, 5e-4, 0.0], [0.0, 0.0, 0.0]])
    assert_relevance_close(actual, expected, rtol=1e-6)
    # the same absolute error in sample 1 (scale 2e-3) is 0.25 of its scale: outside
    with pytest.raises(AssertionError):
        assert_relevance_close(expected + np.array([[0, 0, 0], [0, 5e-4, 0]]), expected, rtol=1e-6)
    # by hand: sample 0 5e-4/1000, sample 1 5e-4/2e-3
    both = expected + np.array([[0, 5e-4, 0], [0, 5e-4, 0]])
    assert max_relative_difference(both, expected) == pytest.approx(0.25, rel=1e-12)


def test_atol_is_added_to_the_scale_relative_tolerance():
    expected = np.zeros((1, 3))
    assert_relevance_close(np.array([[1e-9, 0, 0]]), expected, atol=1e-8)
    with pytest.raises(AssertionError):
        assert_relevance_close(np.array([[1e-9, 0, 0]]), expected)   # all-zero sample: exact


def test_report_of_a_perturbed_result_names_what_a_human_needs():
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((3, 2, 4))
    actual = expected.copy()
    actual[1, 1, 2] += 0.5                     # one element of sample 1, sum changes by +0.5
    actual[2] = expected[2][::-1, ::-1]        # sample 2 permuted: same sum, other places
    with pytest.raises(AssertionError) as info:
        assert_relevance_close(actual, expected, rtol=1e-6)
    message = str(info.value)
    n_outside = int(np.sum(np.abs(actual - expected).reshape(3, -1) > 1e-6 * np.abs(
        expected).reshape(3, -1).max(axis=1, keepdims=True)))
    assert f"{n_outside} of 24 elements" in message
    assert f"({100 * n_outside / 24:.3g}%)" in message
    # the largest difference and where it is
    diff = np.abs(actual - expected)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert f"at index {tuple(int(i) for i in worst)}" in message
    assert f"actual {actual[worst]:.10g}, expected {expected[worst]:.10g}" in message
    # per-sample sums and their difference: +0.5 for sample 1, ~0 for the permuted sample 2
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\s+(\d)\s.*$", message, re.M)}
    assert f"{expected[1].sum():.10g}" in rows[1] and "+0.5" in rows[1]
    assert f"{actual[1].sum():.10g}" in rows[1]
    assert re.search(r"[+-]\d(\.\d+)?e-1[5-7]|\+0\s*$|[+-]0$", rows[2].split()[-1])
    assert rows[0].split()[4] == "0/8"          # sample 0 is within tolerance
    assert "sum diff" in message and "max|expected|" in message


@pytest.mark.parametrize("actual, expected, text", [
    (np.zeros((2, 3)), np.zeros((2, 4)), "shape mismatch: actual (2, 3), expected (2, 4)"),
    (np.array([[1.0, np.nan]]), np.ones((1, 2)), "actual relevance contains 1 NaN or inf"),
    (np.ones((1, 2)), np.array([[np.inf, 1.0]]), "expected relevance contains 1 NaN or inf"),
])
def test_shape_mismatch_and_nan_fail(actual, expected, text):
    with pytest.raises(AssertionError, match=re.escape(text)):
        assert_relevance_close(actual, expected, rtol=1.0)


def test_invalid_tolerances_are_refused():
    with pytest.raises(ValueError, match="rtol and atol"):
        assert_relevance_close(np.ones(2), np.ones(2), rtol=-1.0)


# -- strategies --------------------------------------------------------------------------------


def test_hypothesis_is_imported_only_when_a_strategy_is_used():
    code = ("import sys, lrp_ref, lrp_ref.testing as t\n"
            "assert 'hypothesis' not in sys.modules, 'imported too early'\n"
            "t.dense_networks\n"
            "assert 'hypothesis' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _balanced(e) -> float:
    """The largest ledger imbalance relative to the relevance that passed through."""
    worst = 0.0
    for record in e.layers:
        scale = max(np.abs(record.relevance_out).sum(), np.abs(record.relevance_in).sum(),
                    np.abs(record.ledger.total()).max(), 1e-300)
        worst = max(worst, float(np.abs(record.imbalance()).max() / scale))
    return worst


@given(st.data())
def test_generated_networks_inputs_and_rules_explain_and_balance(data):
    import lrp_ref.testing as t

    net = data.draw(st.one_of(t.dense_networks(), t.conv_networks()))
    x = data.draw(t.inputs_for(net, zeros=data.draw(st.sampled_from([0.0, 0.3]))))
    rule = data.draw(t.rules())
    e = net.explain(x, rule=rule)
    assert e.relevance.shape == x.shape and np.all(np.isfinite(e.relevance))
    # the ledger balances to rounding (1e-10 relative: docs/conventions.md, "The ledger")
    assert _balanced(e) <= 1e-10


@given(st.data())
def test_strategy_options(data):
    import lrp_ref.testing as t

    net = data.draw(t.dense_networks(max_depth=1, max_width=2, bias=False))
    assert len(net.layers) == 1 and net[0].weight.shape[0] <= 2 and not net[0].bias.any()
    x = data.draw(t.inputs_for(net, max_batch=1, nonnegative=True))
    assert x.shape[0] == 1 and np.all(x >= 0)
    assert isinstance(data.draw(t.rules(names=("ZPlus",))), lrp.ZPlus)


def test_inputs_for_finds_the_image_size_and_refuses_unknown_rule_names():
    from lrp_ref.testing.strategies import input_shape, rules

    rng = np.random.default_rng(0)
    net = lrp.Sequential([lrp.MaxPool2d(2), lrp.Conv2d(rng.standard_normal((2, 3, 3, 3))),
                          lrp.Flatten(), lrp.Dense(rng.standard_normal((8, 1)))])
    # 2 channels x 2 x 2 = 8 features after the conv: the pooled image is 4 x 4, the input 8 x 8
    assert input_shape(net) == (3, 8, 8)
    with pytest.raises(ValueError, match="unknown rule families"):
        rules(names=("Lrp0",))


# -- the grader ----------------------------------------------------------------------------------


def epsilon_student(a, w, b, R, epsilon=0.1, sign=True, bias=True):
    """LRP-epsilon written from the equation (eq. (6) of docs/theory.md), independent of lrp_ref."""
    z = a @ w + (b if bias else 0.0)
    d = z + (np.where(z >= 0, epsilon, -epsilon) if sign else epsilon)
    return a * ((R / d) @ w.T)


def alpha_beta_student(a, w, b, R, alpha=2.0, beta=1.0):
    """LRP-alpha-beta from the equation, z+_ij and z-_ij materialised."""
    z_ij = a[:, :, None] * w[None]
    out = 0.0
    for coefficient, z_part, b_part in ((alpha, np.maximum(z_ij, 0), np.maximum(b, 0)),
                                        (-beta, np.minimum(z_ij, 0), np.minimum(b, 0))):
        d = z_part.sum(axis=1) + b_part
        s = np.divide(R, d, out=np.zeros_like(R), where=d != 0)
        out = out + coefficient * (z_part * s[:, None, :]).sum(axis=2)
    return out


def conv_epsilon_student(a, w, b, R, stride, padding, epsilon=0.1, sign=True):
    """LRP-epsilon for a convolution with explicit loops over output positions."""
    B, C, H, W = a.shape
    C_out, _, kh, kw = w.shape
    a_pad = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    R_pad = np.zeros_like(a_pad)
    for p in range(R.shape[2]):
        for q in range(R.shape[3]):
            window = a_pad[:, :, p * stride:p * stride + kh, q * stride:q * stride + kw]
            z_ij = window[:, None] * w[None]                   # (B, C_out, C, kh, kw)
            z = z_ij.sum(axis=(2, 3, 4)) + b
            d = z + (np.where(z >= 0, epsilon, -epsilon) if sign else epsilon)
            share = z_ij / d[:, :, None, None, None]
            R_pad[:, :, p * stride:p * stride + kh, q * stride:q * stride + kw] += (
                share * R[:, :, p, q][:, :, None, None, None]).sum(axis=1)
    return R_pad[:, :, padding:padding + H, padding:padding + W]


def lrp_ref_student(layer_type, rule):
    """A 'student' that calls lrp_ref itself (so every rule has a passing implementation)."""
    def student(a, w, b, R, **conv):
        layer = layer_type(w, b, **conv)
        layer.forward(a)
        return layer.relevance(R, rule)
    return student


@pytest.mark.parametrize("student, layer, rule", [
    (epsilon_student, "dense", lrp.Epsilon(0.1)),
    (lambda a, w, b, R: epsilon_student(a, w, b, R, epsilon=1e-6), "dense", lrp.Epsilon(1e-6)),
    (alpha_beta_student, "dense", lrp.AlphaBeta(2, 1)),
    (lambda a, w, b, R: alpha_beta_student(a, w, b, R, 1.0, 0.0), "dense", lrp.AlphaBeta(1, 0)),
    (conv_epsilon_student, "conv", lrp.Epsilon(0.1)),
])
def test_grader_passes_independent_reference_implementations(student, layer, rule):
    report = grade(student, layer, rule=rule, n_cases=25)
    assert report.ok, str(report)
    assert len(report.passed) == 25 and report.counterexample is None
    assert str(report).endswith("25 of 25 cases passed")


@pytest.mark.parametrize("layer, layer_type", [("dense", lrp.Dense), ("conv", lrp.Conv2d)])
@pytest.mark.parametrize("rule", [lrp.Zero(), lrp.Epsilon(0.5, bias=False), lrp.AlphaBeta(1, 0),
                                  lrp.ZPlus(), lrp.Gamma(0.25), lrp.Flat(), lrp.WSquare(),
                                  lrp.ZBox(-1.0, 2.0)])
def test_grader_runs_every_linear_rule_on_both_layers(layer, layer_type, rule):
    assert grade(lrp_ref_student(layer_type, rule), layer, rule=rule, n_cases=12).ok


def test_missing_epsilon_sign_fails_where_z_is_negative():
    def student(a, w, b, R):
        return epsilon_student(a, w, b, R, sign=False)

    report = grade(student, "dense", rule=lrp.Epsilon(0.1), n_cases=20)
    assert not report.ok
    c = report.counterexample
    # the first two tricky cases have z_j > 0 only and pass; the first with z_j < 0 fails
    assert report.passed[:2] == ["positive inputs, weights and relevance scale; no bias",
                                 "biases of both signs (z_j > 0)"]
    assert c.case.name == "negative pre-activations z_j < 0"
    z = c.case.a @ c.case.w + c.case.b
    differs = np.abs(c.got - c.expected) > 1e-9
    assert (z < 0).any() and differs.any()
    assert "z_j < 0" in c.hint and "epsilon * sign(z_j)" in c.hint
    np.testing.assert_array_equal(c.got, student(c.case.a, c.case.w, c.case.b, c.case.R))


def test_ignored_bias_fails_on_the_first_case_with_a_bias():
    report = grade(lambda a, w, b, R: epsilon_student(a, w, b, R, bias=False), "dense",
                   rule=lrp.Epsilon(0.1), n_cases=20)
    c = report.counterexample
    assert report.passed[0] == "positive inputs, weights and relevance scale; no bias"
    assert c.case.name == "biases of both signs (z_j > 0)" and np.any(c.case.b != 0)
    assert "bias" in c.hint and "absorbed_bias" in c.hint


def test_swapped_alpha_and_beta_are_recognised():
    report = grade(lambda a, w, b, R: alpha_beta_student(a, w, b, R, alpha=1.0, beta=2.0),
                   "dense", rule=lrp.AlphaBeta(2, 1), n_cases=20)
    c = report.counterexample
    assert not report.ok and c.case.name.startswith("positive inputs")
    assert "alpha and beta are swapped" in c.hint
    text = str(report)
    for part in ("first counterexample", "expected", "got", "ledger per sample", "hint:",
                 f"{len(report.passed)} of 20 cases passed"):
        assert part in text


def test_conv_missing_sign_and_a_crashing_student():
    def student(a, w, b, R, stride, padding):
        return conv_epsilon_student(a, w, b, R, stride, padding, sign=False)

    report = grade(student, "conv", rule=lrp.Epsilon(0.1), n_cases=10)
    assert report.counterexample.case.name.startswith("negative pre-activations")
    assert "z_j < 0" in report.hint

    def crashes(a, w, b, R):
        raise KeyError("oops")

    report = grade(crashes, "dense", rule=lrp.Zero(), n_cases=3)
    assert report.failed[0][1] == "your function raised KeyError: 'oops'"
    assert "exception" in report.hint


def test_nan_from_a_zero_denominator_gets_its_hint():
    report = grade(lambda a, w, b, R: a * ((R / (a @ w + b)) @ w.T), "dense", rule=lrp.Zero(),
                   n_cases=10)
    failed = dict(report.failed)
    assert "NaN or inf" in failed["contributions cancelling to z_j = 0"]
    c = report.counterexample            # the first case with an exact z_j = 0
    assert np.any(c.case.a @ c.case.w + c.case.b == 0) and not np.all(np.isfinite(c.got))
    assert report.passed[:3] == ["positive inputs, weights and relevance scale; no bias",
                             "biases of both signs (z_j > 0)", "negative pre-activations z_j < 0"]
    assert "zero denominator" in report.hint and "dropped" in report.hint


def test_grade_refuses_bad_arguments():
    with pytest.raises(ValueError, match="layer must be one of 'dense', 'conv'"):
        grade(epsilon_student, "lstm", rule=lrp.Epsilon())
    with pytest.raises(TypeError, match="linear rule"):
        grade(epsilon_student, rule=lrp.Pass())
    with pytest.raises(ValueError, match="n_cases"):
        grade(epsilon_student, rule=lrp.Epsilon(), n_cases=0)
