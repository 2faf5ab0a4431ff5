"""AvgPool2d (a linear layer: every rule, both paths) and MaxPool2d (winner / proportional).

Tolerances (float64, unit roundoff u = 1.1e-16):

* AvgPool2d vs the naive loops and the unrolled Dense layer, and explicit vs
  fast: 1e-12 times ``naive.rounding_scale``, as in tests/test_conv.py.
* MaxPool2d forward and backward pick or add values without arithmetic on
  them: exact. Its relevance divides once per window and adds at most 9
  overlapping shares: 1e-12 relative to the largest |R| (times the window
  sum's conditioning, sum |a| / |sum a|, for ``proportional``).
* ledger: 1e-10 times the sum of the magnitudes of its terms (``ledger_scale``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

import naive
from naive import (
    assert_equals_unrolled_dense,
    assert_explicit_equals_fast,
    assert_ledger_balances,
    example_rules,
    keeps_absent_weights_absent,
    maxpool_backward,
    maxpool_forward,
    maxpool_relevance,
    pool_inputs,
    unrolled,
)
from strategies import sparse_normal

RULES = example_rules()
MODES = ["winner", "proportional"]


def rule_id(rule) -> str:
    return lrp.rules.describe(rule)


@st.composite
def avgpool_cases(draw):
    kernel, stride, a = draw(pool_inputs())
    layer = lrp.AvgPool2d(kernel, stride)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    R = sparse_normal(rng, naive.pool_shape(a, kernel, layer.window.stride), 0.2)
    return layer, a, R


# -- AvgPool2d -------------------------------------------------------------------------------


@given(case=avgpool_cases())
def test_avgpool_forward_and_gradient_match_naive(case):
    layer, a, g = case
    np.testing.assert_allclose(layer.forward(a),
                               naive.avgpool_forward(a, layer.window.kernel, layer.window.stride),
                               rtol=0, atol=1e-12 * np.abs(a).max())
    W, _, _ = unrolled(layer, a.shape[1:])
    expected = (g.reshape(len(g), -1) @ W.T).reshape(a.shape)        # the adjoint, by matrix
    np.testing.assert_allclose(layer.backward(g), expected, rtol=0,
                               atol=1e-12 * np.abs(g).max() + 1e-300)


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@given(case=avgpool_cases())
def test_avgpool_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@given(case=avgpool_cases(),
       rule=st.sampled_from([r for r in RULES if keeps_absent_weights_absent(r)]))
def test_avgpool_equals_the_unrolled_dense_layer(case, rule):
    assert_equals_unrolled_dense(*case, rule)


@given(case=avgpool_cases(), rule=st.sampled_from(RULES),
       method=st.sampled_from(["fast", "explicit"]))
def test_avgpool_ledger_balances_without_bias_term(case, rule, method):
    record = assert_ledger_balances(*case, rule, method)
    np.testing.assert_array_equal(record.absorbed_bias, 0)           # b_j = 0


def test_avgpool_by_hand():
    a = np.array([[[[1.0, 3.0, 0.0], [0.0, 4.0, 8.0]]]])
    layer = lrp.AvgPool2d((2, 2), stride=1)
    np.testing.assert_array_equal(layer.forward(a), [[[[2.0, 3.75]]]])
    # LRP-0: R_i = sum_j a_i / (4 z_j) R_j; here R_j = z_j, so R_i = a_i * (#windows of i) / 4
    R_in = layer.relevance(np.array([[[[2.0, 3.75]]]]), lrp.Zero())
    np.testing.assert_allclose(R_in, [[[[0.25, 1.5, 0.0], [0.0, 2.0, 2.0]]]], rtol=1e-15)


# -- MaxPool2d ---------------------------------------------------------------------------


@given(case=pool_inputs(), mode=st.sampled_from(MODES))
def test_maxpool_forward_and_backward_match_naive(case, mode):
    kernel, stride, a = case
    layer = lrp.MaxPool2d(kernel, stride, mode=mode)
    np.testing.assert_array_equal(layer.forward(a), maxpool_forward(a, kernel,
                                                                    layer.window.stride))
    g = np.random.default_rng(0).standard_normal(layer.forward(a).shape)
    np.testing.assert_allclose(layer.backward(g),
                               maxpool_backward(a, kernel, layer.window.stride, g),
                               rtol=0, atol=1e-15 * np.abs(g).sum())


@pytest.mark.parametrize("method", ["fast", "explicit"])
@given(case=pool_inputs(), mode=st.sampled_from(MODES),
       integers=st.booleans())
def test_maxpool_relevance_and_ledger_match_naive(case, mode, method, integers):
    """Integer-valued inputs make ties and zero-sum windows common."""
    kernel, stride, a = case
    if integers:
        a = np.round(2 * a)
    layer = lrp.MaxPool2d(kernel, stride, mode=mode)
    R = np.random.default_rng(1).standard_normal(layer.forward(a).shape)
    expected, dropped = maxpool_relevance(a, kernel, layer.window.stride, R, mode)
    e = lrp.Sequential([layer]).explain(a, rule=[None], method=method, output_relevance=R)
    record = e.layer("0")
    windows = naive.windows_of(a, kernel, layer.window.stride)
    cond = max(np.abs([a[n, c, y, x] for y, x in pos]).sum()
               / max(abs(sum(a[n, c, y, x] for y, x in pos)), 1e-300)
               for (n, c, _, _), pos in windows.items())
    scale = np.abs(R).max() * (1 if mode == "winner" else min(cond, 1e6))
    np.testing.assert_allclose(e.relevance, expected, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(record.dropped, dropped, rtol=0, atol=1e-12 * np.abs(R).sum())
    np.testing.assert_array_equal(record.absorbed_bias, 0)
    np.testing.assert_array_equal(record.absorbed_stabilizer, 0)
    np.testing.assert_allclose(record.imbalance(), 0,
                               atol=1e-10 * (np.abs(R).sum() + np.abs(expected).sum()))
    if mode == "winner":                                 # every window has a maximum
        np.testing.assert_array_equal(record.dropped, 0)
        np.testing.assert_allclose(per_sample_sum(e.relevance), per_sample_sum(R), rtol=0,
                                   atol=1e-12 * np.abs(R).sum())


def test_maxpool_tie_splits_equally():
    a = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    layer = lrp.MaxPool2d(2)
    layer.forward(a)
    np.testing.assert_array_equal(layer.relevance(np.array([[[[4.0]]]])),
                                  [[[[0.0, 2.0], [2.0, 0.0]]]])
    # the gradient follows PyTorch: the first maximum in row-major order takes it all
    np.testing.assert_array_equal(layer.backward(np.array([[[[4.0]]]])),
                                  [[[[0.0, 4.0], [0.0, 0.0]]]])


def test_maxpool_overlapping_windows_accumulate():
    a = np.array([[[[0.0, 5.0, 1.0]]]])
    layer = lrp.MaxPool2d((1, 2), stride=1)                  # both windows pick the 5
    np.testing.assert_array_equal(layer.forward(a), [[[[5.0, 5.0]]]])
    np.testing.assert_array_equal(layer.relevance(np.array([[[[1.0, 2.0]]]])),
                                  [[[[0.0, 3.0, 0.0]]]])


def test_maxpool_proportional_by_hand_and_zero_window_is_dropped():
    a = np.array([[[[1.0, 3.0, 2.0, -2.0]]]])
    layer = lrp.MaxPool2d((1, 2), mode="proportional")
    layer.forward(a)
    e = lrp.Sequential([layer]).explain(a, rule=[None],
                                        output_relevance=np.array([[[[8.0, 5.0]]]]))
    np.testing.assert_array_equal(e.relevance, [[[[2.0, 6.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(e.layer("0").dropped, [5.0])


def test_maxpool_takes_no_rule_and_checks_its_mode():
    net = lrp.Sequential([lrp.MaxPool2d(2), lrp.Flatten()])
    x = np.ones((1, 1, 2, 2))
    assert net.explain(x, rule=lrp.Epsilon()).relevance.shape == x.shape   # skipped
    with pytest.raises(ValueError, match=r"layer '0' \(MaxPool2d\) takes no rule"):
        net.explain(x, rule=[lrp.Epsilon(), None])
    with pytest.raises(ValueError, match="mode must be 'winner' or 'proportional'"):
        lrp.MaxPool2d(2, mode="average")
    with pytest.raises(ValueError, match=r"MaxPool2d\): input of spatial size \(1, 4\)"):
        net.forward(np.ones((1, 1, 1, 4)))
    with pytest.raises(ValueError, match=r"expected input of shape \(B, \*, \*, \*\)"):
        net.forward(np.ones((1, 4)))
