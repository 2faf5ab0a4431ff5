"""Nested containers are traversed in linear time (issue 22: ``Layer.dtype`` walked every
descendant at every level, so 22 nested Sequentials took 9.6 s and 40 never finished).

The tests count ``arrays()`` evaluations (never time them) and stop the walk with an
error once it is beyond any linear budget, so the old exponential walk fails fast."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.layers.base import Layer


@pytest.fixture
def arrays_calls(monkeypatch):
    """The layers whose ``arrays()`` was evaluated; more than 100,000 calls is an error."""
    calls = []
    original = Layer.arrays

    def counting(self):
        calls.append(self)
        if len(calls) > 100_000:
            raise RuntimeError("more than 100,000 arrays() calls: the walk is not linear")
        return original(self)

    monkeypatch.setattr(Layer, "arrays", counting)
    return calls


def nested(depth, inner):
    net = inner
    for _ in range(depth):
        net = lrp.Sequential([net])
    return net


@pytest.mark.parametrize("depth", [10, 40, 200])
def test_dtype_evaluates_each_layer_once(arrays_calls, depth):
    net = nested(depth, lrp.Sequential([lrp.ReLU(), lrp.Dense(np.ones((2, 2), np.float32))]))
    arrays_calls.clear()
    assert net.dtype == np.float32
    # depth + 1 Sequentials, the ReLU and the Dense: each once
    assert len(arrays_calls) == depth + 3


def test_a_200_deep_parameterless_nesting_explains(arrays_calls):
    net = nested(200, lrp.ReLU())
    x = np.array([[1.0, -2.0]])
    e = net.explain(x, rule=lrp.Epsilon(), output_relevance=np.array([[3.0, 4.0]]))
    np.testing.assert_array_equal(e.output, [[1.0, 0.0]])
    np.testing.assert_array_equal(e.relevance, [[3.0, 4.0]])    # ReLU passes relevance on
    assert len(e.layers) == 200                   # the 199 inner Sequentials and the ReLU


@pytest.mark.parametrize("depth", [50, 200])
def test_a_forward_through_nested_containers_is_linear_in_depth(arrays_calls, depth):
    """Every level's forward used to look the dtype up again (a walk of everything below
    it): depth d cost ~d^2/2 arrays() calls (20,304 at d = 200). Inside a call a parent
    has converted the input already, so a nested container passes a float input on: the
    top looks the dtype up once, each layer below checks its own input once."""
    net = lrp.Sequential([lrp.Dense(np.eye(3)), nested(depth, lrp.ReLU())])
    arrays_calls.clear()
    net.forward(np.ones((2, 3)))
    assert len(arrays_calls) <= 4 * (depth + 3)


def test_only_the_top_container_looks_for_shared_layers(monkeypatch):
    """A forward on its own asks once whether a layer object sits at two places (a walk of
    the whole network); the containers below are part of that decision (every level asking
    made a 200-deep nesting cubic: 1.4 million generator steps)."""
    asked = []
    original = lrp.layers.Container.shares_layers

    def counting(self):
        asked.append(self)
        return original(self)

    monkeypatch.setattr(lrp.layers.Container, "shares_layers", counting)
    net = lrp.Sequential([lrp.Dense(np.eye(3)), nested(50, lrp.ReLU())])
    net.forward(np.ones((2, 3)))
    assert asked == [net]
