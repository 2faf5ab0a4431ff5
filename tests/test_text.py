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
