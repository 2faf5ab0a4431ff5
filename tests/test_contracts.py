"""The public layer contract: output_shape, check_input, parameters(), gradients(),
and LinearLayer.relevance_with_ledger (the linear-relevance entry point LSTM uses)."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.zoo.train import Adam


def small_net(rng):
    """Every parametrised layer family: Embedding, LSTM, Dense, BatchNorm1d, in containers."""
    return lrp.Sequential([
        lrp.Embedding(rng.standard_normal((5, 3))),
        lrp.LSTM(rng.standard_normal((8, 3)), rng.standard_normal((8, 2))),
        lrp.Residual(lrp.Sequential([lrp.Dense(rng.standard_normal((2, 2))), lrp.ReLU()])),
        lrp.BatchNorm1d(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)),
        lrp.Dense(rng.standard_normal((2, 2)), rng.standard_normal(2)),
    ])


KEYS = ["0.weight", "1.weight_ih", "1.weight_hh", "1.bias_ih", "1.bias_hh",
        "2.body.0.weight", "2.body.0.bias", "3.gamma", "3.beta", "4.weight", "4.bias"]


def test_parameters_are_the_trainable_arrays_keyed_like_state():
    net = small_net(np.random.default_rng(0))
    params = net.parameters()
    assert list(params) == KEYS                     # running statistics are not trainable
    for key, array in params.items():
        assert array is net.state()[key]            # the live arrays, updated in place
    assert list(net[4].parameters()) == ["weight", "bias"]
    assert lrp.ReLU().parameters() == {} and lrp.MaxPool2d(2).parameters() == {}


def test_gradients_are_none_before_backward_then_those_of_the_grad_attributes():
    rng = np.random.default_rng(1)
    net = small_net(rng)
    assert list(net.gradients()) == KEYS
    assert all(g is None for g in net.gradients().values())
    net.forward(rng.integers(0, 5, (3, 4)))
    net.backward(rng.standard_normal((3, 2)))
    grads = net.gradients()
    for key, array in net.parameters().items():
        assert grads[key].shape == array.shape
    assert grads["1.weight_ih"] is net[1].grad_weight_ih
    assert grads["3.gamma"] is net[3].grad_gamma
    assert grads["0.weight"] is net[0].grad_weight
    np.testing.assert_array_equal(grads["4.bias"], net[4].grad_bias)


@pytest.mark.parametrize("make, name", [
    (lambda: lrp.Embedding(np.ones((3, 2))), "grad_weight"),
    (lambda: lrp.LSTM(np.ones((4, 1)), np.ones((4, 1))), "grad_bias_hh"),
])
def test_every_layer_gives_read_only_gradient_attributes(make, name):
    layer = make()
    assert getattr(layer, name) is None
    with pytest.raises(AttributeError, match="computed by backward"):
        setattr(layer, name, np.zeros(1))


def test_adam_trains_every_parameter_through_the_contract():
    rng = np.random.default_rng(2)
    net = small_net(rng)
    before = {k: v.copy() for k, v in net.parameters().items()}
    frozen = {k: v.copy() for k, v in net.state().items() if k not in before}
    optimizer = Adam(net, lr=0.01)
    net.forward(rng.integers(0, 5, (3, 4)))
    net.backward(rng.standard_normal((3, 2)))
    optimizer.step()
    for key, array in net.parameters().items():
        # first Adam step: every entry with a nonzero gradient moves by about lr
        g = net.gradients()[key]
        moved = np.abs(array - before[key])
        np.testing.assert_allclose(moved[g != 0], 0.01, rtol=1e-4)
    for key, array in frozen.items():
        np.testing.assert_array_equal(net.state()[key], array)


def test_adam_step_before_backward_is_a_clear_error():
    net = lrp.Sequential([lrp.Dense(np.ones((2, 2)))])
    with pytest.raises(ValueError, match=r"no gradient for '0.weight'.*backward"):
        Adam(net).step()


def test_output_shape_and_check_input_are_public():
    layer = lrp.Dense(np.ones((3, 2)))
    assert layer.output_shape is None
    layer.forward(np.ones((4, 3)))
    assert layer.output_shape == (4, 2)
    a = layer.check_input(np.ones((1, 3), dtype=np.int64))
    assert a.dtype == np.float64
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 3\)"):
        layer.check_input(np.ones((1, 4)))
    ids = lrp.Sequential([lrp.Embedding(np.ones((4, 2)))]).check_input([[1, 3]])
    assert ids.dtype == np.int64


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_relevance_with_ledger_is_relevance_plus_its_ledger(method):
    # hand-computed LRP-0: a = (1, 2), w = [[1], [3]], b = 1 -> z = 1 + 6 + 1 = 8,
    # R_i = a_i w_i / z * R = (1/8, 6/8) * 8 = (1, 6), the bias keeps 1/8 * 8 = 1
    layer = lrp.Dense(np.array([[1.0], [3.0]]), np.array([1.0]))
    layer.forward(np.array([[1.0, 2.0]]))
    R_in, ledger = layer.relevance_with_ledger(np.array([[8.0]]), lrp.Zero(), method)
    np.testing.assert_allclose(R_in, [[1.0, 6.0]], rtol=1e-15)
    np.testing.assert_allclose(ledger.absorbed_bias, [1.0], rtol=1e-15)
    np.testing.assert_array_equal(R_in, layer.relevance(np.array([[8.0]]), lrp.Zero(), method))


def test_relevance_with_ledger_checks_like_relevance():
    layer = lrp.Dense(np.ones((2, 1)))
    with pytest.raises(ValueError, match="needs a forward pass first"):
        layer.relevance_with_ledger(np.ones((1, 1)), lrp.Zero())
    layer.forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="must have the shape of the last forward output"):
        layer.relevance_with_ledger(np.ones((1, 2)), lrp.Zero())
    with pytest.raises(ValueError, match="not a linear rule|needs a rule"):
        layer.relevance_with_ledger(np.ones((1, 1)), None)


def test_every_parameter_is_an_array_with_a_read_only_gradient_attribute():
    from lrp_ref.layers.base import ParameterGradient
    from lrp_ref.registry import LAYER_TYPES

    for cls in LAYER_TYPES.values():
        assert set(cls.parameter_names) <= set(cls.array_names), cls
        for name in cls.parameter_names:
            assert isinstance(getattr(cls, f"grad_{name}", None), ParameterGradient), (cls, name)
