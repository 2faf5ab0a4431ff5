"""Conv2d: forward and gradients against naive loops and finite differences, every rule on
both paths and against the unrolled Dense layer, ledger, LRP-0 == Gradient x Input, io.

Tolerances (float64, unit roundoff u = 1.1e-16):

* forward and gradients vs the naive loops: sums of at most 27 products in a
  different order; 1e-12 relative to the sum of the terms' magnitudes is
  ~1000x the bound 29 u.
* explicit vs fast, and fast vs the unrolled Dense layer: 1e-12 times
  ``naive.rounding_scale`` (the terms' size amplified by each denominator's
  conditioning), as in tests/test_dense_rules.py.
* ledger: 1e-10 times the sum of the magnitudes of its terms; conservation:
  1e-10 times the rounding scale.
* finite differences: the map is linear in x and in w, so central differences
  are exact but for rounding, ~u |L| / h = 1e-10 for h = 1e-6; we allow 1e-7.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.engine.linear import EXPLICIT_MAX_BYTES

import naive
from naive import (
    assert_equals_unrolled_dense,
    assert_explicit_equals_fast,
    assert_ledger_balances,
    conv_cases,
    example_rules,
    keeps_absent_weights_absent,
    layer_rounding_scale,
    unrolled,
)

# explicit == fast runs per rule; the other properties draw the rule with the example
RULES = example_rules()
DENSE_EQUIVALENT = [rule for rule in RULES if keeps_absent_weights_absent(rule)]


def rule_id(rule) -> str:
    return lrp.rules.describe(rule)


# -- forward and backward ------------------------------------------------------------------


@given(case=conv_cases(), band_bytes=st.sampled_from([lrp.Conv2d.BAND_BYTES, 1, 200]))
def test_forward_and_gradients_match_naive_loops(case, band_bytes):
    """Also with tiny im2col blocks, where every band holds one or a few output rows and
    every fold group of the transposed convolution one or a few channels (VGG-sized
    layers run in blocks of ~16 MB): the results must not notice."""
    layer, a, g = case
    layer.BAND_BYTES = band_bytes
    stride, padding = layer.window.stride, layer.window.padding
    z = layer.forward(a)
    expected = naive.conv_forward(a, layer.weight, layer.bias, stride, padding)
    magnitude = naive.conv_forward(np.abs(a), np.abs(layer.weight), np.abs(layer.bias),
                                   stride, padding).max() + 1e-300
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-12 * magnitude)
    grad_a = layer.backward(g)
    grad_a_naive, grad_w_naive, grad_b_naive = naive.conv_gradients(a, layer.weight, stride,
                                                                    padding, g)
    scale = (np.abs(g).sum() * (np.abs(a).max() + np.abs(layer.weight).max())) + 1e-300
    np.testing.assert_allclose(grad_a, grad_a_naive, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_weight, grad_w_naive, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_bias, grad_b_naive, rtol=0, atol=1e-12 * scale)
    assert layer.grad_weight.shape == layer.weight.shape


@pytest.mark.parametrize("stride, padding, kernel", [(1, 0, (3, 3)), (2, 1, (3, 2)),
                                                     ((1, 2), (2, 0), (2, 3)), (3, 1, (1, 1))])
def test_gradients_match_finite_differences(stride, padding, kernel):
    rng = np.random.default_rng(7)
    w, b = rng.standard_normal((2, 2, *kernel)), rng.standard_normal(2)
    a = rng.standard_normal((2, 2, 5, 6))
    layer = lrp.Conv2d(w, b, stride=stride, padding=padding)
    g = rng.standard_normal(layer.forward(a).shape)

    def loss(a_, w_, b_):
        return float((g * lrp.Conv2d(w_, b_, stride=stride, padding=padding).forward(a_)).sum())

    layer.forward(a)
    grad_a = layer.backward(g)
    for mine, numeric in [(grad_a, naive.finite_difference(lambda x: loss(x, w, b), a)),
                          (layer.grad_weight, naive.finite_difference(lambda x: loss(a, x, b), w)),
                          (layer.grad_bias, naive.finite_difference(lambda x: loss(a, w, x), b))]:
        np.testing.assert_allclose(mine, numeric, rtol=0, atol=1e-7 * np.abs(numeric).max())


def test_matches_torch_layout_by_hand():
    """Cross-correlation, not convolution: the kernel is not flipped (as in PyTorch)."""
    a = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, 0.0]]]])            # picks the window's top-left entry
    np.testing.assert_array_equal(lrp.Conv2d(w).forward(a)[0, 0], [[0, 1], [3, 4]])
    z = lrp.Conv2d(w, np.array([0.5]), stride=2, padding=1).forward(a)
    np.testing.assert_array_equal(z[0, 0], [[0.5, 0.5], [0.5, 4.5]])  # padding holds 0


# -- rules: explicit == fast == unrolled Dense ---------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@given(case=conv_cases())
def test_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@given(case=conv_cases(), rule=st.sampled_from(DENSE_EQUIVALENT))
def test_equals_the_unrolled_dense_layer(case, rule):
    """A convolution is a Dense layer with shared weights and zeros off the window."""
    assert_equals_unrolled_dense(*case, rule)


@given(case=conv_cases(), rule=st.sampled_from(RULES),
       method=st.sampled_from(["fast", "explicit"]))
def test_ledger_balances(case, rule, method):
    """sum R_out = sum R_in + absorbed_bias + absorbed_stabilizer + dropped (the ledger)."""
    assert_ledger_balances(*case, rule, method)


@given(case=conv_cases(), rule=st.sampled_from([lrp.Zero(), lrp.AlphaBeta(1, 0),
                                                lrp.AlphaBeta(2, 1)]))
def test_conservation_without_bias(case, rule):
    """With b = 0 nothing is absorbed: sum R_in = sum R_out - dropped, where dropped is
    alpha R_j at outputs without positive contributions and -beta R_j at outputs without
    negative ones (LRP-0: R_j where z_j = 0), counted here on the unrolled layer."""
    layer, a, R = case
    layer.bias[:] = 0
    W, _, _ = unrolled(layer, a.shape[1:])
    B = len(a)
    z_ij, R_j = a.reshape(B, -1)[:, :, None] * W[None], R.reshape(B, -1)
    if isinstance(rule, lrp.Zero):
        dropped = np.where(z_ij.sum(axis=1) == 0, R_j, 0).sum(axis=1)
    else:
        dropped = (rule.alpha * np.where(np.maximum(z_ij, 0).sum(axis=1) == 0, R_j, 0)
                   - rule.beta * np.where(np.minimum(z_ij, 0).sum(axis=1) == 0, R_j, 0)).sum(1)
    layer.forward(a)
    R_in = layer.relevance(R, rule)
    np.testing.assert_allclose(per_sample_sum(R_in), per_sample_sum(R) - dropped, rtol=0,
                               atol=1e-10 * layer_rounding_scale(layer, a, R, rule) + 1e-300)


def test_padding_is_no_input():
    """A 3x3 kernel with padding 1 on a 1x1 image: only the centre weight meets an input."""
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    layer = lrp.Conv2d(w, padding=1)
    a = np.array([[[[2.0]]]])
    np.testing.assert_array_equal(layer.forward(a), [[[[10.0]]]])        # 2 * w[1, 1] = 2 * 5
    single_share = [rule for rule in RULES if len(rule.parts()) == 1
                    and rule.parts()[0].coefficient == 1 and rule.parts()[0].epsilon == 0]
    assert len(single_share) >= 3
    for rule in single_share:
        # one input, one output, no bias, no stabilizer: z'_ij / z'_j = 1 for every such rule
        np.testing.assert_allclose(layer.relevance(np.array([[[[3.0]]]]), rule), [[[[3.0]]]],
                                   rtol=1e-15)


@pytest.mark.parametrize("channels, size", [((2, 3), 5), ((3, 2), 5), ((3, 2), 2)],
                         ids=["widening", "narrowing", "few-positions"])
def test_relevance_is_a_contiguous_array_of_its_own(channels, size):
    """Both transposed convolutions (fold: widening, or fewer than 2 C_in output positions;
    flipped kernel otherwise) hand on a new C-contiguous R_in."""
    rng = np.random.default_rng(0)
    n_in, n_out = channels
    layer = lrp.Conv2d(rng.normal(size=(n_out, n_in, 3, 3)), padding=1)
    a = rng.normal(size=(2, n_in, size, size))
    R = rng.normal(size=layer.forward(a).shape)
    R_in = layer.relevance(R, lrp.Epsilon(0.1))
    assert R_in.flags.c_contiguous
    assert not np.shares_memory(R_in, a) and not np.shares_memory(R_in, R)


# -- networks ------------------------------------------------------------------------------


@st.composite
def conv_relu_networks(draw):
    """Conv -> ReLU -> MaxPool -> Conv -> ReLU -> Flatten -> Dense, with biases."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c0, c1, c2 = (draw(st.integers(1, 3)) for _ in range(3))
    size = draw(st.integers(4, 8))
    k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    pool = lrp.MaxPool2d(draw(st.integers(1, 2)), draw(st.sampled_from([None, 1])))

    def conv(c_in, c_out, **kw):
        return lrp.Conv2d(rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k),
                          0.1 * rng.standard_normal(c_out), **kw)

    first = conv(c0, c1, stride=s, padding=k // 2)
    second = conv(c1, c2, padding=draw(st.integers(k // 2, k - 1)))   # keeps >= 1 output
    head = [first, lrp.ReLU(), pool, second, lrp.ReLU(), lrp.Flatten()]
    x = rng.standard_normal((draw(st.integers(1, 2)), c0, size, size))
    features = lrp.Sequential(head).forward(x).shape[1]
    net = lrp.Sequential(head + [lrp.Dense(rng.standard_normal((features, 3)),
                                           0.1 * rng.standard_normal(3))])
    return net, x


@given(case=conv_relu_networks())
def test_lrp0_equals_gradient_x_input(case):
    """Ancona et al. 2018: on ReLU networks with biases and max-pooling without ties in
    nonzero windows, LRP-0 == Gradient x Input. 1e-10 relative to the largest entry, as
    in tests/test_network.py."""
    net, x = case
    e = net.explain(x, rule=lrp.Zero())
    gxi = net.gradient_x_input(x, e.target)
    np.testing.assert_allclose(e.relevance, gxi, rtol=0, atol=1e-10 * np.abs(gxi).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(3)
    net = lrp.Sequential([
        lrp.Conv2d(rng.standard_normal((4, 2, 3, 2)), rng.standard_normal(4), stride=(2, 1),
                   padding=(1, 0)),
        lrp.ReLU(), lrp.MaxPool2d(2, 1, mode="proportional"), lrp.AvgPool2d((1, 2)),
        lrp.Flatten(), lrp.Dense(rng.standard_normal((4 * 2 * 2, 3))),
    ]).astype(dtype)
    x = rng.standard_normal((2, 2, 5, 6))
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert repr(loaded) == repr(net)
    assert loaded.forward(x).dtype == dtype
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    rule = lrp.Epsilon(0.1)
    np.testing.assert_array_equal(loaded.explain(x, rule=rule).relevance,
                                  net.explain(x, rule=rule).relevance)


def test_float32_network_stays_float32():
    rng = np.random.default_rng(4)
    net = lrp.Sequential([lrp.Conv2d(rng.standard_normal((2, 1, 2, 2))), lrp.ReLU(),
                          lrp.AvgPool2d(2), lrp.MaxPool2d(1), lrp.Flatten()]).astype(np.float32)
    x = rng.standard_normal((1, 1, 5, 5))
    for rule in [lrp.Epsilon(), lrp.AlphaBeta(2, 1)]:
        e = net.explain(x, rule=rule, output_relevance=np.ones((1, 2 * 2 * 2)))
        assert e.relevance.dtype == np.float32
        assert all(r.relevance_in.dtype == np.float32 for r in e.layers)
        assert all(r.dropped.dtype == np.float32 for r in e.layers)
    assert net.gradient_x_input(x).dtype == np.float32


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    ({"weight": np.ones((2, 3))}, ValueError, "(C_out, C_in / groups, kh, kw)"),
    ({"weight": np.ones((2, 1, 3, 3)), "bias": np.ones(3)}, ValueError, "bias must have shape"),
    ({"weight": np.ones((2, 1, 3, 3)), "stride": 0}, ValueError, "stride must be >= 1"),
    ({"weight": np.ones((2, 1, 3, 3)), "padding": -1}, ValueError, "padding must be >= 0"),
    ({"weight": np.ones((2, 1, 3, 3)), "stride": (1, 2, 3)}, TypeError, "pair of ints"),
    ({"weight": np.ones((2, 1, 3, 3)), "padding": 1.5}, TypeError, "pair of ints"),
    ({"weight": np.full((2, 1, 3, 3), np.nan)}, ValueError, "NaN"),
    ({"weight": np.ones((2, 0, 3, 3))}, ValueError, "at least 1 output channel, 1 input "
                                                    "channel and a kernel of size 1, got "
                                                    "(2, 0, 3, 3)"),
    ({"weight": np.ones((0, 2, 3, 3))}, ValueError, "got (0, 2, 3, 3)"),
    ({"weight": np.ones((2, 2, 3, 0))}, ValueError, "got (2, 2, 3, 0)"),
])
def test_bad_construction(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        lrp.Conv2d(**kwargs)


def test_bad_input_names_the_layer():
    net = lrp.Sequential([lrp.Conv2d(np.ones((2, 3, 3, 3)))])
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\): expected input of shape "
                                         r"\(B, 3, \*, \*\), got \(1, 2, 5, 5\)"):
        net.forward(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\): input of spatial size \(2, 5\)"
                                         r".* smaller than the kernel \(3, 3\)"):
        net.forward(np.ones((1, 3, 2, 5)))


def test_explicit_path_refuses_large_layers():
    """A VGG-sized layer would materialise gigabytes of z_ij: refused with the engine's
    message instead (the fast path computes the same relevance)."""
    layer = lrp.Conv2d(np.ones((64, 64, 3, 3), np.float32), padding=1)
    layer.forward(np.ones((1, 64, 64, 64), np.float32))
    assert 64 * 64 * 576 * 64 * 4 > EXPLICIT_MAX_BYTES       # z_ij: 576 MiB
    assert layer.relevance(np.ones((1, 64, 64, 64)), lrp.Epsilon()).shape == (1, 64, 64, 64)
    R = np.ones((1, 64, 64, 64), np.float32)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"explicit path would materialise z_ij .* use "
                                         r"method='fast'"):
        layer.relevance(R, lrp.Epsilon(), method="explicit")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # refused before its patches (4096 x 576 float32, 9 MiB) are built; R (1 MiB) may
    # be copied once by the input checks
    assert peak < 2 * 2**20
