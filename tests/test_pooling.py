"""The pooling layers with torch's options, against the naive loops of tests/naive.py.

AvgPool2d (padding, ceil_mode, count_include_pad, divisor_override) and
AdaptiveAvgPool2d (any output size) are linear layers: every rule, both
paths. MaxPool2d (padding, dilation, ceil_mode) and AdaptiveMaxPool2d take a
mode. The comparisons with torch itself are in tests/test_pooling_torch.py.

Tolerances (float64, unit roundoff u = 1.1e-16):

* AvgPool2d vs the naive loops and the unrolled Dense layer, and explicit vs
  fast: 1e-12 times ``naive.rounding_scale``, as in tests/test_conv.py.
* MaxPool2d forward and backward pick or add values without arithmetic on
  them: exact (backward: up to the order of the additions where windows
  overlap, 1e-15 of sum |g|). Its relevance divides once per window and adds
  at most a few overlapping shares: 1e-12 relative to the largest |R| (times
  the window sum's conditioning, sum |a| / |sum a|, for ``proportional``).
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
    layer_windows,
    pool_layers,
    unrolled,
)
from strategies import sparse_normal

RULES = example_rules()
LINEAR_KINDS = ["avg", "adaptive_avg"]
MAX_KINDS = ["max", "adaptive_max"]


def rule_id(rule) -> str:
    return lrp.rules.describe(rule)


@st.composite
def linear_pool_cases(draw):
    layer, a = draw(pool_layers(draw(st.sampled_from(LINEAR_KINDS))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    R = sparse_normal(rng, layer.forward(a).shape, 0.2)
    return layer, a, R


# -- AvgPool2d and AdaptiveAvgPool2d -----------------------------------------------------------


@given(case=linear_pool_cases())
def test_avgpool_forward_and_gradient_match_naive(case):
    layer, a, g = case
    np.testing.assert_allclose(layer.forward(a),
                               naive.depthwise_forward(a, naive.taps(layer, a.shape[2:])),
                               rtol=0, atol=1e-12 * np.abs(a).max())
    W, _, _ = unrolled(layer, a.shape[1:])
    expected = (g.reshape(len(g), -1) @ W.T).reshape(a.shape)        # the adjoint, by matrix
    np.testing.assert_allclose(layer.backward(g), expected, rtol=0,
                               atol=1e-12 * np.abs(g).max() + 1e-300)


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@given(case=linear_pool_cases())
def test_avgpool_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@given(case=linear_pool_cases(),
       rule=st.sampled_from([r for r in RULES if keeps_absent_weights_absent(r)]))
def test_avgpool_equals_the_unrolled_dense_layer(case, rule):
    assert_equals_unrolled_dense(*case, rule)


@given(case=linear_pool_cases(), rule=st.sampled_from(RULES),
       method=st.sampled_from(["fast", "explicit"]))
def test_avgpool_ledger_balances_without_bias_term(case, rule, method):
    record = assert_ledger_balances(*case, rule, method)
    np.testing.assert_array_equal(record.absorbed_bias, 0)           # b_j = 0


@given(case=linear_pool_cases())
def test_flat_and_wsquare_count_only_true_inputs(case):
    naive.assert_flat_and_wsquare_count_connections_only(*case)


def test_avgpool_by_hand():
    a = np.array([[[[1.0, 3.0, 0.0], [0.0, 4.0, 8.0]]]])
    layer = lrp.AvgPool2d((2, 2), stride=1)
    np.testing.assert_array_equal(layer.forward(a), [[[[2.0, 3.75]]]])
    # LRP-0: R_i = sum_j a_i / (4 z_j) R_j; here R_j = z_j, so R_i = a_i * (#windows of i) / 4
    R_in = layer.relevance(np.array([[[[2.0, 3.75]]]]), lrp.Zero())
    np.testing.assert_allclose(R_in, [[[[0.25, 1.5, 0.0], [0.0, 2.0, 2.0]]]], rtol=1e-15)


def test_avgpool_padding_divisors_by_hand():
    """a = [1, 2, 3] (one row), kernel (1, 2), stride (1, 2), padding (0, 1): windows
    [pad, 1], [2, 3]. count_include_pad: 1/2 and 5/2; without: 1 and 5/2; divisor 4:
    1/4 and 5/4; ceil_mode (no padding): [1, 2], [3, overhang] -> 3/2 and 3 (torch
    divides by the window clipped to the input and padding, here 1)."""
    a = np.array([[[[1.0, 2.0, 3.0]]]])
    cases = [(dict(padding=(0, 1)), [0.5, 2.5]),
             (dict(padding=(0, 1), count_include_pad=False), [1.0, 2.5]),
             (dict(padding=(0, 1), divisor_override=4), [0.25, 1.25]),
             (dict(ceil_mode=True), [1.5, 3.0])]
    for options, expected in cases:
        layer = lrp.AvgPool2d((1, 2), (1, 2), **options)
        np.testing.assert_allclose(layer.forward(a), [[[expected]]], rtol=1e-15)


def test_flat_counts_only_true_inputs_of_a_padded_window():
    """kernel 3, padding 1 on a 2x2 input: each window holds the 4 inputs and 5 padded
    positions, so Flat gives each input R_j / 4, whatever the divisor (9)."""
    layer = lrp.AvgPool2d(3, stride=2, padding=1)
    a = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(layer.forward(a), [[[[10 / 9]]]], rtol=1e-15)
    for method in ("fast", "explicit"):
        np.testing.assert_allclose(layer.relevance(np.array([[[[2.0]]]]), lrp.Flat(), method),
                                   np.full((1, 1, 2, 2), 0.5), rtol=1e-15)


def test_adaptive_avgpool_unequal_windows_by_hand():
    """H = 5 to 3: rows [0, 2), [1, 4), [3, 5) (floor(p 5/3) .. ceil((p+1) 5/3)):
    windows of 2, 3, 2 inputs overlapping at rows 1 and 3."""
    a = np.array([1.0, 2.0, 4.0, 8.0, 16.0]).reshape(1, 1, 5, 1)
    layer = lrp.AdaptiveAvgPool2d((3, 1))
    np.testing.assert_allclose(layer.forward(a).ravel(), [1.5, 14 / 3, 12.0], rtol=1e-15)
    # LRP-0 with R_j = z_j: R_i = sum_j a_i / n_j (a row in two windows gets two shares)
    R = layer.forward(a)
    np.testing.assert_allclose(layer.relevance(R, lrp.Zero()).ravel(),
                               [0.5, 1 + 2 / 3, 4 / 3, 8 / 3 + 4, 8.0], rtol=1e-14)


def test_adaptive_avgpool_upsamples_to_a_larger_size():
    """VGG's AdaptiveAvgPool2d(7) from 2x2: windows of one input each; input (y, x) feeds
    the outputs whose window holds it (4 rows x 4 columns of 7: the middle row is shared)."""
    a = np.arange(4.0).reshape(1, 1, 2, 2)
    z = lrp.AdaptiveAvgPool2d(7).forward(a)
    rows = [0, 0, 0, 0.5, 1, 1, 1]                  # row 3 averages both input rows
    expected = np.array([[(1 - r) * a[0, 0, 0, c] + r * a[0, 0, 1, c] for c in (0, 0, 0)]
                         for r in rows])
    np.testing.assert_allclose(z[0, 0, :, 0], expected[:, 0], rtol=1e-15)


# -- MaxPool2d and AdaptiveMaxPool2d ---------------------------------------------------------


@given(case=st.sampled_from(MAX_KINDS).flatmap(pool_layers))
def test_maxpool_forward_and_backward_match_naive(case):
    layer, a = case
    windows = layer_windows(layer, a.shape[2:])
    np.testing.assert_array_equal(layer.forward(a), naive.maxpool_forward(a, windows))
    g = np.random.default_rng(0).standard_normal(layer.forward(a).shape)
    np.testing.assert_allclose(layer.backward(g), naive.maxpool_backward(a, windows, g),
                               rtol=0, atol=1e-15 * np.abs(g).sum())


@pytest.mark.parametrize("method", ["fast", "explicit"])
@given(case=st.sampled_from(MAX_KINDS).flatmap(pool_layers), integers=st.booleans())
def test_maxpool_relevance_and_ledger_match_naive(case, method, integers):
    """Integer-valued inputs make ties and zero-sum windows common."""
    layer, a = case
    if integers:
        a = np.round(2 * a)
    R = np.random.default_rng(1).standard_normal(layer.forward(a).shape)
    windows = layer_windows(layer, a.shape[2:])
    expected, dropped = naive.maxpool_relevance(a, windows, R, layer.mode)
    e = lrp.Sequential([layer]).explain(a, rule=[None], method=method, output_relevance=R)
    record = e.layer("0")
    cond = max(np.abs([a[n, c, y, x] for y, x in pos]).sum()
               / max(abs(sum(a[n, c, y, x] for y, x in pos)), 1e-300)
               for pos in windows[0].values() for n in range(len(a)) for c in range(a.shape[1]))
    scale = np.abs(R).max() * (1 if layer.mode == "winner" else min(cond, 1e6))
    np.testing.assert_allclose(e.relevance, expected, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(record.dropped, dropped, rtol=0, atol=1e-12 * np.abs(R).sum())
    np.testing.assert_array_equal(record.absorbed_bias, 0)
    np.testing.assert_array_equal(record.absorbed_stabilizer, 0)
    np.testing.assert_allclose(record.imbalance(), 0,
                               atol=1e-10 * (np.abs(R).sum() + np.abs(expected).sum()))
    if layer.mode == "winner":                           # every window has a maximum
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


def test_maxpool_ceil_mode_and_dilation_by_hand():
    """a = [-1, -2, -3, -4, -5]: kernel 2 stride 2 with ceil_mode has a third window
    [-5, overhang] whose maximum is -5 (the overhang is -inf: no input); dilation 2 with
    kernel 2 reads a[p], a[p + 2]."""
    a = -np.arange(1.0, 6.0).reshape(1, 1, 1, 5)
    ceil = lrp.MaxPool2d((1, 2), ceil_mode=True)
    np.testing.assert_array_equal(ceil.forward(a), [[[[-1.0, -3.0, -5.0]]]])
    np.testing.assert_array_equal(ceil.relevance(np.array([[[[1.0, 2.0, 3.0]]]])),
                                  [[[[1.0, 0.0, 2.0, 0.0, 3.0]]]])
    dilated = lrp.MaxPool2d((1, 2), stride=1, dilation=(1, 2))
    np.testing.assert_array_equal(dilated.forward(a), [[[[-1.0, -2.0, -3.0]]]])
    np.testing.assert_array_equal(dilated.relevance(np.array([[[[1.0, 2.0, 3.0]]]])),
                                  [[[[1.0, 2.0, 3.0, 0.0, 0.0]]]])


def test_maxpool_common_case_keeps_the_tiled_window():
    """VGG-16's pool (kernel = stride = 2, even input) uses the strided Window with its
    tiled path; ceil_mode on an even input changes nothing, and still tiles."""
    for layer in (lrp.MaxPool2d(2), lrp.MaxPool2d(2, ceil_mode=True)):
        layer.forward(np.zeros((1, 1, 4, 4)))
        assert isinstance(layer.window, lrp.engine.patches.Window) and layer.window.tiles


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
    with pytest.raises(ValueError, match="lies in the padding only"):
        lrp.MaxPool2d((1, 2), dilation=2, padding=(0, 1)).forward(np.ones((1, 1, 1, 1)))


def test_options_survive_save_and_load(tmp_path):
    net = lrp.Sequential([
        lrp.MaxPool2d(3, 2, padding=1, dilation=(1, 2), ceil_mode=True, mode="proportional"),
        lrp.AvgPool2d(2, 1, padding=1, ceil_mode=True, count_include_pad=False,
                      divisor_override=3),
        lrp.AdaptiveMaxPool2d((3, 2)), lrp.AdaptiveAvgPool2d(5)])
    lrp.save(net, tmp_path / "m.npz")
    back = lrp.load(tmp_path / "m.npz")
    assert [layer.config() for layer in back] == [layer.config() for layer in net]
    x = np.random.default_rng(0).standard_normal((1, 2, 9, 9))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_float32_network_stays_float32_through_every_window_layer():
    """A float32 Conv2d first (a network without parameters computes in float64)."""
    net = lrp.Sequential([
        lrp.Conv2d(np.ones((2, 2, 1, 1), np.float32)),
        lrp.AvgPool2d(3, 1, padding=1, count_include_pad=False), lrp.Upsample(scale_factor=1.5,
                                                                             mode="bilinear"),
        lrp.MaxPool2d(2, 1, dilation=2, ceil_mode=True), lrp.AdaptiveAvgPool2d(3),
        lrp.AdaptiveMaxPool2d(2)])
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 7)).astype(np.float32)
    assert net.forward(x).dtype == np.float32
    for rule in (lrp.Epsilon(), lrp.AlphaBeta(2, 1), lrp.Flat()):
        e = net.explain(x, rule=rule, output_relevance=np.ones((1, 2, 2, 2), np.float32))
        assert e.relevance.dtype == np.float32
        assert all(record.relevance_in.dtype == np.float32 for record in e.layers)
