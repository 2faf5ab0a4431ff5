"""lrp_ref's transformer rules against LXT 2.1 (``lxt.explicit.functional``), in float64.

LXT is the implementation of AttnLRP by its authors. It is not in the
``oracle`` extra (its declared dependencies would replace the CPU torch): CI
installs it with ``pip install --no-deps lxt==2.1`` (.ci/run); these tests are
skipped, with the reason, when it is absent. ``lxt.explicit.functional``
imports torch only. Its backward passes return relevance itself (not a
gradient): ``x.grad`` after ``y.backward(R)`` is ``R_in``.

Agreement is measured where the rules are the same mathematics; every
difference of docs/peers.md ("LXT 2.1") is reproduced here too: LXT adds a
plain ``+eps`` to its denominators where lrp_ref adds ``eps sign(z)``, so the
comparisons either make the denominators positive (then the two coincide) or
set the stabilizer to 0; its LayerNorm is one epsilon step on the whole affine
map where lrp_ref takes two (affine, then centring), equal with ``Zero()``.
LXT's identity rule for activations is compared on GELU; a whole encoder is
tests/oracle/test_lxt_encoder.py.

Tolerance: both compute the same formula in float64 in another order of
summation, so agreement is to rounding, 1e-12 relative (denominators here are
bounded away from 0: the inputs are drawn so).
"""

import numpy as np
import pytest

import lrp_ref as lrp

lf = pytest.importorskip(
    "lxt.explicit.functional",
    reason="LXT not installed: it is not in the oracle extra (its dependencies would pull a "
           "CUDA torch); install it with pip install --no-deps lxt==2.1 (as .ci/run does)")

import peer_runs as pr  # noqa: E402

torch = pr.torch
RTOL = 1e-12


def lxt(function, *inputs, R):
    """LXT's relevance of every input of ``function(*inputs)`` seeded with ``R``."""
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    y = function(*ts)
    y.backward(torch.tensor(R))
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


def check(name, ours, theirs):
    assert pr.record(f"LXT 2.1 {name}", ours, theirs) <= RTOL, name


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- linear layer: the epsilon rule ---------------------------------------------------------


def test_linear_epsilon_agrees_where_outputs_are_positive(rng):
    # b = 10 keeps z_j > 0, where z + eps = z + eps sign(z)
    x, W, b = rng.uniform(0, 1, (4, 5)), rng.standard_normal((5, 3)), np.full(3, 10.0)
    dense = lrp.Dense(W, b)
    y = dense.forward(x)
    assert np.all(y > 0)
    R = rng.standard_normal(y.shape)
    y_lxt, (R_lxt,) = lxt(lambda t: lf.linear_epsilon(t, torch.tensor(W.T), torch.tensor(b), 0.1),
                          x, R=R)
    np.testing.assert_allclose(y, y_lxt, rtol=RTOL)
    check("linear_epsilon (z > 0)", dense.relevance(R, lrp.Epsilon(0.1)), R_lxt)


def test_difference_linear_epsilon_adds_plain_eps(rng):
    # at z_j < 0, LXT's share is z_ij / (z_j + eps), ours z_ij / (z_j - eps)
    x, W = rng.uniform(0, 1, (1, 4)), -np.abs(rng.standard_normal((4, 2)))
    dense = lrp.Dense(W)
    z = dense.forward(x)
    assert np.all(z < 0)
    R = np.ones_like(z)
    _, (R_lxt,) = lxt(lambda t: lf.linear_epsilon(t, torch.tensor(W.T), None, 0.1), x, R=R)
    z_ij = x[0][:, None] * W
    np.testing.assert_allclose(R_lxt[0], (z_ij / (z + 0.1)).sum(axis=1), rtol=RTOL)
    np.testing.assert_allclose(dense.relevance(R, lrp.Epsilon(0.1))[0],
                               (z_ij / (z - 0.1)).sum(axis=1), rtol=RTOL)
    assert not np.allclose(R_lxt, dense.relevance(R, lrp.Epsilon(0.1)))


# -- softmax --------------------------------------------------------------------------------


def test_softmax_agrees(rng):
    x, R = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    softmax = lrp.Softmax()
    s = softmax.forward(x)
    s_lxt, (R_lxt,) = lxt(lambda t: lf.softmax(t, -1), x, R=R)
    np.testing.assert_allclose(s, s_lxt, rtol=RTOL)
    check("softmax", softmax.relevance(R), R_lxt)


def test_difference_softmax_mask_of_minus_infinity(rng):
    # LXT sets -inf inputs (attention masks) to 0 in its rule: the masked position gets
    # x_i (...) = 0; lrp_ref refuses non-finite input (mask with a large negative number)
    x, R = np.array([[0.5, -np.inf, 1.0]]), np.array([[1.0, 2.0, 3.0]])
    s_lxt, (R_lxt,) = lxt(lambda t: lf.softmax(t, -1), x, R=R)
    assert s_lxt[0, 1] == 0 and R_lxt[0, 1] == 0
    s = s_lxt[0, [0, 2]]
    np.testing.assert_allclose(R_lxt[0, [0, 2]], x[0, [0, 2]] * (R[0, [0, 2]] - s * R.sum()),
                               rtol=RTOL)
    with pytest.raises(ValueError, match="NaN or inf"):
        lrp.Softmax().forward(x)


# -- matrix product of two activations -------------------------------------------------------


def test_matmul_agrees_with_zero_stabilizer(rng):
    a, b = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 4, 5))
    mm = lrp.MatMul(0.0)
    O = mm.forward(a, b)
    R = rng.standard_normal(O.shape)
    _, (R_a, R_b) = lxt(lambda s, t: lf.matmul(s, t, epsilon=0.0), a, b, R=R)
    ours = mm.relevance(R)
    check("matmul (eps = 0)", ours[0], R_a)
    check("matmul (eps = 0)", ours[1], R_b)


def test_difference_matmul_eps_is_twice_ours_for_positive_outputs(rng):
    # LXT divides by 2 O + eps, ours by 2 (O + e sign O): equal for O > 0 when eps = 2 e
    a, b = rng.uniform(0.1, 1, (1, 3, 4)), rng.uniform(0.1, 1, (1, 4, 2))
    mm = lrp.MatMul(0.05)
    R = rng.standard_normal(mm.forward(a, b).shape)
    _, (R_a, R_b) = lxt(lambda s, t: lf.matmul(s, t, epsilon=0.1), a, b, R=R)
    ours = mm.relevance(R)
    check("matmul (O > 0, eps = 2 e)", ours[0], R_a)
    check("matmul (O > 0, eps = 2 e)", ours[1], R_b)


def test_elementwise_product_agrees(rng):
    x1, x2, R = (rng.standard_normal((2, 6)) for _ in range(3))
    product = lrp.Product()
    product.forward(x1, x2)
    _, (R_1, R_2) = lxt(lf.mul2, x1, x2, R=R)
    ours = product.relevance(R)
    check("mul2 (uniform)", ours[0], R_1)
    check("mul2 (uniform)", ours[1], R_2)


# -- LayerNorm and RMSNorm -------------------------------------------------------------------


def lxt_layer_norm(x, gamma, beta, eps, R, stabilizer):
    def f(t):
        return lf.layer_norm_grad_fn.apply(t, torch.tensor(gamma), torch.tensor(beta), eps,
                                           stabilizer)
    return lxt(f, x, R=R)


def test_layer_norm_agrees_with_zero_stabilizer(rng):
    x, gamma, beta = rng.standard_normal((2, 3, 6)), rng.standard_normal(6), rng.standard_normal(6)
    R = rng.standard_normal(x.shape)
    ln = lrp.LayerNorm(gamma, beta, eps=1e-5)
    y = ln.forward(x)
    y_lxt, (R_lxt,) = lxt_layer_norm(x, gamma, beta, 1e-5, R, 0.0)
    np.testing.assert_allclose(y, y_lxt, rtol=RTOL)
    check("layer_norm (Zero)", ln.relevance(R, lrp.Zero()), R_lxt)


def test_difference_layer_norm_one_step_against_our_two(rng):
    # LXT: one epsilon step on y_j = sum_i x_i W_ij + beta_j, W_ij = gamma_j (delta_ij - 1/N)
    # / sigma, with a plain +eps; ours: the affine step, then the centring, each with
    # eps sign(.). Both equal LRP-0 at eps = 0 (test above); at eps > 0 they differ.
    x, gamma, beta = rng.standard_normal((1, 1, 4)), rng.standard_normal(4), rng.standard_normal(4)
    R = rng.standard_normal(x.shape)
    ln = lrp.LayerNorm(gamma, beta, eps=1e-5)
    y = ln.forward(x)
    _, (R_lxt,) = lxt_layer_norm(x, gamma, beta, 1e-5, R, 0.1)
    N, x0 = 4, x[0, 0]
    sigma = np.sqrt(((x0 - x0.mean()) ** 2).mean() + 1e-5)
    W = (np.eye(N) - 1 / N) * gamma / sigma
    np.testing.assert_allclose(R_lxt[0, 0], x0 * (W @ (R[0, 0] / (y[0, 0] + 0.1))), rtol=RTOL)
    assert not np.allclose(R_lxt, ln.relevance(R, lrp.Epsilon(0.1)), rtol=1e-3)


def test_rms_norm_identity_is_our_pass_and_zero(rng):
    x, gamma, R = (rng.standard_normal(s) for s in ((2, 3, 4), 4, (2, 3, 4)))
    rms = lrp.RMSNorm(gamma, eps=1e-6)
    rms.forward(x)
    _, (R_lxt,) = lxt(lambda t: lf.rms_norm_identity(t, torch.tensor(gamma), 1e-6), x, R=R)
    check("rms_norm_identity (Pass)", rms.relevance(R, lrp.Pass()), R_lxt)
    check("rms_norm_identity (Zero)", rms.relevance(R, lrp.Zero()), R_lxt)


# -- masks and GELU ------------------------------------------------------------------------


def test_softmax_with_minus_infinity_is_our_masked_softmax(rng):
    # LXT sets a -inf input to 0 in its rule; lrp_ref's Softmax(mask) leaves a blocked
    # position out of the softmax (s_i = 0, R_i = 0): the same numbers
    x, R = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    blocked = rng.random(x.shape) < 0.4
    blocked[..., 0] = False
    x_inf = np.where(blocked, -np.inf, x)
    s_lxt, (R_lxt,) = lxt(lambda t: lf.softmax(t, -1), x_inf, R=np.where(blocked, 0, R))
    softmax = lrp.Softmax(mask=blocked)
    np.testing.assert_allclose(softmax.forward(x), s_lxt, rtol=RTOL)
    check("softmax (-inf mask)", softmax.relevance(np.where(blocked, 0, R)), R_lxt)


def test_gelu_identity_is_our_gelu():
    import lxt.explicit.rules as lrules

    x, R = np.linspace(-3, 3, 12).reshape(2, 6), np.arange(12.0).reshape(2, 6) - 5
    gelu = lrp.GELU()
    gelu.forward(x)
    _, (R_lxt,) = lxt(lambda t: lrules.identity(torch.nn.functional.gelu, t), x, R=R)
    check("identity (GELU)", gelu.relevance(R), R_lxt)


# -- LXT's CP-LRP attention function --------------------------------------------------------


def test_multi_head_attention_cp_agrees_where_the_values_are_positive(rng):
    # LXT's multi_head_attention_cp adds a plain 1e-6 to O = A V (hard-coded); with V > 0
    # (positive inputs and value weights) O > 0, where that is our MatMul(1e-6)'s
    # O + 1e-6 sign(O). The projections get LRP-0 on both sides.
    import lxt.explicit.special as special

    E, H, B, L = 6, 2, 2, 4
    x = rng.uniform(0.1, 1, (B, L, E))
    w_in = rng.standard_normal((3 * E, E))
    w_in[2 * E:] = np.abs(w_in[2 * E:])
    b_in = rng.standard_normal(3 * E)
    b_in[2 * E:] = np.abs(b_in[2 * E:])
    w_out, b_out = rng.standard_normal((E, E)), rng.standard_normal(E)
    padding = np.array([[False, False, False, True], [False, False, False, False]])
    mha = lrp.MultiheadAttention(w_in, w_out, H, b_in, b_out, key_padding_mask=padding,
                                 attention="cp-lrp", epsilon=1e-6)
    y = mha.forward(x)
    R = rng.standard_normal(y.shape)
    T = [torch.tensor(a) for a in (w_in, b_in, w_out, b_out)]

    def f(t):
        out, _ = special.multi_head_attention_cp(
            t, t, t, True, H, E // H, T[0][:E], T[1][:E], T[0][E:2 * E], T[1][E:2 * E],
            lambda v: lf.linear_epsilon(v, T[0][2 * E:], T[1][2 * E:], 0.0),
            lambda o: lf.linear_epsilon(o, T[2], T[3], 0.0),
            key_padding_mask=torch.tensor(padding), need_weights=False)
        return out

    y_lxt, (R_lxt,) = lxt(f, x, R=R)
    np.testing.assert_allclose(y, y_lxt, rtol=RTOL)
    e = mha.explain(x, rule=lrp.Zero(), output_relevance=R)
    check("multi_head_attention_cp (V > 0)", e.relevance, R_lxt)
