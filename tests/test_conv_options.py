"""Convolution options: groups (depthwise), dilation, asymmetric and 'same' padding, padding
modes, Conv1d and ConvTranspose2d — against naive loops over the connections written from
torch's definitions (tests/naive.py, ``conv_connections``), every rule on both paths, the
ledger, the treatment of padding copies, io and errors. torch itself: test_conv_options_torch.

Tolerances (float64, unit roundoff u = 1.1e-16), as in tests/test_conv.py:

* forward and gradients vs the naive loops: sums of at most 3*3*3 products (times 2 for a
  copy of an input) in another order; 1e-12 relative to the sum of the terms' magnitudes.
* explicit vs fast and vs the unrolled Dense layer: 1e-12 times
  ``naive.rounding_scale``; Flat and WSquare vs their definition on the connection list:
  the same sums of at most ~50 shares in another order, 1e-12 relative to ``sum |R_j|``.
* ledger: 1e-10 times the sum of the magnitudes of its terms.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp

import naive
from naive import (
    assert_equals_unrolled_dense,
    assert_explicit_equals_fast,
    assert_ledger_balances,
    example_rules,
    keeps_absent_weights_absent,
)
from strategies import sparse_normal

RULES = example_rules()
DENSE_EQUIVALENT = [rule for rule in RULES if keeps_absent_weights_absent(rule)]
MODES = ["zeros", "reflect", "replicate", "circular"]


def rule_id(rule) -> str:
    return lrp.rules.describe(rule)


@st.composite
def option_cases(draw, kinds=("conv2d", "conv1d", "transposed"), modes=tuple(MODES),
                 depthwise=False):
    """``(layer, a, R)``: a Conv2d, Conv1d or ConvTranspose2d with random groups, stride,
    dilation, padding (symmetric, asymmetric or 'same') and padding mode; an input on
    which at least one window fits, and an output relevance.

    ``depthwise``: 2 to 4 groups, each a single channel on the convolution's input side
    (the layer's input, the output of a transposed one) and 1 to 3 on the other (a
    channel multiplier), the layers ``kernels.depthwise`` routes to the shifted slices."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(naive.SOME_ZEROS)
    kind = draw(st.sampled_from(kinds))
    groups = draw(st.integers(2, 4) if depthwise else st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    if depthwise:
        narrow, wide = groups, groups * draw(st.integers(1, 3))
        c_in, c_out = (wide, narrow) if kind == "transposed" else (narrow, wide)
    batch = draw(st.integers(1, 2))
    two_d = kind != "conv1d"
    rank = 2 if two_d else 1
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if kind == "transposed":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                               for s, d in zip(stride, dilation))
        # the output (n - 1) s - 2 p + extent + op must have at least one row
        least = [max(1, -(-(2 * q - e - op + 1) // s) + 1)
                 for q, e, op, s in zip(padding, extent, output_padding, stride)]
        size = [draw(st.integers(n, max(n, 4))) for n in least]
        w = sparse_normal(rng, (c_in, c_out // groups, *kernel), p)
        layer = lrp.ConvTranspose2d(w, sparse_normal(rng, (c_out,), p), stride=stride,
                                    padding=padding, output_padding=output_padding,
                                    groups=groups, dilation=dilation)
    else:
        mode = draw(st.sampled_from(modes))
        form = draw(st.sampled_from(["symmetric", "asymmetric", "same"]))
        if form == "same":
            stride = (1,) * rank
            widths = [(t // 2, t - t // 2) for t in (e - 1 for e in extent)]
            padding = "same"
        else:
            widths = [(draw(st.integers(0, 2)),) * 2 if form == "symmetric"
                      else (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                      for _ in range(rank)]
            padding = (widths[0][0] if rank == 1 else tuple(w[0] for w in widths)) \
                if form == "symmetric" else (widths[0] if rank == 1 else tuple(widths))
        # a window fits (padded size >= extent); reflect pads less than the size,
        # circular at most the size
        least = {"reflect": 1, "circular": 0}.get(mode)
        size = [draw(st.integers(max(1, e - a - b, 0 if least is None else max(a, b) + least),
                                 max(6, e - a - b, max(a, b) + 1)))
                for e, (a, b) in zip(extent, widths)]
        w = sparse_normal(rng, (c_out, c_in // groups, *kernel), p)
        b = sparse_normal(rng, (c_out,), p)
        if two_d:
            layer = lrp.Conv2d(w, b, stride=stride, padding=padding, dilation=dilation,
                               groups=groups, padding_mode=mode)
        else:
            layer = lrp.Conv1d(w, b, stride=stride[0], padding=padding, dilation=dilation[0],
                               groups=groups, padding_mode=mode)
    a = sparse_normal(rng, (batch, c_in, *size), p)
    R = sparse_normal(rng, layer.forward(a).shape, p)
    return layer, a, R


# -- forward and backward against the naive loops -----------------------------------------


@given(case=option_cases(), band_bytes=st.sampled_from([lrp.Conv2d.BAND_BYTES, 1, 200]))
def test_forward_and_gradients_match_naive_loops(case, band_bytes):
    """Also with tiny im2col blocks (every band one output row, every fold block one group)."""
    layer, a, g = case
    layer.BAND_BYTES = band_bytes
    z = layer.forward(a)
    expected = naive.conv_options_forward(layer, a)
    assert z.shape == expected.shape
    magnitude = np.abs(a).max() * np.abs(layer.weight).sum() + np.abs(layer.bias).max() + 1e-300
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-12 * magnitude)
    grad_a = layer.backward(g)
    grad_a_naive, grad_w_naive, grad_b_naive = naive.conv_options_gradients(layer, a, g)
    scale = np.abs(g).sum() * (np.abs(a).max() + np.abs(layer.weight).max()) + 1e-300
    np.testing.assert_allclose(grad_a, grad_a_naive, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_weight, grad_w_naive, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_bias, grad_b_naive, rtol=0, atol=1e-12 * scale)


# -- rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@given(case=option_cases())
def test_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@given(case=option_cases(modes=("zeros",)), rule=st.sampled_from(DENSE_EQUIVALENT))
def test_equals_the_unrolled_dense_layer(case, rule):
    """With zero padding every connection is a distinct (input, output) pair: the layer is
    the Dense layer of its connection matrix, zeros off the windows and between groups."""
    assert_equals_unrolled_dense(*case, rule)


@pytest.mark.parametrize("rule, weight_of", [(lrp.Flat(), np.ones_like),
                                             (lrp.WSquare(), np.square)], ids=["Flat", "WSquare"])
@pytest.mark.parametrize("method", ["fast", "explicit"])
@given(case=option_cases())
def test_flat_and_wsquare_count_only_true_inputs(rule, weight_of, method, case):
    """``n_j`` (Flat) and ``sum_i w_ij^2`` (WSquare) run over the connections of ``j`` only:
    its group's inputs in its window, each copy of an input in a padded window once; not the
    zero padding, not the other groups, not the holes of a dilated or transposed window."""
    layer, a, R = case
    layer.forward(a)
    expected = naive.conv_options_shares(layer, a, R, weight_of)
    np.testing.assert_allclose(layer.relevance(R, rule, method=method), expected, rtol=0,
                               atol=1e-12 * np.abs(R).sum() + 1e-300)


@given(case=option_cases(), rule=st.sampled_from(RULES),
       method=st.sampled_from(["fast", "explicit"]))
def test_ledger_balances(case, rule, method):
    assert_ledger_balances(*case, rule, method)


def test_depthwise_flat_by_hand():
    """Two channels, groups=2, a 1x2 kernel: each output sees the 2 inputs of its own
    channel, so Flat gives each of them half (a dense kernel with zero blocks would see
    4 inputs and give a quarter to the other channel too)."""
    layer = lrp.Conv2d(np.ones((2, 1, 1, 2)), groups=2)
    layer.forward(np.arange(4.0).reshape(1, 2, 1, 2))
    R_in = layer.relevance(np.array([[[[4.0]], [[6.0]]]]), lrp.Flat())
    np.testing.assert_array_equal(R_in, [[[[2.0, 2.0]], [[3.0, 3.0]]]])


# -- padding copies -------------------------------------------------------------------------


def test_reflect_padding_by_hand():
    """Conv1d w = (1, 1, 1), padding 1 reflect on x = (1, 2, 3): the padded row is
    (2, 1, 2, 3, 2) and z = (5, 6, 7). With LRP-0 and R_j = z_j every window entry keeps its
    own value, and each copy's relevance returns to x_1 = 2 (twice in the first window,
    twice in the last): R = (1 + 1, 2+2 + 2 + 2+2, 3 + 3) = (2, 10, 6), summing to 18."""
    layer = lrp.Conv1d(np.ones((1, 1, 3)), padding=1, padding_mode="reflect")
    z = layer.forward(np.array([[[1.0, 2.0, 3.0]]]))
    np.testing.assert_array_equal(z, [[[5.0, 6.0, 7.0]]])
    for method in ("fast", "explicit"):
        np.testing.assert_allclose(layer.relevance(z, lrp.Zero(), method=method),
                                   [[[2.0, 10.0, 6.0]]], rtol=1e-15)


def fold_back(R_pad, widths, mode, size):
    """The relevance of a padded input added onto the elements it copies, by loops."""
    R = np.zeros(R_pad.shape[:2] + tuple(size))
    (top, _), (left, _) = widths
    for r, c in np.ndindex(*R_pad.shape[2:]):
        y, x = naive.source(r - top, size[0], mode), naive.source(c - left, size[1], mode)
        if y is not None and x is not None:
            R[:, :, y, x] += R_pad[:, :, r, c]
    return R


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@pytest.mark.parametrize("mode", MODES[1:])
def test_padding_copies_return_their_relevance(mode, rule):
    """A padded conv is the padding (a copy) followed by the conv without padding: its
    relevance is the unpadded conv's relevance on the explicitly padded input (numpy.pad),
    folded back onto the elements the padded entries copy; sums are conserved by the fold."""
    rng = np.random.default_rng(5)
    widths = ((2, 1), (1, 2))
    w, b = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    a = rng.standard_normal((2, 2, 4, 5))
    layer = lrp.Conv2d(w, b, padding=widths, padding_mode=mode, stride=(1, 2))
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}[mode]
    a_pad = np.pad(a, ((0, 0), (0, 0), *widths), mode=numpy_mode)
    plain = lrp.Conv2d(w, b, stride=(1, 2))
    np.testing.assert_allclose(layer.forward(a), plain.forward(a_pad), rtol=1e-13)
    R = rng.standard_normal(layer.output_shape)
    R_pad = plain.relevance(R, rule)
    expected = fold_back(R_pad, widths, mode, a.shape[2:])
    for method in ("fast", "explicit"):
        R_in = layer.relevance(R, rule, method=method)
        np.testing.assert_allclose(R_in, expected, rtol=0, atol=1e-12 * np.abs(R_pad).sum())
        np.testing.assert_allclose(R_in.sum(), R_pad.sum(), rtol=0,
                                   atol=1e-12 * np.abs(R_pad).sum())


def test_transposed_outputs_between_inputs_get_no_relevance_source():
    """Stride 2 and a 1x1 kernel: every other output meets no input (z_j = b_j). Its R_j
    reaches no input: Flat drops it, Epsilon books it on the bias."""
    layer = lrp.ConvTranspose2d(np.ones((1, 1, 1, 1)), np.array([0.5]), stride=2)
    z = layer.forward(np.array([[[[1.0, 2.0]]]]))
    np.testing.assert_array_equal(z, [[[[1.5, 0.5, 2.5]]]])
    R = np.ones_like(z)
    for method in ("fast", "explicit"):
        record = lrp.Sequential([layer]).explain(
            np.array([[[[1.0, 2.0]]]]), rule=lrp.Flat(), method=method,
            output_relevance=R).layer("0")
        np.testing.assert_array_equal(record.relevance_in, [[[[1.0, 1.0]]]])
        np.testing.assert_array_equal(record.dropped, [1.0])


# -- io and description -----------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    net = lrp.Sequential([
        lrp.Conv1d(rng.standard_normal((4, 1, 3)), rng.standard_normal(4), stride=2,
                   padding=(2, 1), dilation=2, groups=2, padding_mode="circular"),
        lrp.ReLU(), lrp.Flatten(), lrp.Dense(rng.standard_normal((4 * 4, 6))),
    ])
    net2 = lrp.Sequential([
        lrp.Conv2d(rng.standard_normal((4, 2, 2, 3)), padding="same", dilation=(1, 2),
                   groups=2, padding_mode="reflect"),
        lrp.Conv2d(rng.standard_normal((2, 4, 3, 3)), padding=((0, 1), (2, 0))),
        lrp.ConvTranspose2d(rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(3),
                            stride=2, padding=(1, 0), output_padding=(1, 0), dilation=(1, 2)),
        lrp.ConvTranspose2d(rng.standard_normal((3, 1, 2, 2)), groups=3),
        lrp.Flatten(),
    ])
    for model, x in ((net, rng.standard_normal((2, 2, 9))),
                     (net2, rng.standard_normal((2, 4, 5, 6)))):
        lrp.save(model, tmp_path / "net.npz")
        loaded = lrp.load(tmp_path / "net.npz")
        assert repr(loaded) == repr(model)
        np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
        rule = lrp.Epsilon(0.1)
        np.testing.assert_array_equal(loaded.explain(x, rule=rule).relevance,
                                      model.explain(x, rule=rule).relevance)
        assert loaded.astype(np.float32).forward(x).dtype == np.float32


def test_common_case_config_is_unchanged():
    """Default options are not written: model files of plain convolutions stay as they were."""
    assert lrp.Conv2d(np.ones((1, 1, 3, 3)), padding=1).config() == {
        "type": "Conv2d", "stride": [1, 1], "padding": [1, 1]}
    assert lrp.Conv2d(np.ones((1, 1, 4, 4)), padding="same").config()["padding"] == [
        [1, 2], [1, 2]]


def test_composites_treat_conv1d_and_transposed_as_convolutions():
    rng = np.random.default_rng(0)
    net = lrp.Sequential([lrp.Conv1d(rng.standard_normal((2, 1, 3))), lrp.ReLU(),
                          lrp.Flatten(), lrp.Dense(rng.standard_normal((2 * 4, 2)))])
    rules = lrp.composites.epsilon_plus_flat()(net)
    assert rules["0"] == lrp.Flat() and rules["3"] == lrp.Epsilon()
    t = lrp.Sequential([lrp.ConvTranspose2d(rng.standard_normal((1, 2, 2, 2)))])
    assert lrp.composites.epsilon_plus()(t)["0"] == lrp.AlphaBeta(1, 0)    # Zennit's ZPlus


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make, error, message", [
    (lambda: lrp.Conv2d(np.ones((3, 1, 3, 3)), groups=2), ValueError,
     "groups=2 must divide the output channels (3)"),
    (lambda: lrp.Conv2d(np.ones((2, 1, 3, 3)), groups=0), ValueError,
     "groups must be an int >= 1"),
    (lambda: lrp.Conv2d(np.ones((2, 1, 3, 3)), padding_mode="mirror"), ValueError,
     "padding_mode must be one of ['zeros', 'reflect', 'replicate', 'circular']"),
    (lambda: lrp.Conv2d(np.ones((2, 1, 3, 3)), padding="same", stride=2), ValueError,
     "padding='same' needs stride 1"),
    (lambda: lrp.Conv2d(np.ones((2, 1, 3, 3)), dilation=0), ValueError,
     "dilation must be >= 1"),
    (lambda: lrp.Conv2d(np.ones((2, 1, 3, 3)), padding=((1, 2), (0, -1))), ValueError,
     "padding must be >= 0"),
    (lambda: lrp.Conv1d(np.ones((2, 1, 3)), stride=(1, 2)), TypeError,
     "Conv1d: stride must be an int"),
    (lambda: lrp.Conv1d(np.ones((2, 1, 3, 3))), ValueError,
     "Conv1d: weight must have shape (C_out, C_in / groups, k)"),
    (lambda: lrp.ConvTranspose2d(np.ones((3, 1, 3, 3)), groups=2), ValueError,
     "groups=2 must divide the input channels (3)"),
    (lambda: lrp.ConvTranspose2d(np.ones((1, 1, 3, 3)), stride=2, output_padding=2),
     ValueError, "output_padding (2, 2) must be smaller than the stride (2, 2) or the "
                 "dilation (1, 1)"),
])
def test_bad_construction(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_bad_inputs_name_the_layer():
    net = lrp.Sequential([lrp.Conv2d(np.ones((2, 1, 3, 3)), padding=3,
                                     padding_mode="reflect")])
    with pytest.raises(ValueError, match=re.escape(
            "layer '0' (Conv2d): padding_mode='reflect' needs a padding smaller than the "
            "input's size; padding ((3, 3), (3, 3)) on spatial size (3, 4)")):
        net.forward(np.ones((1, 1, 3, 4)))
    grouped = lrp.Sequential([lrp.Conv2d(np.ones((4, 1, 3, 3)), groups=2)])
    with pytest.raises(ValueError, match=re.escape(
            "layer '0' (Conv2d): expected input of shape (B, 2, *, *), got (1, 4, 5, 5)")):
        grouped.forward(np.ones((1, 4, 5, 5)))
    dilated = lrp.Sequential([lrp.Conv1d(np.ones((1, 1, 3)), dilation=3)])
    with pytest.raises(ValueError, match=re.escape("smaller than the kernel (1, 3) "
                                                   "(dilation (1, 3))")):
        dilated.forward(np.ones((1, 1, 6)))
    transposed = lrp.Sequential([lrp.ConvTranspose2d(np.ones((1, 1, 1, 1)), padding=1)])
    with pytest.raises(ValueError, match=re.escape("layer '0' (ConvTranspose2d): input of "
                                                   "spatial size (1, 1) gives an empty output")):
        transposed.forward(np.ones((1, 1, 1, 1)))


# -- BatchNorm1d on (B, C, L), after a Conv1d ----------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_batchnorm1d_on_sequences(rule):
    """torch's BatchNorm1d also takes (B, C, L): y = a x + c per channel, over the length."""
    rng = np.random.default_rng(2)
    gamma, beta, mean = rng.standard_normal((3, 4))
    var = rng.random(4) + 0.5
    bn = lrp.BatchNorm1d(gamma, beta, mean, var, eps=1e-5)
    x = rng.standard_normal((2, 4, 5))
    a = gamma / np.sqrt(var + 1e-5)
    expected = a[:, None] * (x - mean[:, None]) + beta[:, None]
    np.testing.assert_allclose(bn.forward(x), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(bn.backward(np.ones_like(x)), np.broadcast_to(a[:, None], x.shape),
                               rtol=1e-15)
    assert_explicit_equals_fast(bn, x, rng.standard_normal(x.shape), rule)
    assert bn.forward(x[:, :, 0]).shape == (2, 4)                   # (B, C) still works


def test_batchnorm1d_folds_into_conv1d():
    rng = np.random.default_rng(4)
    net = lrp.Sequential([lrp.Conv1d(rng.standard_normal((3, 2, 3)), rng.standard_normal(3),
                                     padding="same"),
                          lrp.BatchNorm1d(*rng.standard_normal((3, 3)), rng.random(3) + 0.5),
                          lrp.ReLU()])
    folded = lrp.canonize.merge_batchnorm(net)
    assert [type(layer) for layer in folded.layers] == [lrp.Conv1d, lrp.ReLU]
    x = rng.standard_normal((2, 2, 6))
    np.testing.assert_allclose(folded.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)


def test_batchnorm1d_names_the_channels_it_expects():
    bn = lrp.Sequential([lrp.BatchNorm1d(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))])
    with pytest.raises(ValueError, match=re.escape(
            "layer '0' (BatchNorm1d): expected input of shape (B, 3) or (B, 3, *), "
            "got (1, 2, 5)")):
        bn.forward(np.ones((1, 2, 5)))


@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(1, 3),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_both_transposed_convolution_routes_agree(seed, groups, dilation, padding):
    """At stride 1 the transposed convolution is a convolution with the flipped kernel
    (grouped and dilated as the forward); it must equal the GEMM-and-fold route, and be
    the adjoint of the forward: <conv(x), s> = <x, conv^T(s)>."""
    from lrp_ref.engine import kernels
    from lrp_ref.engine.patches import Window

    rng = np.random.default_rng(seed)
    window = Window((3, 2), (1, 1), padding, dilation)
    w = rng.standard_normal((groups * 1, 2, 3, 2))     # per group: 1 output <= 2 inputs
    size = tuple(max(e - 2 * p, 1) + 3 for e, p in zip(window.extent, padding))
    x = rng.standard_normal((2, groups * 2, *size))
    s = rng.standard_normal(kernels.convolve(x, w, window, groups=groups).shape)
    flipped = kernels.transposed_convolution(s, w, window, size, groups=groups)
    fold = (kernels.fold_transposed_groups(s, w, window, size, kernels.BAND_BYTES, groups)
            if groups > 1 else kernels.fold_transposed(s, w, window, size))
    scale = np.abs(s).sum() * np.abs(w).max()
    np.testing.assert_allclose(flipped, fold, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose((kernels.convolve(x, w, window, groups=groups) * s).sum(),
                               (x * flipped).sum(), rtol=0, atol=1e-12 * scale * np.abs(x).max())


def test_explicit_path_refuses_a_large_grouped_layer_before_building_its_weights():
    """Groups are explicit positions with their own copy of the group's weights,
    (G P, K, J): as large as z_ij of one sample (here 0.9 GB in float32). The budget is
    checked on the shape first."""
    import tracemalloc

    from lrp_ref.engine.linear import EXPLICIT_MAX_BYTES

    layer = lrp.Conv2d(np.ones((256, 64, 5, 5), np.float32), padding=2, groups=2)
    a = np.ones((1, 128, 24, 24), np.float32)
    R = layer.forward(a)
    assert 2 * 24 * 24 * 64 * 25 * 128 * 4 > 3 * EXPLICIT_MAX_BYTES
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"explicit path would materialise z_ij of shape "
                                         r"\(1, 1152, 1600, 128\)"):
        layer.relevance(R, lrp.Epsilon(), method="explicit")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * 2**20              # R (0.6 MB) may be copied once by the checks


# -- 1-D pools: the 2-D pools behind a reshape ---------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_avgpool1d_is_avgpool2d_on_a_row(rule):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 10))
    pool, pool2d = lrp.AvgPool1d(3, 2), lrp.AvgPool2d((1, 3), (1, 2))
    z = pool.forward(x)
    np.testing.assert_allclose(z, (x[:, :, 0:7:2] + x[:, :, 1:8:2] + x[:, :, 2:9:2]) / 3,
                               rtol=1e-15)
    R = rng.standard_normal(z.shape)
    for method in ("fast", "explicit"):
        record = assert_ledger_balances(pool, x, R, rule, method)
        pool2d.forward(x[:, :, None])
        np.testing.assert_array_equal(record.relevance_in,
                                      pool2d.relevance(R[:, :, None], rule, method)[:, :, 0])


def test_maxpool1d_by_hand():
    """x = (1, 5, 2, 4), kernel 2, stride 2, padding 1 (-inf): windows (-inf, 1), (5, 2),
    (4, -inf) with maxima 1, 5, 4; proportional without padding: windows (1, 5), (2, 4)."""
    pool = lrp.MaxPool1d(2, 2, padding=1)
    x = np.array([[[1.0, 5.0, 2.0, 4.0]]])
    np.testing.assert_array_equal(pool.forward(x), [[[1.0, 5.0, 4.0]]])
    R_in = pool.relevance(np.array([[[1.0, 2.0, 3.0]]]))
    np.testing.assert_array_equal(R_in, [[[1.0, 2.0, 0.0, 3.0]]])
    proportional = lrp.MaxPool1d(2, mode="proportional")
    proportional.forward(x)
    np.testing.assert_allclose(proportional.relevance(np.array([[[6.0, 12.0]]])),
                               [[[1.0, 5.0, 4.0, 8.0]]], rtol=1e-15)


def test_1d_network_saves_loads_and_takes_composites(tmp_path):
    rng = np.random.default_rng(7)
    net = lrp.Sequential([lrp.Conv1d(rng.standard_normal((3, 2, 3)), padding=1), lrp.ReLU(),
                          lrp.MaxPool1d(2, mode="proportional"), lrp.AvgPool1d(2, 1),
                          lrp.Flatten(), lrp.Dense(rng.standard_normal((3 * 3, 2)))])
    x = rng.standard_normal((2, 2, 8))
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    composite = lrp.composites.epsilon_alpha2_beta1()
    assert composite(net)["3"] == lrp.Epsilon(1e-6)              # AvgPool: Zennit's Norm
    e = loaded.explain(x, rule=composite)
    assert [r.path for r in e.layers] == ["0", "1", "2", "3", "4", "5"]
    assert np.all(np.isfinite(e.relevance)) and e.relevance.shape == x.shape
