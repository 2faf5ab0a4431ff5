"""Depthwise convolutions (one input channel per group): the shifted-slice kernels of
``lrp_ref.engine.kernels`` (``depthwise_convolve``, ``depthwise_transposed``,
``depthwise_weight_gradient``) against the naive loops over the connections
(tests/naive.py, written from torch's definitions), the routing of the three entry points,
and every rule on depthwise Conv2d, Conv1d and ConvTranspose2d layers (explicit == fast,
Flat and WSquare on true inputs only, the ledger). torch's own F.conv2d and
F.conv_transpose2d: tests/test_conv_options_torch.py.

Tolerances (float64, unit roundoff u = 1.1e-16): every output of the kernels is a sum of
at most kh * kw <= 9 products (the transposed map: multiplier * kh * kw <= 27; the weight
gradient: batch * Ho * Wo <= 2 * 11 * 11 = 242), summed in another order than the naive
loops: at most ~242 u = 2.7e-14 relative to the sum of the terms' magnitudes, so 1e-12 of
that sum (bounded from above as below) leaves a margin of ~40. The layer-level checks use
the tolerances of tests/test_conv_options.py.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_conv_options import option_cases

import lrp_ref as lrp
from lrp_ref.engine import kernels
from lrp_ref.engine.patches import Window

import naive
from naive import assert_explicit_equals_fast, assert_ledger_balances, example_rules

RULES = example_rules()


@st.composite
def grouped_geometry(draw):
    """``(x, w, s, window, groups)``: a zero-padded depthwise convolution (1 to 4 groups of
    one input channel, 1 to 3 output channels per group), an input and an ``s`` shaped like
    its output (float64, seeded)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups, multiplier = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    window = Window(kernel, (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                    (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
                    (draw(st.integers(1, 3)), draw(st.integers(1, 3))))
    size = tuple(draw(st.integers(max(1, e - 2 * p), max(6, e - 2 * p)))
                 for e, p in zip(window.extent, window.padding))
    x = rng.standard_normal((draw(st.integers(1, 2)), groups, *size))
    w = rng.standard_normal((groups * multiplier, 1, *kernel))
    s = rng.standard_normal((x.shape[0], w.shape[0], *window.output_size(size, "test")))
    return x, w, s, window, groups


def conv_layer(w: np.ndarray, window: Window, groups: int) -> lrp.Conv2d:
    """The Conv2d of the geometry (no bias): the naive loops read theirs from its config."""
    return lrp.Conv2d(w, stride=window.stride, padding=window.padding,
                      dilation=window.dilation, groups=groups)


@given(grouped_geometry())
def test_shifted_slices_are_the_convolution_its_adjoint_and_its_weight_gradient(case):
    """``z = conv(x)``, ``c = conv^T(s)`` and ``dL/dw`` for ``L = <s, conv(x)>`` against the
    connection list of tests/naive.py; the magnitudes bound the sums of |terms|."""
    x, w, s, window, groups = case
    layer = conv_layer(w, window, groups)
    z = kernels.depthwise_convolve(x, w, window, groups)
    np.testing.assert_allclose(z, naive.conv_options_forward(layer, x), rtol=0,
                               atol=1e-12 * np.abs(x).max() * np.abs(w).sum())
    grad_x, grad_w, _ = naive.conv_options_gradients(layer, x, s)
    c = kernels.depthwise_transposed(s, w, window, x.shape[2:], groups)
    assert c.shape == x.shape
    np.testing.assert_allclose(c, grad_x, rtol=0, atol=1e-12 * np.abs(s).max() * np.abs(w).sum())
    g = kernels.depthwise_weight_gradient(x, s, window, w.shape, groups)
    np.testing.assert_allclose(g, grad_w, rtol=0,
                               atol=1e-12 * np.abs(s).sum() * np.abs(x).max())


@pytest.mark.parametrize("groups, size", [(8, 5), (2, 9)], ids=["channels-last", "rows"])
def test_both_memory_layouts(groups, size):
    """More channels than output columns run channels-last, fewer along the rows: both are
    the convolution, its adjoint and its weight gradient (stride 2, multiplier 2, float64;
    tolerances as above)."""
    rng = np.random.default_rng(groups)
    window = Window((3, 3), (2, 2), (1, 1), (1, 1))
    x = rng.standard_normal((2, groups, size, size))
    w = rng.standard_normal((2 * groups, 1, 3, 3))
    s = rng.standard_normal((2, 2 * groups, *window.output_size((size, size), "test")))
    assert (groups > s.shape[3]) == (groups == 8)
    layer = conv_layer(w, window, groups)
    np.testing.assert_allclose(kernels.depthwise_convolve(x, w, window, groups),
                               naive.conv_options_forward(layer, x), rtol=0,
                               atol=1e-12 * np.abs(x).max() * np.abs(w).sum())
    grad_x, grad_w, _ = naive.conv_options_gradients(layer, x, s)
    np.testing.assert_allclose(kernels.depthwise_transposed(s, w, window, x.shape[2:], groups),
                               grad_x, rtol=0, atol=1e-12 * np.abs(s).max() * np.abs(w).sum())
    np.testing.assert_allclose(kernels.depthwise_weight_gradient(x, s, window, w.shape, groups),
                               grad_w, rtol=0, atol=1e-12 * np.abs(s).sum() * np.abs(x).max())


@given(grouped_geometry())
def test_the_shifted_slices_equal_the_im2col_route(case):
    """The same three maps by the batched GEMM over im2col columns (the route of the
    other grouped convolutions), also in float32: 1e-5 relative to the magnitude, ~170 u
    of float32 (u = 6e-8), for sums of at most 27 products."""
    x, w, s, window, groups = case
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        x_d, w_d, s_d = x.astype(dtype), w.astype(dtype), s.astype(dtype)
        z = kernels.depthwise_convolve(x_d, w_d, window, groups)
        assert z.dtype == dtype
        with mock.patch.object(kernels, "depthwise", lambda w, groups: False):
            gemm = kernels.convolve(x_d, w_d, window, groups=groups)
        np.testing.assert_allclose(z, gemm, rtol=0,
                                   atol=tol * np.abs(x).max() * np.abs(w).sum())
        c = kernels.depthwise_transposed(s_d, w_d, window, x.shape[2:], groups)
        fold = kernels.fold_transposed_groups(s_d, w_d, window, x.shape[2:],
                                              kernels.BAND_BYTES, groups)
        assert c.dtype == dtype
        np.testing.assert_allclose(c, fold, rtol=0,
                                   atol=tol * np.abs(s).max() * np.abs(w).sum())


def no_im2col(*args, **kwargs):
    raise AssertionError("im2col columns built")


@pytest.mark.parametrize("per_group, multiplier, routed", [
    (1, 1, True), (1, 3, True), (2, 2, False)])
def test_depthwise_convolutions_take_the_shifted_slices(per_group, multiplier, routed,
                                                        monkeypatch):
    """``convolve`` at stride 1, ``transposed_convolution`` (both of its routes: stride 1
    and 2) and ``convolution_weight_gradient`` build no im2col columns for a depthwise
    convolution (any multiplier); with 2 input channels per group they do (and with 2
    outputs per group: the stride-1 transposed map convolves with the flipped kernel,
    whose input channels per group are the outputs per group), and so does ``convolve``
    at stride 2."""
    monkeypatch.setattr(Window, "columns", no_im2col)
    monkeypatch.setattr(Window, "add_windows", no_im2col)
    rng = np.random.default_rng(0)
    groups = 3
    w = rng.standard_normal((groups * multiplier, per_group, 3, 3))
    x = rng.standard_normal((1, groups * per_group, 8, 8))
    for window in (Window((3, 3), (1, 1), (1, 1)), Window((3, 3), (2, 2), (1, 1))):
        s = rng.standard_normal((1, w.shape[0], *window.output_size((8, 8), "test")))
        calls = [(kernels.convolve, (x, w, window, kernels.BAND_BYTES, groups)),
                 (kernels.transposed_convolution, (s, w, window, (8, 8), kernels.BAND_BYTES,
                                                   groups)),
                 (kernels.convolution_weight_gradient, (x, s, window, w.shape, groups))]
        for call, args in calls:
            if routed and not (call is kernels.convolve and window.stride != (1, 1)):
                call(*args)
            else:
                with pytest.raises(AssertionError, match="im2col"):
                    call(*args)
    assert not kernels.depthwise(w[:1].shape, 1)       # one group: the plain GEMM


# -- every rule on depthwise layers ------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=option_cases(depthwise=True))
def test_explicit_equals_fast_on_depthwise_layers(rule, case):
    """The fast path's z, c and the rules' variants (w+, w-, Flat's ones, WSquare's w^2,
    ZBox's bounds) all run through the shifted slices; the explicit path forms every z_ij."""
    assert_explicit_equals_fast(*case, rule)


@given(case=option_cases(depthwise=True))
def test_depthwise_forward_and_gradients_match_naive_loops(case):
    layer, a, g = case
    z = layer.forward(a)
    magnitude = np.abs(a).max() * np.abs(layer.weight).sum() + np.abs(layer.bias).max() + 1e-300
    np.testing.assert_allclose(z, naive.conv_options_forward(layer, a), rtol=0,
                               atol=1e-12 * magnitude)
    grad_a = layer.backward(g)
    grad_a_naive, grad_w_naive, _ = naive.conv_options_gradients(layer, a, g)
    scale = np.abs(g).sum() * (np.abs(a).max() + np.abs(layer.weight).max()) + 1e-300
    np.testing.assert_allclose(grad_a, grad_a_naive, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_weight, grad_w_naive, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("rule, weight_of", [(lrp.Flat(), np.ones_like),
                                             (lrp.WSquare(), np.square)], ids=["Flat", "WSquare"])
@given(case=option_cases(depthwise=True))
def test_depthwise_flat_and_wsquare_count_only_true_inputs(rule, weight_of, case):
    layer, a, R = case
    layer.forward(a)
    np.testing.assert_allclose(layer.relevance(R, rule), naive.conv_options_shares(
        layer, a, R, weight_of), rtol=0, atol=1e-12 * np.abs(R).sum() + 1e-300)


@given(case=option_cases(depthwise=True), rule=st.sampled_from(RULES))
def test_depthwise_ledger_balances(case, rule):
    assert_ledger_balances(*case, rule, "fast")
