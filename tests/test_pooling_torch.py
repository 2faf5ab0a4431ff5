"""The pooling layers and their options against torch itself (float64): forward and
gradient over random geometries (kernel, stride, padding, dilation, ceil_mode,
count_include_pad, divisor_override, adaptive output sizes).

Tolerances: max-pooling picks values (forward exact) and adds at most a few
overlapping gradients in another order than torch (1e-15 of sum |g|); average
pooling sums at most 9 (adaptive: 49) products in another order: 1e-14 of the
largest |a| or |g| (a few hundred unit roundoffs of headroom).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp

from naive import pool_layers

try:
    from lrp_ref.interop import peers
    torch = peers.import_torch()
except ImportError:
    torch = None

pytestmark = pytest.mark.skipif(torch is None, reason="torch (the oracle extra) not installed")


def torch_pool(layer, t):
    """The torch function of ``layer`` with its options, on tensor ``t``."""
    F = torch.nn.functional
    if isinstance(layer, lrp.AdaptiveAvgPool2d):
        return F.adaptive_avg_pool2d(t, layer.output_size)
    if isinstance(layer, lrp.AdaptiveMaxPool2d):
        return F.adaptive_max_pool2d(t, layer.output_size)
    if isinstance(layer, lrp.MaxPool2d):
        return F.max_pool2d(t, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                            layer.ceil_mode)
    return F.avg_pool2d(t, layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                        layer.count_include_pad, layer.divisor_override)


@given(case=st.sampled_from(["max", "avg", "adaptive_avg", "adaptive_max"]).flatmap(pool_layers))
def test_forward_and_gradient_equal_torch(case):
    layer, a = case
    t = torch.from_numpy(a).requires_grad_(True)
    z = torch_pool(layer, t)
    g = np.random.default_rng(5).standard_normal(z.shape)
    z.backward(torch.from_numpy(g))
    ours = layer.forward(a)
    assert ours.shape == tuple(z.shape)
    if isinstance(layer, lrp.MaxPool2d):
        np.testing.assert_array_equal(ours, z.detach().numpy())
        np.testing.assert_allclose(layer.backward(g), t.grad.numpy(), rtol=0,
                                   atol=1e-15 * np.abs(g).sum())
    else:
        np.testing.assert_allclose(ours, z.detach().numpy(), rtol=0,
                                   atol=1e-14 * np.abs(a).max())
        np.testing.assert_allclose(layer.backward(g), t.grad.numpy(), rtol=0,
                                   atol=1e-14 * np.abs(g).max())
