"""Contrastive LRP (Gu et al. 2018): both duals on a hand-worked network."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.extensions.contrastive import clrp, negated_network, others_seed

from strategies import RULES, relu_networks


def hand_net() -> lrp.Sequential:
    """x = (1, 2).  h = (x0 + x1, x0) = (3, 1) (ReLU keeps it).

    Logit columns w_0 = (1, -1), w_1 = (0, 1), w_2 = (1, 1), no bias:
    y = (3 - 1, 1, 3 + 1) = (2, 1, 4). We explain the target j = 0, S = y_0 = 2.
    """
    w1 = np.array([[1.0, 1.0], [1.0, 0.0]])          # (in, out): h0 = x0 + x1, h1 = x0
    w2 = np.array([[1.0, 0.0, 1.0], [-1.0, 1.0, 1.0]])
    return lrp.Sequential([lrp.Dense(w1), lrp.ReLU(), lrp.Dense(w2)])


X = np.array([[1.0, 2.0]])


def test_others_dual_by_hand_with_lrp0():
    # R: top layer h_i w_i0 / y_0 * S = (3, -1). Lower layer: R_x0 = 3 * 1/3 + (-1) * 1/1 = 0,
    #    R_x1 = 3 * 2/3 = 2.  R = (0, 2).
    # R_dual: seed S/(C-1) = 1 at classes 1 and 2. Class 1 (z = 1, contributions (0, 1)):
    #    R_h += (0, 1); class 2 (z = 4, contributions (3, 1)): R_h += (0.75, 0.25).
    #    R_h = (0.75, 1.25); R_x0 = 0.75/3 + 1.25 = 1.5, R_x1 = 0.75 * 2/3 = 0.5.
    # CLRP = max(0, (0 - 1.5, 2 - 0.5)) = (0, 1.5).
    c = clrp(hand_net(), X, target=0, rule=lrp.Zero(), dual="others")
    np.testing.assert_allclose(c.explanation.relevance, [[0, 2]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c.dual.relevance, [[1.5, 0.5]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c.relevance, [[0, 1.5]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(c.dual.layers[-1].relevance_out, [[0, 1, 1]])


def test_negated_dual_by_hand_with_z_plus():
    # AlphaBeta(1, 0) = z+ (no bias here).  R: top contributions h_i w_i0 = (3, -1), z+ = (3, 0):
    #    R_h = (2, 0); h0 = x0 + x1 has contributions (1, 2): R = (2/3, 4/3).
    # R_dual: negated w_0 = (-1, 1): contributions (-3, 1), z+ = (0, 1): R_h = (0, 2);
    #    h1 = x0 has contributions (1, 0): R_dual = (2, 0).
    # CLRP = max(0, (2/3 - 2, 4/3 - 0)) = (0, 4/3).
    c = clrp(hand_net(), X, target=0, rule=lrp.AlphaBeta(1, 0), dual="negated")
    np.testing.assert_allclose(c.explanation.relevance, [[2 / 3, 4 / 3]], rtol=1e-15)
    np.testing.assert_allclose(c.dual.relevance, [[2, 0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c.relevance, [[0, 4 / 3]], rtol=1e-15)
    # the dual network computes -y at the target and is seeded with +y_j
    np.testing.assert_array_equal(c.dual.output, [[-2, -1, -4]])
    np.testing.assert_array_equal(c.dual.layers[-1].relevance_out, [[2, 0, 0]])


@pytest.mark.parametrize("rule", [lrp.Zero(), lrp.Epsilon(1e-6), lrp.Epsilon(0.3)],
                         ids=lrp.rules.describe)
def test_negated_dual_is_the_target_under_sign_symmetric_rules(rule):
    """LRP-0 and epsilon only see ratios z_ij / (z_j + eps sign z_j), which negating w_j
    and b_j leaves unchanged (negation is exact in floating point): R_dual == R."""
    rng = np.random.default_rng(0)
    net = lrp.Sequential([lrp.Dense(rng.standard_normal((4, 5)), rng.standard_normal(5)),
                          lrp.ReLU(), lrp.Dense(rng.standard_normal((5, 3)),
                                                rng.standard_normal(3))])
    c = clrp(net, rng.standard_normal((4, 4)), rule=rule, dual="negated")
    np.testing.assert_array_equal(c.dual.relevance, c.explanation.relevance)
    np.testing.assert_array_equal(c.relevance, 0)


def test_negated_network_is_a_copy_with_the_last_layer_negated():
    net = hand_net()
    net.layers[-1].bias[:] = [0.5, -1.0, 2.0]
    dual = negated_network(net)
    x = np.random.default_rng(1).standard_normal((3, 2))
    np.testing.assert_array_equal(dual.forward(x), -net.forward(x))
    assert all(a is not b for a, b in zip(dual.layers, net.layers))
    np.testing.assert_array_equal(net.layers[-1].weight, hand_net().layers[-1].weight)


@pytest.mark.parametrize("dual", ["others", "negated"])
@given(case=relu_networks(), rule=st.sampled_from(RULES))
def test_clrp_is_non_negative_and_is_the_clipped_difference(dual, case, rule):
    net, x = case
    if net.layers[-1].weight.shape[1] < 2 and dual == "others":
        with pytest.raises(ValueError, match="at least 2 classes"):
            clrp(net, x, rule=rule, dual=dual)
        return
    c = clrp(net, x, rule=rule, dual=dual)
    assert np.all(c.relevance >= 0)
    np.testing.assert_array_equal(
        c.relevance, np.maximum(0, c.explanation.relevance - c.dual.relevance))
    # both explanations start from the same total relevance S = y_j
    score = c.explanation.output[np.arange(len(x)), c.explanation.target]
    np.testing.assert_allclose(per_sample_sum(c.dual.layers[-1].relevance_out), score,
                               rtol=1e-14, atol=0)
    np.testing.assert_array_equal(c.dual.target, c.explanation.target)


def test_others_seed_per_sample_targets():
    output = np.array([[1.0, 4.0, -2.0], [3.0, 0.0, 6.0]])
    np.testing.assert_array_equal(others_seed(output, np.array([1, 0])),
                                  [[2, 0, 2], [0, 1.5, 1.5]])


def test_errors():
    x = np.ones((1, 2))
    with pytest.raises(ValueError, match="dual"):
        clrp(hand_net(), x, rule=lrp.Zero(), dual="mean")
    with pytest.raises(TypeError, match="last layer is a Dense"):
        clrp(lrp.Sequential([lrp.Dense(np.ones((2, 2))), lrp.ReLU()]), x, rule=lrp.Zero())
    with pytest.raises(TypeError, match="last layer is a Dense"):
        clrp(lrp.Dense(np.ones((2, 2))), x, rule=lrp.Zero())
    with pytest.raises(ValueError, match="needs a rule"):
        clrp(hand_net(), x)
