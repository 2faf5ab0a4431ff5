"""The LRP Toolbox's conventions (docs/peers.md, "LRP Toolbox"), each against the Toolbox's
formula written out by hand from its source (python/modules; the Toolbox is not a package, so
CI cannot install it: scripts/lrp_toolbox_agreement.py runs the real one, docs/peers.md has its
numbers):

* Linear 'alphabeta', param alpha': alpha' z+_ij/(sum z+ + b+) + (1 - alpha') z-_ij/(sum z- + b-)
* SumPool 'epsilon' e: R_i = x_i / (sum_window x + e sign) R_j   (window sum, not its mean)
* MaxPool 'flat': R_j / (kh kw) to every element of the window
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp


def toolbox_linear_alphabeta(X, W, B, R, alpha):
    """The Toolbox's Linear._alphabeta_lrp, eq. (60) of Bach et al. 2015, as a formula."""
    beta = 1 - alpha
    Z = X[:, :, None] * W[None]
    Zp, Zn = Z * (Z > 0), Z * (Z < 0)
    Rp = (Zp / (Zp.sum(axis=1, keepdims=True) + B * (B > 0)) * R[:, None, :]).sum(axis=2)
    Rn = (Zn / (Zn.sum(axis=1, keepdims=True) + B * (B < 0)) * R[:, None, :]).sum(axis=2)
    return alpha * Rp + beta * Rn


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_linear_alphabeta_is_eq7(alpha):
    """Inputs and weights of both signs, no empty half: float64 rounding only (1e-12)."""
    rng = np.random.default_rng(0)
    X, W, B = rng.standard_normal((3, 6)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    R = rng.standard_normal((3, 4))
    layer = lrp.Dense(W, B)
    layer.forward(X)
    expected = toolbox_linear_alphabeta(X, W, B, R, alpha)
    got = layer.relevance(R, lrp.AlphaBeta.from_eq7(alpha, 1 - alpha))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_sumpool_epsilon():
    """SumPool(2x2) 'epsilon' 0.1 is Epsilon(0.1 / 4) on AvgPool2d(2) (docs/peers.md)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 4, 4))
    R = rng.standard_normal((1, 1, 2, 2))
    expected = np.zeros_like(x)
    for i in range(2):
        for j in range(2):
            window = x[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
            total = window.sum()
            d = total + 0.1 * (1.0 if total >= 0 else -1.0)
            expected[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = window / d * R[0, 0, i, j]
    pool = lrp.AvgPool2d(2)
    pool.forward(x)
    np.testing.assert_allclose(pool.relevance(R, lrp.Epsilon(0.1 / 4)), expected, rtol=1e-13)
    assert not np.allclose(pool.relevance(R, lrp.Epsilon(0.1)), expected, rtol=1e-6)


def test_maxpool_flat():
    """MaxPool 'flat' spreads R_j uniformly over its window; MaxPool2d's modes do not, and
    AvgPool2d(k, s) under Flat() computes it (overlapping 3x3 windows, stride 1)."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    R = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    expected = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            expected[0, 0, i:i + 3, j:j + 3] += R[0, 0, i, j] / 9
    pool = lrp.AvgPool2d(3, 1)
    pool.forward(x)
    np.testing.assert_allclose(pool.relevance(R, lrp.Flat()), expected, rtol=1e-14)
    for mode in ("winner", "proportional"):
        maxpool = lrp.MaxPool2d(3, 1, mode=mode)
        maxpool.forward(x)
        assert not np.allclose(maxpool.relevance(R, None), expected)
