"""Dense on token sequences ``(B, ..., in)``: position-wise, as torch's ``nn.Linear``.

The definition to test against: a Dense on ``(B, T, in)`` is the 2-D Dense applied to
every position on its own, i.e. on the ``(B*T, in)`` rows; forward, gradients and
relevance (every rule, both paths) must equal that.
"""

import numpy as np
import pytest

import lrp_ref as lrp


def rows_and_tokens(seed=0, shape=(2, 3, 4), out=5):
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal((shape[-1], out)), rng.standard_normal(out)
    return lrp.Dense(w, b), lrp.Dense(w, b), rng.standard_normal(shape), rng


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 2, 4)])
@pytest.mark.parametrize("rule", [lrp.Epsilon(0.1), lrp.Zero(), lrp.AlphaBeta(2, 1),
                                  lrp.Gamma(0.25), lrp.Flat()])
@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_tokens_equal_rows(shape, rule, method):
    tokens, rows, x, rng = rows_and_tokens(shape=shape)
    flat = x.reshape(-1, shape[-1])
    z = tokens.forward(x)
    np.testing.assert_array_equal(z.reshape(-1, 5), rows.forward(flat))
    R = rng.standard_normal(z.shape)
    R_tok = tokens.relevance(R, rule, method=method)
    R_row = rows.relevance(R.reshape(-1, 5), rule, method=method)
    assert R_tok.shape == x.shape
    # the same numbers in the same order of operations, up to the summation order of
    # matrix products of a different shape: 1e-12 relative in float64
    np.testing.assert_allclose(R_tok.reshape(-1, shape[-1]), R_row, rtol=1e-12, atol=1e-12)


def test_gradients_equal_rows_summed_over_positions():
    tokens, rows, x, rng = rows_and_tokens()
    g = rng.standard_normal((2, 3, 5))
    tokens.forward(x)
    rows.forward(x.reshape(-1, 4))
    grad_x = tokens.backward(g)
    np.testing.assert_allclose(grad_x.reshape(-1, 4), rows.backward(g.reshape(-1, 5)),
                               rtol=1e-13)
    # dL/dW = sum over batch and positions of a_i g_j: the rows' gradient
    np.testing.assert_allclose(tokens.grad_weight, rows.grad_weight, rtol=1e-13)
    np.testing.assert_allclose(tokens.grad_bias, rows.grad_bias, rtol=1e-13)


def test_wrong_last_axis_names_the_shape():
    tokens, _, x, _ = rows_and_tokens()
    with pytest.raises(ValueError, match=r"Dense\)?: expected input of shape \(B, 4\) or "
                                         r"\(B, \.\.\., 4\), got \(2, 3, 5\)"):
        tokens.forward(np.ones((2, 3, 5)))
