"""Examples computed by hand on paper; the expected numbers are derived in the docstrings.

Every number below is exact in binary or a ratio of small integers, so the
tolerance is a few units of float64 rounding (1e-14 relative).
"""

import numpy as np
import pytest

import lrp_ref as lrp

EXACT = {"rtol": 1e-14, "atol": 1e-14}


def test_seed_example_contribution():
    """docs/theory.md, section 4: x_i = 0.9 and w_ij = 2.0 give z_ij = 1.8.

    With a single input the whole relevance of j flows to i under eq. (5):
    R_i = z_ij / z_j * R_j = 1.8 / 1.8 * R_j.
    """
    layer = lrp.Dense([[2.0]])
    z = layer.forward([[0.9]])
    np.testing.assert_allclose(z, [[1.8]], **EXACT)
    np.testing.assert_allclose(layer.relevance([[1.8]], lrp.Zero()), [[1.8]], **EXACT)


def network_2_3_1() -> lrp.Sequential:
    """x = (1, 2) -> Dense(W1, b1) -> ReLU -> Dense(W2, b2) -> f(x) = 5.

    W1 = [[1, -1, 0.5], [1, 1, -1]], b1 = (0, 0.5, 0):
        hidden pre-activations z = (1+2, -1+2+0.5, 0.5-2) = (3, 1.5, -1.5),
        after ReLU h = (3, 1.5, 0).
    W2 = (1, 2, 1)^T, b2 = -1:  f = 3 + 3 + 0 - 1 = 5, so R_out = 5.
    """
    return lrp.Sequential([
        lrp.Dense([[1.0, -1.0, 0.5], [1.0, 1.0, -1.0]], [0.0, 0.5, 0.0]),
        lrp.ReLU(),
        lrp.Dense([[1.0], [2.0], [1.0]], [-1.0]),
    ])


X = np.array([[1.0, 2.0]])


def test_2_3_1_lrp0():
    """LRP-0, eq. (5).

    Top layer: z_ij = h_i w_i = (3, 3, 0), z_j = 5, so R_h = (3, 3, 0)/5 * 5 =
    (3, 3, 0); the bias takes -1/5 * 5 = -1.
    Hidden 1: z = (1, 2), z_1 = 3, R = 3 -> (1, 2).
    Hidden 2: z = (-1, 2), b = 0.5, z_2 = 1.5, R = 3 -> (-2, 4); bias takes 1.
    Hidden 3: R = 0.
    R_x = (1 - 2, 2 + 4) = (-1, 6). This is also Gradient x Input:
    df/dx = W1 @ (W2 * [z > 0]) = W1 @ (1, 2, 0) = (-1, 3), times x = (-1, 6).
    """
    e = network_2_3_1().explain(X, rule=lrp.Zero())
    np.testing.assert_allclose(e.output, [[5.0]], **EXACT)
    np.testing.assert_allclose(e.layer("2").relevance_in, [[3.0, 3.0, 0.0]], **EXACT)
    np.testing.assert_allclose(e.layer("2").absorbed_bias, [-1.0], **EXACT)
    np.testing.assert_allclose(e.layer("0").absorbed_bias, [1.0], **EXACT)
    np.testing.assert_allclose(e.relevance, [[-1.0, 6.0]], **EXACT)
    np.testing.assert_allclose(network_2_3_1().gradient_x_input(X), [[-1.0, 6.0]], **EXACT)


def test_2_3_1_epsilon():
    """LRP-eps with eps = 1, eq. (6).

    Top: d = 5 + 1 = 6: R_h = (3, 3, 0)/6 * 5 = (2.5, 2.5, 0); bias -5/6,
    stabilizer +5/6.
    Hidden 1: z_1 = 3, d = 4, R = 2.5 -> (0.625, 1.25); stabilizer 0.625.
    Hidden 2: z_2 = 1.5, d = 2.5, R = 2.5 -> (-1, 2); bias 0.5, stabilizer 1.
    R_x = (-0.375, 3.25).
    """
    e = network_2_3_1().explain(X, rule=lrp.Epsilon(1.0))
    np.testing.assert_allclose(e.layer("2").relevance_in, [[2.5, 2.5, 0.0]], **EXACT)
    np.testing.assert_allclose(e.layer("2").absorbed_bias, [-5 / 6], **EXACT)
    np.testing.assert_allclose(e.layer("2").absorbed_stabilizer, [5 / 6], **EXACT)
    np.testing.assert_allclose(e.layer("0").absorbed_bias, [0.5], **EXACT)
    np.testing.assert_allclose(e.layer("0").absorbed_stabilizer, [1.625], **EXACT)
    np.testing.assert_allclose(e.relevance, [[-0.375, 3.25]], **EXACT)


def test_2_3_1_alpha2_beta1():
    """LRP-alpha-beta with alpha = 2, beta = 1, eq. (7).

    Top: z+_ij = (3, 3, 0), z+_j = 6 + max(0, -1) = 6; z-_ij = 0, z-_j = min(0, -1) = -1.
    R_h = 2 * 5 * (3, 3, 0)/6 = (5, 5, 0); the negative part gives nothing to
    the inputs and -1 * 5 * (-1)/(-1) = -5 to the bias.
    Hidden 1 (w = (1, 1), b = 0): z+ = (1, 2), z+_j = 3 -> 2 * 5 * (1/3, 2/3)
    = (10/3, 20/3); no negative contribution: -beta R = -5 is dropped.
    Hidden 2 (w = (-1, 1), b = 0.5): z+ = (0, 2), z+_j = 2.5 -> (0, 8), the bias
    takes 10 * 0.5/2.5 = 2; z- = (-1, 0), z-_j = -1 -> -5 * (1, 0) = (-5, 0).
    R_x = (10/3 - 5, 20/3 + 8) = (-5/3, 44/3).
    """
    e = network_2_3_1().explain(X, rule=lrp.AlphaBeta(2, 1))
    np.testing.assert_allclose(e.layer("2").relevance_in, [[5.0, 5.0, 0.0]], **EXACT)
    np.testing.assert_allclose(e.layer("2").absorbed_bias, [-5.0], **EXACT)
    np.testing.assert_allclose(e.layer("0").absorbed_bias, [2.0], **EXACT)
    np.testing.assert_allclose(e.layer("0").dropped, [-5.0], **EXACT)
    np.testing.assert_allclose(e.relevance, [[-5 / 3, 44 / 3]], **EXACT)


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_2_3_1_both_paths(method):
    e = network_2_3_1().explain(X, rule=lrp.AlphaBeta(2, 1), method=method)
    np.testing.assert_allclose(e.relevance, [[-5 / 3, 44 / 3]], **EXACT)
