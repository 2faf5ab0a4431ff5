"""Token-level Gradient x Input and sensitivity (the coloured tokens: tests/test_plot.py)."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref import text


def linear_text_model():
    """Embedding (vocab 5, dim 2) -> Flatten -> Dense (3 tokens * 2 dims -> 2), no bias."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 2))
    return lrp.Sequential([lrp.Embedding(rng.standard_normal((5, 2))), lrp.Flatten(),
                           lrp.Dense(W)]), W


def test_gradient_x_input_equals_lrp0_on_a_linear_model():
    """For f = sum_{t,d} e_td W[(t,d), k] without bias, LRP-0 gives e_td W[(t,d), k]
    per dimension, which is also e_td * df/de_td; both sum to the same per-token value."""
    net, _ = linear_text_model()
    ids = np.array([[1, 4, 0], [2, 2, 3]])
    e = net.explain(ids, rule=lrp.Zero(), target=[0, 1])
    np.testing.assert_allclose(text.gradient_x_input(net, ids, [0, 1]), e.relevance,
                               rtol=1e-13)


def test_embedding_gradient_returns_the_embeddings_when_a_relu_follows():
    """The embeddings are the Embedding's output, also when the next layer (a ReLU)
    keeps its own output rather than its input."""
    rng = np.random.default_rng(1)
    E = rng.standard_normal((5, 2))
    net = lrp.Sequential([lrp.Embedding(E), lrp.ReLU(), lrp.Flatten(),
                          lrp.Dense(rng.standard_normal((6, 2)))])
    ids = np.array([[1, 4, 0]])
    e, grad, _ = text.embedding_gradient(net, ids, 1)
    np.testing.assert_array_equal(e, E[ids])
    assert (E[ids] < 0).any()                   # a ReLU's output would differ


def test_sensitivity_is_the_squared_gradient_norm():
    net, W = linear_text_model()
    ids = np.array([[1, 4, 0]])
    # df_k/de_td = W[(t,d), k]: sum over d of its square, per token t
    expected = (W[:, 1] ** 2).reshape(3, 2).sum(axis=1)
    np.testing.assert_allclose(text.sensitivity(net, ids, 1)[0], expected, rtol=1e-14)


def test_network_gradients_refuse_token_ids():
    """d f / d ids does not exist; silently returning zeros would read as "no token matters"."""
    net, _ = linear_text_model()
    ids = np.array([[1, 4, 0]])
    for method in (net.gradient, net.gradient_x_input):
        with pytest.raises(TypeError, match="token ids.*lrp_ref.text.gradient_x_input"):
            method(ids)


def test_gradient_methods_need_an_embedding_first():
    with pytest.raises(TypeError, match="starts with an Embedding"):
        text.gradient_x_input(lrp.Sequential([lrp.Dense(np.ones((2, 2)))]), np.ones((1, 2)))


def test_embedding_gradient_leaves_the_network_ready_for_backward():
    """Like ``net.forward``, it leaves the network (not only its layers) at the new batch."""
    net, _ = linear_text_model()
    ids = np.array([[1, 4, 0], [2, 2, 3]])
    text.gradient_x_input(net, ids, [0, 1])
    assert net.backward(np.ones((2, 2))).shape == ids.shape     # the ids carry no gradient


def graph_text_model():
    """The linear model of linear_text_model as a Graph with a skip: Embedding -> Flatten,
    Dense on the flat vector plus a second Dense on it (an Add), no bias."""
    rng = np.random.default_rng(2)
    W1, W2 = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    g = lrp.Graph()
    h = g.add(lrp.Flatten(), g.add(lrp.Embedding(rng.standard_normal((5, 2))), g.input(),
                                   name="embed"), name="flat")
    g.output(g.add(lrp.Add(epsilon=0), g.add(lrp.Dense(W1), h, name="a"),
                   g.add(lrp.Dense(W2), h, name="b"), name="sum"))
    return g, W1 + W2


def test_gradient_x_input_of_a_graph_is_taken_at_its_embedding():
    """f = sum_{t,d} e_td (W1 + W2)[(t,d), k]: df/de_td = (W1 + W2)[(t,d), k]."""
    g, W = graph_text_model()
    ids = np.array([[1, 4, 0], [2, 2, 3]])
    E = g["embed"].weight[ids].reshape(2, 6)
    expected = (E * W[:, [0, 1]].T).reshape(2, 3, 2).sum(axis=2)
    np.testing.assert_allclose(text.gradient_x_input(g, ids, [0, 1]), expected, rtol=1e-13)
    # and LRP-0 agrees on this linear model
    np.testing.assert_allclose(g.explain(ids, [0, 1], rule=lrp.Zero()).relevance, expected,
                               rtol=1e-12)


def test_graph_gradient_methods_need_the_input_read_by_one_embedding():
    g = lrp.Graph()
    x = g.input()
    g.output(g.add(lrp.Concat(axis=1), g.add(lrp.Embedding(np.ones((3, 2))), x, name="e1"),
                   g.add(lrp.Embedding(np.ones((3, 2))), x, name="e2"), name="cat"))
    with pytest.raises(TypeError, match="input read by one Embedding"):
        text.gradient_x_input(g, np.array([[0, 1]]))
