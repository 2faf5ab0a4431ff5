"""The transformer rules (AttnLRP, CP-LRP): LayerNorm, RMSNorm, Softmax, MatMul, Product.

Hand-computed examples (worked on paper, docs/transformers.md), explicit == fast,
the ledger (balance where the rule conserves, the booked bias where softmax does
not), the association dependence of the uniform product rule, save/load, and
errors. Forward and gradient against torch: tests/test_transformer_torch.py.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

#: hand examples: a handful of float64 roundings (divisions by 3, 6, ln 3)
HAND = dict(rtol=1e-14, atol=1e-15)
#: explicit and fast sum the same terms in a different order
PATHS = dict(rtol=1e-10, atol=1e-12)


def ledger_of(layer, R, rule=None, method="fast"):
    """``R_in`` and the ledger of one step after ``forward``: what a network's record holds."""
    return layer._relevance(np.asarray(R, float), rule, method)


# -- LayerNorm ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_layer_norm_centring_by_hand(method):
    # x = (1, 2, 6), mu = 3, c = (-2, -1, 3); R = (1, 2, 3): s_j = R_j / c_j = (-1/2, -2, 1),
    # mean(s) = -1/2, R_i = x_i (s_i - mean s) = (0, -3, 9); sigma cancels (gamma = 1, beta = 0)
    ln = lrp.LayerNorm(np.ones(3))
    ln.forward(np.array([[1.0, 2.0, 6.0]]))
    R_in, ledger = ledger_of(ln, [[1.0, 2.0, 3.0]], lrp.Zero(), method)
    np.testing.assert_allclose(R_in, [[0.0, -3.0, 9.0]], **HAND)
    np.testing.assert_allclose(ledger.total(), [0.0], atol=1e-14)


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_layer_norm_affine_and_centring_by_hand(method):
    # x = (1, 1, 4): mu = 2, c = (-1, -1, 2), var = 2; eps = 2 so sigma = 2, xhat = (-1/2, -1/2, 1)
    # gamma = (2, 4, 1), beta = (2, 1, 1): h = (-1, -2, 1), y = (1, -1, 2); R = y.
    # affine (LRP-0): R(xhat) = h / y R = h = (-1, -2, 1); beta takes beta / y R = beta, sum 4.
    # centring: s = R(xhat) / c = (1, 2, 1/2), mean 7/6: R_i = x_i (s_i - 7/6) = (-1/6, 5/6, -8/3)
    ln = lrp.LayerNorm([2.0, 4.0, 1.0], [2.0, 1.0, 1.0], eps=2.0)
    y = ln.forward(np.array([[1.0, 1.0, 4.0]]))
    np.testing.assert_allclose(y, [[1.0, -1.0, 2.0]], **HAND)
    R_in, ledger = ledger_of(ln, y, lrp.Zero(), method)
    np.testing.assert_allclose(R_in, [[-1 / 6, 5 / 6, -8 / 3]], **HAND)
    np.testing.assert_allclose(ledger.absorbed_bias, [4.0], **HAND)
    np.testing.assert_allclose(ledger.absorbed_stabilizer + ledger.dropped, [0.0], atol=1e-15)


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_layer_norm_detach_mean_by_hand(method):
    # as above, but mu = 2 is a constant: c_i = x_i + (-2), R_i = x_i / c_i R(xhat_i)
    # = (1/-1 * -1, 1/-1 * -2, 4/2 * 1) = (1, 2, 2); -mu takes -2 / c_i R(xhat_i) = (-2, -4, -1)
    ln = lrp.LayerNorm([2.0, 4.0, 1.0], [2.0, 1.0, 1.0], eps=2.0, detach_mean=True)
    y = ln.forward(np.array([[1.0, 1.0, 4.0]]))
    R_in, ledger = ledger_of(ln, y, lrp.Zero(), method)
    np.testing.assert_allclose(R_in, [[1.0, 2.0, 2.0]], **HAND)
    np.testing.assert_allclose(ledger.absorbed_bias, [4.0 - 7.0], **HAND)


def test_layer_norm_epsilon_stabilises_both_steps():
    # x = (1, 1, 4), gamma = 1, beta = 0, eps_ln = 2: y = xhat = (-1/2, -1/2, 1), R = (1, 0, 0).
    # Epsilon(1/2): affine R(xhat_1) = (-1/2) / (-1/2 - 1/2) * 1 = 1/2 (stabilizer 1/2);
    # centring c = (-1, -1, 2): s_1 = (1/2) / (-1 - 1/2) = -1/3 (stabilizer: -1/2 * -1/3 = 1/6);
    # R_i = x_i ((delta_i1 - 1/3) s_1) = (-2/9, 1/9, 4/9), sum 1/3 = 1 - 1/2 - 1/6
    ln = lrp.LayerNorm(np.ones(3), eps=2.0)
    ln.forward(np.array([[1.0, 1.0, 4.0]]))
    for method in ("fast", "explicit"):
        R_in, ledger = ledger_of(ln, [[1.0, 0.0, 0.0]], lrp.Epsilon(0.5), method)
        np.testing.assert_allclose(R_in, [[-2 / 9, 1 / 9, 4 / 9]], **HAND)
        np.testing.assert_allclose(ledger.absorbed_stabilizer, [1 / 2 + 1 / 6], **HAND)


def test_layer_norm_pass_and_refused_rules():
    ln = lrp.LayerNorm(np.ones(3))
    ln.forward(np.array([[1.0, 2.0, 6.0]]))
    np.testing.assert_array_equal(ln.relevance(np.array([[1.0, 2.0, 3.0]]), lrp.Pass()),
                                  [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="Epsilon\\(\\), Zero\\(\\) or Pass\\(\\)"):
        ln.relevance(np.ones((1, 3)), lrp.AlphaBeta(2, 1))
    with pytest.raises(ValueError, match="needs a rule"):
        ln.relevance(np.ones((1, 3)), None)
    with pytest.raises(ValueError, match=r"expected input of shape \(B, ..., 3\)"):
        ln.forward(np.ones((2, 4)))


# -- RMSNorm --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_rms_norm_by_hand(method):
    # x = (1, 7): mean(x^2) = 25, eps = 0, sigma = 5; gamma = (5, 5): y = (1, 7).
    # Epsilon(1): R_i = y_i / (y_i + 1) R_i = (1/2, 7/8) R_i; the stabilizer takes (1/2, 1/8) R_i
    rms = lrp.RMSNorm([5.0, 5.0], eps=0.0)
    np.testing.assert_allclose(rms.forward(np.array([[1.0, 7.0]])), [[1.0, 7.0]], **HAND)
    R_in, ledger = ledger_of(rms, [[8.0, 8.0]], lrp.Epsilon(1.0), method)
    np.testing.assert_allclose(R_in, [[4.0, 7.0]], **HAND)
    np.testing.assert_allclose(ledger.absorbed_stabilizer, [5.0], **HAND)
    R_in, _ = ledger_of(rms, [[8.0, 8.0]], lrp.Zero(), method)
    np.testing.assert_allclose(R_in, [[8.0, 8.0]], **HAND)          # LRP-0: the identity


# -- Softmax --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_softmax_by_hand_and_its_booked_bias(method):
    # x = (0, ln 3): s = (1/4, 3/4); R = (1/2, 3/4), sum 5/4:
    # R_in = x (R - s sum R) = (0, ln 3 (3/4 - 15/16)) = (0, -3/16 ln 3);
    # bias_j = (1 - x_j + sum_i s_i x_i) R_j, sum_i s_i x_i = 3/4 ln 3:
    # (1 + 3/4 ln 3) 1/2 + (1 - 1/4 ln 3) 3/4 = 5/4 + 3/16 ln 3
    ln3 = math.log(3.0)
    sm = lrp.Softmax()
    np.testing.assert_allclose(sm.forward(np.array([[0.0, ln3]])), [[0.25, 0.75]], **HAND)
    R_in, ledger = ledger_of(sm, [[0.5, 0.75]], None, method)
    np.testing.assert_allclose(R_in, [[0.0, -3 / 16 * ln3]], **HAND)
    np.testing.assert_allclose(ledger.absorbed_bias, [5 / 4 + 3 / 16 * ln3], **HAND)


def test_softmax_creates_relevance_and_books_it_as_a_negative_bias():
    # x = (2, 0, ..., 0) (10 entries), R = (1, 0, ..., 0): s_1 = e^2 / (e^2 + 9),
    # R_in = (2 (1 - s_1), 0, ...), sum 2 - 2 s_1 > 1; the bias 1 - 2 + 2 s_1 < 0
    x, R = np.zeros((1, 10)), np.zeros((1, 10))
    x[0, 0], R[0, 0] = 2.0, 1.0
    s_1 = math.exp(2) / (math.exp(2) + 9)
    sm = lrp.Softmax()
    sm.forward(x)
    R_in, ledger = ledger_of(sm, R)
    assert R_in.sum() == pytest.approx(2 - 2 * s_1, rel=1e-14) and R_in.sum() > 1
    assert ledger.absorbed_bias[0] == pytest.approx(2 * s_1 - 1, rel=1e-13)
    assert ledger.absorbed_bias[0] < 0


def test_softmax_is_gradient_times_input_of_the_weighted_outputs():
    # R_i = x_i d/dx_i sum_j s_j(x) c_j at c_j = R_j / s_j (Prop. 3.1)
    rng = np.random.default_rng(0)
    x, R = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    sm = lrp.Softmax()
    s = sm.forward(x)
    np.testing.assert_allclose(sm.relevance(R), x * sm.backward(R / s), rtol=1e-12, atol=1e-12)


# -- MatMul and attention -------------------------------------------------------------------


def attention_by_hand(constant):
    """softmax(Q K^T) V on 2 tokens with Q = I, K^T = [[0, ln 3], [0, 0]], V = [[4, 0], [0, 2]]."""
    ln3 = math.log(3.0)
    Q, KT, V = np.eye(2)[None], np.array([[[0.0, ln3], [0.0, 0.0]]]), np.array([[[4.0, 0], [0, 2]]])
    scores, softmax, values = lrp.MatMul(0.0), lrp.Softmax(), lrp.MatMul(0.0, constant)
    O = values.forward(softmax.forward(scores.forward(Q, KT)), V)
    return O, scores, softmax, values


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_two_token_attention_by_hand_attnlrp(method):
    # A = [[1/4, 3/4], [1/2, 1/2]], O = A V = [[1, 3/2], [2, 1]]; R = O (sum 11/2).
    # A V, uniform, eps 0: R(A_ji) = A_ji (sum_p V_ip) / 2 = [[1/2, 3/4], [1, 1/2]],
    #                      R(V_ip) = V_ip (sum_j A_ji) / 2 = [[3/2, 0], [0, 5/4]]
    # softmax row 1 (x = (0, ln 3), R = (1/2, 3/4)): (0, -3/16 ln 3); row 2 (x = 0): (0, 0)
    # Q K^T: only S_12 = Q_11 KT_12 has a nonzero term: Q_11 and KT_12 get -3/32 ln 3 each
    ln3 = math.log(3.0)
    O, scores, softmax, values = attention_by_hand(None)
    np.testing.assert_allclose(O, [[[1.0, 1.5], [2.0, 1.0]]], **HAND)
    (R_A, R_V), ledger = ledger_of(values, O, None, method)
    np.testing.assert_allclose(R_A, [[[0.5, 0.75], [1.0, 0.5]]], **HAND)
    np.testing.assert_allclose(R_V, [[[1.5, 0.0], [0.0, 1.25]]], **HAND)
    np.testing.assert_allclose(ledger.total(), [0.0], atol=1e-15)
    R_S, _ = ledger_of(softmax, R_A, None, method)
    np.testing.assert_allclose(R_S, [[[0.0, -3 / 16 * ln3], [0.0, 0.0]]], **HAND)
    (R_Q, R_KT), ledger = ledger_of(scores, R_S, None, method)
    np.testing.assert_allclose(R_Q, [[[-3 / 32 * ln3, 0.0], [0.0, 0.0]]], **HAND)
    np.testing.assert_allclose(R_KT, [[[0.0, -3 / 32 * ln3], [0.0, 0.0]]], **HAND)
    np.testing.assert_allclose(ledger.dropped, [0.0], atol=1e-15)   # R_S = 0 where S = 0


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_two_token_attention_by_hand_cp_lrp(method):
    # CP-LRP: A held constant, R(V_ip) = V_ip sum_j A_ji R_jp / O_jp = V_ip (sum_j A_ji)
    # = [[3, 0], [0, 5/2]] (sum 11/2: all of R), and nothing reaches the softmax or Q K^T
    O, _, _, values = attention_by_hand(0)
    (R_A, R_V), ledger = ledger_of(values, O, None, method)
    np.testing.assert_array_equal(R_A, np.zeros((1, 2, 2)))
    np.testing.assert_allclose(R_V, [[[3.0, 0.0], [0.0, 2.5]]], **HAND)
    np.testing.assert_allclose(ledger.total(), [0.0], atol=1e-15)


# -- Product: the uniform rule and association -----------------------------------------------


def test_product_uniform_split_depends_on_association():
    # x1 x2 x3 with (2, 3, 4), R = 24 (the output)
    x1, x2, x3 = (np.array([[v]]) for v in (2.0, 3.0, 4.0))
    R = np.array([[24.0]])
    inner, outer = lrp.Product(), lrp.Product()
    outer.forward(inner.forward(x1, x2), x3)                           # (x1 x2) x3
    R_12, R_3 = outer.relevance(R)
    R_1, R_2 = inner.relevance(R_12)
    assert [R_1.item(), R_2.item(), R_3.item()] == [6.0, 6.0, 12.0]
    inner, outer = lrp.Product(), lrp.Product()
    outer.forward(x1, inner.forward(x2, x3))                           # x1 (x2 x3)
    R_1, R_23 = outer.relevance(R)
    R_2, R_3 = inner.relevance(R_23)
    assert [R_1.item(), R_2.item(), R_3.item()] == [12.0, 6.0, 6.0]
    flat = lrp.Product()
    flat.forward(x1, x2, x3)
    assert [r.item() for r in flat.relevance(R)] == [8.0, 8.0, 8.0]


# -- explicit == fast, and the ledger, over shapes -------------------------------------------


@st.composite
def groups(draw, max_axes=2):
    """A batch of token groups: (B, T, *normalised shape), values and relevance."""
    seed = draw(st.integers(0, 2**31 - 1))
    norm = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=max_axes)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), *norm)
    return np.random.default_rng(seed), shape, norm


@given(groups(), st.sampled_from([0.0, 1e-6, 0.1]), st.booleans(), st.booleans())
def test_layer_norm_explicit_equals_fast_and_ledger_balances(case, epsilon, detach, rms):
    rng, shape, norm = case
    gamma = rng.standard_normal(norm)
    layer = (lrp.RMSNorm(gamma, eps=1e-5) if rms
             else lrp.LayerNorm(gamma, rng.standard_normal(norm), eps=1e-5, detach_mean=detach))
    layer.forward(rng.standard_normal(shape))
    R = rng.standard_normal(shape)
    rule = lrp.Epsilon(epsilon)
    R_fast, L_fast = ledger_of(layer, R, rule, "fast")
    R_expl, L_expl = ledger_of(layer, R, rule, "explicit")
    np.testing.assert_allclose(R_fast, R_expl, **PATHS)
    for R_in, ledger in ((R_fast, L_fast), (R_expl, L_expl)):
        # rounding of sums of O(1) terms, divided by |d| >= ... (random: not tiny)
        np.testing.assert_allclose(per_sample_sum(R), per_sample_sum(R_in) + ledger.total(),
                                   rtol=1e-9, atol=1e-9)


@given(groups(max_axes=1))
def test_layer_norm_with_zero_and_no_beta_conserves(case):
    rng, shape, norm = case
    if norm[0] < 2:
        return                                    # one element: x - mu = 0, all dropped
    layer = lrp.LayerNorm(rng.standard_normal(norm))
    layer.forward(rng.standard_normal(shape))
    R = rng.standard_normal(shape)
    R_in, ledger = ledger_of(layer, R, lrp.Zero())
    np.testing.assert_allclose(per_sample_sum(R_in), per_sample_sum(R), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(ledger.total(), 0.0)


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))
def test_softmax_explicit_equals_fast_and_books_the_difference(seed, b, t, n):
    rng = np.random.default_rng(seed)
    sm = lrp.Softmax()
    sm.forward(rng.standard_normal((b, t, n)))
    R = rng.standard_normal((b, t, n))
    R_fast, L_fast = ledger_of(sm, R)
    R_expl, L_expl = ledger_of(sm, R, None, "explicit")
    np.testing.assert_allclose(R_fast, R_expl, **PATHS)
    np.testing.assert_allclose(L_fast.absorbed_bias, L_expl.absorbed_bias, **PATHS)
    np.testing.assert_allclose(per_sample_sum(R), per_sample_sum(R_fast) + L_fast.total(),
                               rtol=1e-10, atol=1e-10)


@given(st.integers(0, 2**31 - 1), st.tuples(*[st.integers(1, 3)] * 5),
       st.sampled_from([None, 0, 1]), st.sampled_from([0.0, 1e-6, 0.5]))
def test_matmul_explicit_equals_fast_and_ledger_balances(seed, dims, constant, epsilon):
    rng = np.random.default_rng(seed)
    b, h, n, k, m = dims
    mm = lrp.MatMul(epsilon, constant)
    mm.forward(rng.standard_normal((b, h, n, k)), rng.standard_normal((b, h, k, m)))
    R = rng.standard_normal((b, h, n, m))
    (Ra, Rb), L_fast = ledger_of(mm, R)
    (Ea, Eb), L_expl = ledger_of(mm, R, None, "explicit")
    np.testing.assert_allclose(Ra, Ea, **PATHS)
    np.testing.assert_allclose(Rb, Eb, **PATHS)
    for ledger in (L_fast, L_expl):
        np.testing.assert_allclose(per_sample_sum(R), per_sample_sum(Ra) + per_sample_sum(Rb)
                                   + ledger.total(), rtol=1e-9, atol=1e-9)
    if constant is not None:
        assert not np.any((Ra, Rb)[constant])


def attention_graph(d=3, constant=None, epsilon=0.0):
    """x -> softmax(x x) x -> LayerNorm: a self-attention shape with fan-out, for the ledger."""
    g = lrp.Graph()
    x = g.input()
    s = g.add(lrp.MatMul(epsilon), x, x, name="scores")
    a = g.add(lrp.Softmax(), s, name="softmax")
    o = g.add(lrp.MatMul(epsilon, constant), a, x, name="values")
    g.output(g.add(lrp.LayerNorm(np.ones(d)), o, name="norm"))
    return g


@pytest.mark.parametrize("constant", [None, 0])
def test_attention_graph_ledger_books_every_node(constant):
    rng = np.random.default_rng(1)
    g = attention_graph(constant=constant)
    x = rng.standard_normal((2, 3, 3))
    R = rng.standard_normal((2, 3, 3))
    e = g.explain(x, rule=lrp.Epsilon(1e-3), output_relevance=R)
    for record in e.layers:
        np.testing.assert_allclose(record.imbalance(), 0.0, atol=1e-9)
    booked = sum(record.ledger.total() for record in e.layers if record.path)
    np.testing.assert_allclose(per_sample_sum(R), per_sample_sum(e.relevance) + booked,
                               rtol=1e-9, atol=1e-9)
    softmax = e.layer("softmax")
    if constant == 0:                      # CP-LRP: no relevance reaches the softmax
        np.testing.assert_array_equal(softmax.relevance_out, 0.0)


def test_new_layers_save_and_load(tmp_path):
    g = attention_graph(constant=0, epsilon=1e-4)
    x = np.random.default_rng(2).standard_normal((1, 3, 3))
    lrp.save(g, tmp_path / "attention.npz")
    h = lrp.load(tmp_path / "attention.npz")
    np.testing.assert_array_equal(h.forward(x), g.forward(x))
    assert h["values"].constant == 0 and h["values"].epsilon == 1e-4
    rms = lrp.RMSNorm(np.arange(1.0, 4.0), eps=1e-6)
    lrp.save(lrp.Sequential([rms, lrp.Softmax()]), tmp_path / "rms.npz")
    np.testing.assert_array_equal(lrp.load(tmp_path / "rms.npz")[0].gamma, rms.gamma)


def test_matmul_refuses_bad_shapes_and_parameters():
    with pytest.raises(ValueError, match="constant must be None"):
        lrp.MatMul(constant=2)
    with pytest.raises(ValueError, match="epsilon must be"):
        lrp.MatMul(-1.0)
    with pytest.raises(ValueError, match=r"\(B, ..., n, k\) and \(B, ..., k, m\)"):
        lrp.MatMul().forward(np.ones((1, 2, 3)), np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        lrp.Softmax().forward(np.array([[0.0, -np.inf]]))


def test_explicit_path_refuses_above_the_memory_budget(monkeypatch):
    from lrp_ref.engine import linear
    monkeypatch.setattr(linear, "EXPLICIT_MAX_BYTES", 100)
    x = np.ones((1, 2, 4))
    layers = [(lrp.LayerNorm(np.ones(4)), (x,), lrp.Zero()), (lrp.Softmax(), (x,), None),
              (lrp.MatMul(), (x, np.ones((1, 4, 2))), None)]
    for layer, inputs, rule in layers:
        R = np.ones_like(layer.forward(*inputs))
        with pytest.raises(ValueError, match="explicit path would materialise"):
            layer.relevance(R, rule, method="explicit")
        layer.relevance(R, rule)                              # fast: no such limit


# -- Softmax with a mask of blocked positions ------------------------------------------------


def test_masked_softmax_is_the_softmax_of_the_open_positions():
    # docstring example: x = (0, ln 3, 7), the third blocked: as (0, ln 3) alone, s_3 = 0
    x, R = np.array([[0.0, np.log(3), 7.0]]), np.array([[0.5, 0.75, 2.0]])
    for method in ("fast", "explicit"):
        softmax = lrp.Softmax(mask=np.array([[False, False, True]]))
        s = softmax.forward(x)
        np.testing.assert_allclose(s, [[0.25, 0.75, 0]], **HAND)
        R_in, ledger = ledger_of(softmax, R, method=method)
        np.testing.assert_allclose(R_in, [[0, -3 / 16 * np.log(3), 0]], **HAND)
        # the Taylor bias of the open positions, and the R = 2 that reached the constant 0
        assert ledger.absorbed_bias[0] == pytest.approx(5 / 4 + 3 / 16 * np.log(3) + 2, rel=1e-14)


def test_masked_softmax_backward_is_the_gradient_of_the_open_positions():
    x, g = np.array([[0.3, -1.0, 2.0, 0.5]]), np.array([[1.0, 2.0, -1.0, 0.5]])
    softmax = lrp.Softmax(mask=np.array([[False, True, False, True]]))
    softmax.forward(x)
    open_ = lrp.Softmax()
    open_.forward(x[:, [0, 2]])
    grad = softmax.backward(g)
    np.testing.assert_allclose(grad[:, [0, 2]], open_.backward(g[:, [0, 2]]), **HAND)
    assert not grad[:, [1, 3]].any()


def test_masked_softmax_saves_its_mask(tmp_path):
    net = lrp.Sequential([lrp.Softmax(mask=np.triu(np.ones((3, 3), bool), 1)[None])])
    lrp.save(net, tmp_path / "s.npz")
    x = np.random.default_rng(0).standard_normal((1, 3, 3))
    np.testing.assert_array_equal(lrp.load(tmp_path / "s.npz").forward(x), net.forward(x))
    copy = net.astype(np.float32)[0]          # the mask stays the blocked positions
    np.testing.assert_array_equal(copy.mask, net[0].mask)
    assert copy.mask.dtype == bool


# -- a MatMul's rule: the node's own choice, or a composite's UniformSplit / HeldConstant ----


def test_matmul_rule_overrides_the_constant_it_was_built_with():
    a = np.array([[[0.25, 0.75], [0.5, 0.5]]])
    b = np.array([[[4.0, 0.0], [0.0, 2.0]]])
    for built in (None, 0, 1):
        mm = lrp.MatMul(0.0, constant=built)
        O = mm.forward(a, b)
        R_a, R_b = mm.relevance(O, lrp.UniformSplit())
        np.testing.assert_allclose(R_b[0], [[1.5, 0], [0, 1.25]], **HAND)    # half each
        np.testing.assert_allclose(R_a[0], [[0.5, 0.75], [1, 0.5]], **HAND)
        R_a, R_b = mm.relevance(O, lrp.HeldConstant(0))
        assert not R_a.any()
        np.testing.assert_allclose(R_b[0], [[3, 0], [0, 2.5]], **HAND)       # all to b


@pytest.mark.parametrize("constant", [0, 1])
def test_matmul_held_constant_operand_gets_exact_positive_zeros(constant):
    # f_a = 0 (or f_b = 0): the operand held constant receives nothing, as an array of +0 of
    # its shape and dtype (not 0 times its would-be share, which gives -0 where that is < 0)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 5, 2))
    mm = lrp.MatMul(0.0, constant)
    O = mm.forward(a, b)
    held = mm.relevance(O)[constant]
    assert held.shape == (a, b)[constant].shape and held.dtype == np.float64
    assert not held.any() and not np.signbit(held).any()


def test_matmul_refuses_other_rules_and_keeps_its_own_without_one():
    mm = lrp.MatMul(constant=0)
    mm.forward(np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"UniformSplit\(\) or HeldConstant"):
        mm.relevance(np.ones((1, 2, 2)), lambda net: {"": lrp.Epsilon()})    # a composite's
    for rule in (None, lrp.Epsilon()):       # a network's single rule is not for this node
        R_a, _ = mm.relevance(np.ones((1, 2, 2)), rule)
        assert not R_a.any()
    with pytest.raises(ValueError, match="operand must be 0 or 1"):
        lrp.HeldConstant(2)
