"""Embedding: lookup, integer ids through a Sequential, per-token relevance, errors."""

import numpy as np
import pytest

import lrp_ref as lrp


def table():
    return np.arange(12.0).reshape(4, 3)        # vocab 4, dim 3: row k = (3k, 3k+1, 3k+2)


def test_forward_is_a_lookup():
    layer = lrp.Embedding(table())
    np.testing.assert_array_equal(layer.forward([[2, 0], [3, 3]]),
                                  [[[6, 7, 8], [0, 1, 2]], [[9, 10, 11], [9, 10, 11]]])


def test_relevance_of_a_token_is_the_sum_over_its_dimensions():
    layer = lrp.Embedding(table())
    layer.forward([[1, 2]])
    R = np.array([[[1.0, 2.0, -0.5], [0.25, 0.0, 4.0]]])
    # 1 + 2 - 0.5 = 2.5 and 0.25 + 0 + 4 = 4.25, exact in binary
    np.testing.assert_array_equal(layer.relevance(R), [[2.5, 4.25]])


def test_sequential_keeps_token_ids_integer_and_explains_per_token():
    rng = np.random.default_rng(0)
    net = lrp.Sequential([lrp.Embedding(table()), lrp.Flatten(),
                          lrp.Dense(rng.standard_normal((6, 2)))])
    ids = np.array([[1, 3], [0, 2]])
    e = net.explain(ids, rule=lrp.Zero())
    assert net.reads_token_ids
    net.forward(ids)        # explain keeps nothing on the layers; a forward on its own does
    assert net[0]._input.dtype == np.int64
    assert e.relevance.shape == (2, 2)
    # no bias: LRP-0 conserves, token relevances sum to the target logit
    np.testing.assert_allclose(e.relevance.sum(axis=1), e.output[[0, 1], e.target], rtol=1e-12)


def test_nested_sequential_hands_ids_through():
    net = lrp.Sequential([lrp.Sequential([lrp.Embedding(table())]), lrp.Flatten()])
    np.testing.assert_array_equal(net.forward([[3]]), [[9, 10, 11]])


def test_grad_weight_adds_repeated_ids():
    layer = lrp.Embedding(table())
    layer.forward([[1, 1, 2]])
    grad_x = layer.backward(np.ones((1, 3, 3)))
    expected = np.zeros((4, 3))
    expected[1], expected[2] = 2, 1           # id 1 twice, id 2 once
    np.testing.assert_array_equal(layer.grad_weight, expected)
    np.testing.assert_array_equal(grad_x, np.zeros((1, 3)))     # ids are not differentiable


@pytest.mark.parametrize("ids, error, message", [
    ([[0, 4]], ValueError, r"layer '0' \(Embedding\): token ids must lie in \[0, 4\), got \[4\]"),
    ([[-1, 2]], ValueError, r"must lie in \[0, 4\), got \[-1\]"),
    ([[0.0, 1.0]], TypeError, "expected integer token ids, got dtype float64"),
    ([[True, False]], TypeError, "expected integer token ids, got dtype bool"),
    ([0, 1], ValueError, r"expected token ids of shape \(B, T\), got \(2,\)"),
])
def test_bad_ids_are_refused_and_change_nothing(ids, error, message):
    net = lrp.Sequential([lrp.Embedding(table())])
    net.forward([[1]])
    with pytest.raises(error, match=message):
        net.forward(ids)
    np.testing.assert_array_equal(net[0]._input, [[1]])


def test_weight_must_be_a_table():
    with pytest.raises(ValueError, match=r"weight must have shape \(vocab, dim\)"):
        lrp.Embedding(np.zeros(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        lrp.Embedding(np.full((2, 2), np.inf))



# -- PositionalEmbedding: x + P[:T], P a trainable table acting as a bias --------------------


def test_positional_embedding_adds_the_first_T_rows():
    P = np.arange(8.0).reshape(4, 2)                       # max_len 4, dim 2
    layer = lrp.PositionalEmbedding(P)
    x = np.ones((2, 3, 2))
    np.testing.assert_array_equal(layer.forward(x), x + P[:3])
    assert layer.forward(np.ones((1, 4, 2))).shape == (1, 4, 2)     # any T <= max_len


def test_positional_embedding_relevance_books_the_position_as_a_bias():
    # eq. (6) with one contribution x and the bias p: x = 3, p = 1, R = 8, epsilon = 0
    # gives R_x = 3/4 * 8 = 6 and 2 absorbed (as AddConstant)
    layer = lrp.PositionalEmbedding(np.array([[1.0], [5.0]]), epsilon=0)
    g = lrp.Graph()
    g.output(g.add(layer, g.input(), name="pos"))
    e = g.explain(np.array([[[3.0]]]), output_relevance=np.array([[[8.0]]]), rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[[6.0]]])
    np.testing.assert_array_equal(e.layer("pos").absorbed_bias, [2.0])


def test_positional_embedding_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((5, 3))
    x, c = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    layer = lrp.PositionalEmbedding(P)

    def loss(table):                                        # L = sum c * (x + table[:T])^2
        return float((c * (x + table[:4]) ** 2).sum())

    z = layer.forward(x)
    grad_x = layer.backward(2 * c * z)
    np.testing.assert_array_equal(grad_x, 2 * c * z)        # dz/dx = 1
    h = 1e-6
    numeric = np.zeros_like(P)
    for index in np.ndindex(P.shape):
        step = np.zeros_like(P)
        step[index] = h
        numeric[index] = (loss(P + step) - loss(P - step)) / (2 * h)
    # central differences of a quadratic: exact up to rounding of ~1e-16 / 1e-6
    np.testing.assert_allclose(layer.grad_weight, numeric, atol=1e-8)
    np.testing.assert_array_equal(layer.grad_weight[4], 0)   # row 4 was not used (T = 4)
    assert set(layer.gradients()) == {"weight"}


def test_positional_embedding_refuses_long_or_misshaped_input():
    layer = lrp.PositionalEmbedding(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"PositionalEmbedding.*\(B, T <= 3, 2\).*\(1, 4, 2\)"):
        layer.forward(np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match=r"PositionalEmbedding.*\(1, 2, 3\)"):
        layer.forward(np.zeros((1, 2, 3)))


def test_positional_embedding_saves_and_loads(tmp_path):
    g = lrp.Graph()
    g.output(g.add(lrp.PositionalEmbedding(np.arange(6.0).reshape(3, 2), epsilon=0.5),
                   g.input(), name="pos"))
    lrp.save(g, tmp_path / "pos.npz")
    back = lrp.load(tmp_path / "pos.npz")
    np.testing.assert_array_equal(back["pos"].weight, g["pos"].weight)
    assert back["pos"].epsilon == 0.5
