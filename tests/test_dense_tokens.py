"""Dense on (B, ..., in): torch's Linear on the last axis, one position at a time.

A transformer applies its projections to every token: ``z[b, t] = a[b, t] W + b``.
The layer is then a linear map shared by the positions, and every rule must
give, at each position, exactly what it gives the 2-D layer on that position's
(B, in) slice; the ledger is the sum over the positions, the parameter gradients
too. The reference here is the 2-D Dense itself, run position by position.
"""

import numpy as np
import pytest

import lrp_ref as lrp

RULES = [lrp.Zero(), lrp.Epsilon(0.1), lrp.AlphaBeta(2, 1), lrp.Gamma(0.25), lrp.Flat(),
         lrp.WSquare(), lrp.ZPlus()]


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    return lrp.Dense(W, b), rng.standard_normal((2, 5, 2, 4)), rng.standard_normal((2, 5, 2, 3))


def per_position(layer, x, R, rule, method):
    """Forward, relevance and ledger of the 2-D layer on each (B, in) slice of x."""
    z, R_in, total = np.empty(R.shape), np.empty(x.shape), np.zeros(x.shape[0])
    for index in np.ndindex(x.shape[1:-1]):
        at = (slice(None), *index)
        z[at] = layer.forward(x[at])
        e_in = layer.relevance(R[at], rule, method)
        R_in[at] = e_in
        total += R[at].sum(axis=1) - e_in.sum(axis=1)
    return z, R_in, total


@pytest.mark.parametrize("method", ["fast", "explicit"])
@pytest.mark.parametrize("rule", RULES, ids=repr)
def test_every_rule_is_the_2d_rule_at_each_position(case, rule, method):
    dense, x, R = case
    z = dense.forward(x)
    R_in = dense.relevance(R, rule, method)
    z_ref, R_ref, _ = per_position(dense, x, R, rule, method)
    # the same products in another grouping: rounding only
    np.testing.assert_allclose(z, z_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(R_in, R_ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_ledger_is_the_sum_over_positions(case, method):
    dense, x, R = case
    dense.forward(x)
    R_in, ledger = dense.relevance_with_ledger(R, lrp.Epsilon(0.1), method)
    _, _, absorbed = per_position(dense, x, R, lrp.Epsilon(0.1), method)
    np.testing.assert_allclose(ledger.total(), absorbed, rtol=1e-12)
    np.testing.assert_allclose(R.reshape(2, -1).sum(1), R_in.reshape(2, -1).sum(1)
                               + ledger.total(), rtol=1e-12)


def test_backward_and_parameter_gradients_sum_over_positions(case):
    dense, x, g = case
    dense.forward(x)
    grad = dense.backward(g)
    np.testing.assert_allclose(grad, g @ dense.weight.T, rtol=1e-13)
    W_ref = sum(x[(slice(None), *i)].T @ g[(slice(None), *i)] for i in np.ndindex(x.shape[1:-1]))
    np.testing.assert_allclose(dense.grad_weight, W_ref, rtol=1e-12)
    np.testing.assert_allclose(dense.grad_bias, g.sum(axis=(0, 1, 2)), rtol=1e-12)


def test_last_axis_must_be_the_input_size(case):
    dense, x, _ = case
    with pytest.raises(ValueError, match=r"\(B, 4\), got \(2, 5, 2, 3\) \(or \(B, \.\.\., 4\)"):
        dense.forward(x[..., :3])
    with pytest.raises(ValueError, match=r"\(B, 4\), got \(4,\)"):
        dense.forward(np.ones(4))
