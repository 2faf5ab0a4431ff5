"""Upsample (nearest, nearest-exact, bilinear with align_corners either way): a linear
layer, every rule.

Against the naive loops of tests/naive.py (``interpolation_taps``) and torch's
``F.interpolate`` (float64). Tolerances: the forward sums at most 4 products
(1e-14 of the largest |a|: a few dozen unit roundoffs, which also cover torch's
other order); explicit vs fast and the unrolled Dense layer as in
tests/test_pooling.py (1e-12 times ``naive.rounding_scale``); the ledger to 1e-10
of ``ledger_scale``.
"""

from __future__ import annotations

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
    unrolled,
)
from strategies import sparse_normal

RULES = example_rules()

try:
    from lrp_ref.interop import peers
    torch = peers.import_torch()
except ImportError:
    torch = None


@st.composite
def upsample_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "bilinear"]))
    align = mode == "bilinear" and draw(st.booleans())
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    if draw(st.booleans()):
        layer = lrp.Upsample(size=(draw(st.integers(1, 9)), draw(st.integers(1, 9))),
                             mode=mode, align_corners=align)
    else:
        factors = st.sampled_from([1, 2, 3, 1.5, 0.5, 2.5])
        layer = lrp.Upsample(scale_factor=(draw(factors), draw(factors)), mode=mode,
                             align_corners=align)
        if min(int(n * s) for n, s in zip(size, layer.scale_factor)) < 1:
            size = (2, 2)
    a = sparse_normal(rng, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size), 0.2)
    R = sparse_normal(rng, layer.forward(a).shape, 0.2)
    return layer, a, R


@given(case=upsample_cases())
def test_forward_and_gradient_match_naive(case):
    layer, a, g = case
    np.testing.assert_allclose(layer.forward(a),
                               naive.depthwise_forward(a, naive.taps(layer, a.shape[2:])),
                               rtol=0, atol=1e-14 * np.abs(a).max())
    W, _, _ = unrolled(layer, a.shape[1:])
    np.testing.assert_allclose(layer.backward(g), (g.reshape(len(g), -1) @ W.T).reshape(a.shape),
                               rtol=0, atol=1e-14 * np.abs(g).max() * 4 + 1e-300)


@pytest.mark.skipif(torch is None, reason="torch (the oracle extra) not installed")
@given(case=upsample_cases())
def test_forward_and_gradient_equal_torch(case):
    layer, a, g = case
    t = torch.from_numpy(a).requires_grad_(True)
    options = ({"size": layer.size} if layer.size else {"scale_factor": layer.scale_factor})
    if layer.mode == "bilinear":
        options["align_corners"] = layer.align_corners
    z = torch.nn.functional.interpolate(t, mode=layer.mode, **options)
    z.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.forward(a), z.detach().numpy(), rtol=0,
                               atol=1e-14 * np.abs(a).max())
    np.testing.assert_allclose(layer.backward(g), t.grad.numpy(), rtol=0,
                               atol=1e-14 * np.abs(g).max() * 4)


def test_nearest_source_index_is_computed_in_float32_like_torch():
    """26 -> 22: the source of output 11 is floor(11 * 26 / 22) = 13 exactly, but in float32
    11 * (26 / 22) is 12.999999, and torch reads input 12 (measured with torch 2.13;
    test_forward_and_gradient_equal_torch checks the rest against torch itself)."""
    a = np.arange(26.0).reshape(1, 1, 1, 26)
    z = lrp.Upsample(size=(1, 22)).forward(a)
    assert z[0, 0, 0, 11] == 12.0


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=upsample_cases())
def test_explicit_equals_fast(rule, case):
    assert_explicit_equals_fast(*case, rule)


@given(case=upsample_cases(),
       rule=st.sampled_from([r for r in RULES if keeps_absent_weights_absent(r)]))
def test_equals_the_unrolled_dense_layer(case, rule):
    assert_equals_unrolled_dense(*case, rule)


@given(case=upsample_cases(), rule=st.sampled_from(RULES),
       method=st.sampled_from(["fast", "explicit"]))
def test_ledger_balances(case, rule, method):
    record = assert_ledger_balances(*case, rule, method)
    np.testing.assert_array_equal(record.absorbed_bias, 0)


@given(case=upsample_cases())
def test_flat_and_wsquare_count_the_nonzero_weights_only(case):
    naive.assert_flat_and_wsquare_count_connections_only(*case)


def test_nearest_and_bilinear_by_hand():
    """Nearest 2x copies each input to a 2x2 block: LRP-0 sums the block's relevance.
    Bilinear 2x along a row [0, 4] (align_corners=False): outputs 0, 1, 3, 4 with weights
    (1, 0), (3/4, 1/4), (1/4, 3/4), (0, 1); Flat shares the two middle outputs equally."""
    a = np.array([[[[1.0, 2.0]]]])
    up = lrp.Upsample(scale_factor=2)
    np.testing.assert_array_equal(up.forward(a), [[[[1.0, 1.0, 2.0, 2.0]] * 2]])
    R = np.arange(8.0).reshape(1, 1, 2, 4)
    np.testing.assert_allclose(up.relevance(R, lrp.Zero()), [[[[0 + 1 + 4 + 5, 2 + 3 + 6 + 7]]]],
                               rtol=1e-15)
    bilinear = lrp.Upsample(scale_factor=(1, 2), mode="bilinear")
    row = np.array([[[[0.0, 4.0]]]])
    np.testing.assert_allclose(bilinear.forward(row), [[[[0.0, 1.0, 3.0, 4.0]]]], rtol=1e-15)
    R = np.array([[[[1.0, 2.0, 4.0, 8.0]]]])
    np.testing.assert_allclose(bilinear.relevance(R, lrp.Flat()), [[[[1 + 1 + 2, 1 + 2 + 8]]]],
                               rtol=1e-15)


def test_save_load_and_checks(tmp_path):
    net = lrp.Sequential([lrp.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
                          lrp.Upsample(size=(7, 5))])
    lrp.save(net, tmp_path / "m.npz")
    back = lrp.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        lrp.Upsample()
    with pytest.raises(ValueError, match="align_corners applies to mode='bilinear' only"):
        lrp.Upsample(size=2, align_corners=True)
    with pytest.raises(ValueError, match="mode must be one of nearest, nearest-exact, bilinear"):
        lrp.Upsample(size=2, mode="bicubic")
