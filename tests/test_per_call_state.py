"""State per call, paths per network (docs/conventions.md, "Layer contract").

What a forward remembers for ``relevance`` and ``backward`` belongs to the call
(``explain``, ``gradient``), not to the layer object; a layer's path belongs to
the network that holds it. So one layer object can sit at two nodes of a Graph,
in two networks, and be explained from several threads at once.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lrp_ref as lrp


def small_cnn(rng: np.random.Generator) -> lrp.Sequential:
    return lrp.Sequential([
        lrp.Conv2d(rng.standard_normal((4, 1, 3, 3)), rng.standard_normal(4), padding=1),
        lrp.ReLU(), lrp.MaxPool2d(2), lrp.Conv2d(rng.standard_normal((4, 4, 3, 3)), padding=1),
        lrp.ReLU(), lrp.AvgPool2d(2), lrp.Flatten(),
        lrp.Dense(rng.standard_normal((16, 8)), rng.standard_normal(8)), lrp.ReLU(),
        lrp.Dense(rng.standard_normal((8, 3))),
    ])


def test_concurrent_explanations_equal_sequential_ones_exactly():
    """200 explanations of one network from 8 threads: each equals its sequential twin.

    Every input differs, so an explanation that read another call's kept input
    (what a layer remembered on the object before) would differ; the sequential
    results come from the same code, so the equality is exact.
    """
    rng = np.random.default_rng(0)
    net = small_cnn(rng)
    xs = [rng.standard_normal((2, 1, 8, 8)) for _ in range(200)]
    rules = [lrp.Epsilon(0.01), lrp.AlphaBeta(2, 1), lrp.ZPlus()]

    def run(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = net.explain(xs[k], rule=rules[k % 3], method="explicit" if k % 7 == 0 else "fast")
        return e.relevance, e.layer("3").relevance_in, net.gradient(xs[k], target=k % 3)

    expected = [run(k) for k in range(len(xs))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(run, range(len(xs))))
    wrong = [k for k, (a, b) in enumerate(zip(expected, got))
             if not all(np.array_equal(u, v) for u, v in zip(a, b))]
    assert wrong == []


def shared_relu_graph(rng: np.random.Generator, share: bool) -> lrp.Graph:
    """``x -> fc1 -> relu -> fc2 -> add(fc2, relu) -> relu:2 -> head``: one ReLU object
    called twice (as torchvision's BasicBlock calls ``self.relu``), or two copies."""
    relu = lrp.ReLU()
    fc = lrp.Dense(rng.standard_normal((3, 3)), rng.standard_normal(3))
    g = lrp.Graph()
    x = g.input()
    h = g.add(lrp.Dense(rng.standard_normal((2, 3)), rng.standard_normal(3)), x, name="fc1")
    h = g.add(relu, h, name="relu")
    y = g.add(fc, h, name="fc2")
    y = g.add(fc if share else copy.deepcopy(fc), y, name="fc2:2")
    s = g.add(lrp.Add(), y, h, name="add")
    s = g.add(relu if share else copy.deepcopy(relu), s, name="relu:2")
    g.output(g.add(lrp.Dense(rng.standard_normal((3, 2))), s, name="head"))
    return g


@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_a_layer_object_at_two_nodes_explains_as_two_copies(method):
    shared = shared_relu_graph(np.random.default_rng(3), share=True)
    copies = shared_relu_graph(np.random.default_rng(3), share=False)
    assert shared["relu"] is shared["relu:2"] and shared["fc2"] is shared["fc2:2"]
    x = np.random.default_rng(4).standard_normal((5, 2))
    composite = lambda net: {"fc1": lrp.ZPlus(), "fc2": lrp.Epsilon(0.1),  # noqa: E731
                             "fc2:2": lrp.AlphaBeta(2, 1), "head": lrp.Zero()}
    a = shared.explain(x, rule=composite, method=method)
    b = copies.explain(x, rule=composite, method=method)
    np.testing.assert_array_equal(a.relevance, b.relevance)
    assert [r.path for r in a.layers] == [r.path for r in b.layers]
    for ra, rb in zip(a.layers, b.layers):
        assert ra.rule == rb.rule
        np.testing.assert_array_equal(np.asarray(ra.relevance_out), np.asarray(rb.relevance_out))
    np.testing.assert_array_equal(shared.gradient(x), copies.gradient(x))
    # the standalone forward and backward of the network work too
    grad = np.ones((5, 2))
    shared.forward(x)
    copies.forward(x)
    np.testing.assert_array_equal(shared.backward(grad), copies.backward(grad))


def test_a_second_network_does_not_rename_a_layer_of_the_first():
    """Issue 17's reproducer: Sequential([d2]) used to rename d2 to "0" inside A,
    which then gave layer 0's rule to d2 and d2's to layer 0."""
    rng = np.random.default_rng(5)
    d0, d2 = lrp.Dense(rng.standard_normal((3, 4))), lrp.Dense(rng.standard_normal((4, 2)))
    A = lrp.Sequential([d0, lrp.ReLU(), d2])
    B = lrp.Sequential([d2])
    x = rng.standard_normal((2, 3))
    e = A.explain(x, rule=[lrp.Zero(), None, lrp.Epsilon(10)])
    assert e.rules() == {"0": lrp.Zero(), "1": None, "2": lrp.Epsilon(10)}
    fresh = lrp.Sequential([copy.deepcopy(d0), lrp.ReLU(), copy.deepcopy(d2)])
    expected = fresh.explain(x, rule=[lrp.Zero(), None, lrp.Epsilon(10)])
    np.testing.assert_array_equal(e.relevance, expected.relevance)
    assert B.explain(x @ d0.weight, rule=lrp.Epsilon(10)).rules() == {"0": lrp.Epsilon(10)}
    # error messages name the path of the call, in either network
    C = lrp.Sequential([lrp.Identity(), lrp.Identity(), d2])
    with pytest.raises(ValueError, match=r"layer '2' \(Dense\): expected input of shape"):
        C.forward(np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): expected input of shape"):
        B.forward(np.ones((1, 3)))


def test_a_single_layer_on_its_own_keeps_its_state():
    """The teaching API: forward, then relevance and backward on the same object."""
    layer = lrp.Dense(np.array([[1.0, -1.0], [2.0, 1.0]]), np.array([0.0, 1.0]))
    z = layer.forward(np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(z, [[3.0, 1.0]])
    assert layer.output_shape == (1, 2)
    # LRP-0: R_i = a_i w_ij / z_j R_j with R = (3, 0): (1/3 3, 2/3 3) = (1, 2)
    np.testing.assert_array_equal(layer.relevance(np.array([[3.0, 0.0]]), lrp.Zero()),
                                  [[1.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 0.0]])), [[1.0, 2.0]])
    np.testing.assert_array_equal(layer.grad_weight, [[1.0, 0.0], [1.0, 0.0]])


def test_explain_leaves_the_layer_objects_untouched():
    """A call's state is the call's: after explain and gradient, no layer object holds
    their arrays; a forward of the network on its own keeps them on the layers (the
    teaching view, ``net[k]._input``), or in the network's trace when it holds a
    layer object at two places."""
    rng = np.random.default_rng(6)
    net = small_cnn(rng)
    net.explain(rng.standard_normal((1, 1, 8, 8)), rule=lrp.Epsilon())
    net.gradient(rng.standard_normal((1, 1, 8, 8)))
    assert net.trace is None
    assert all(layer.output_shape is None and layer._input is None
               for _, layer in net.named_layers())
    net.forward(np.zeros((2, 1, 8, 8)))
    assert net[7].output_shape == (2, 8) and net.trace is None
    shared = shared_relu_graph(rng, share=True)
    shared.forward(np.ones((3, 2)))
    assert shared["relu"]._input is None and shared.trace["relu:2"]["input"].shape == (3, 3)
    assert "relu:2" in shared.table()


def test_a_shared_dense_gets_the_sum_of_its_calls_parameter_gradients():
    """``y = W^T relu(W^T x)`` (one Dense at two nodes): dL/dW is the sum over both
    calls of ``a^T g`` (the chain rule for a shared parameter), which two copies give
    as their sum; a second backward after the same forward replaces, not adds."""
    grads = []
    for share in (True, False):
        rng = np.random.default_rng(8)
        fc = lrp.Dense(rng.standard_normal((3, 3)), rng.standard_normal(3))
        second = fc if share else copy.deepcopy(fc)
        g = lrp.Graph()
        x = g.input()
        h = g.add(lrp.ReLU(), g.add(fc, x, name="fc"), name="relu")
        g.output(g.add(second, h, name="fc:2"))
        x0, grad = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        g.forward(x0)
        g.backward(grad)
        g.backward(grad)                                    # again: the same gradients
        grads.append((fc.grad_weight, fc.grad_bias) if share else
                      (fc.grad_weight + second.grad_weight, fc.grad_bias + second.grad_bias))
    # the same two products added (a + b = b + a exactly in floating point)
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_parameter_gradients_follow_the_last_backward_pass_of_each_kind():
    """On its own, a network's backward, then the layer's own: each replaces the last."""
    rng = np.random.default_rng(9)
    net = lrp.Sequential([lrp.Dense(rng.standard_normal((3, 2)))])
    x, g = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    net.gradient(x)                                     # in a trace
    net.forward(x)
    net.backward(g)                                     # on its own
    np.testing.assert_array_equal(net[0].grad_weight, x.T @ g)
    net[0].forward(2 * x)
    net[0].backward(g)                                  # the layer on its own
    np.testing.assert_array_equal(net[0].grad_weight, (2 * x).T @ g)
    net.gradient(x, target=0)                           # a trace again: its pass only
    np.testing.assert_array_equal(net[0].grad_weight, x.T @ np.eye(2)[[0, 0]])


def test_a_forward_that_keeps_state_on_the_object_is_refused_in_a_call():
    """A new layer that forgets to declare what it keeps as ``Kept()`` fails loudly."""

    class Scale(lrp.Identity):
        def _forward(self, a):
            self._doubled = 2 * a                       # shared by every call: refused
            return a

    net = lrp.Sequential([Scale()])
    with pytest.raises(AttributeError, match=r"_doubled.*_doubled = Kept\(\)"):
        net.explain(np.ones((1, 2)), rule=lrp.Epsilon(), output_relevance=np.ones((1, 2)))
    assert net.forward(np.ones((1, 2))).shape == (1, 2)     # on its own it may


def test_concurrent_explanations_of_a_graph_with_a_shared_layer_and_conditions():
    """Threads on a Graph whose ReLU and Dense sit at two nodes, with CRP conditions
    (their masks need the call's output shapes): each equals its sequential twin."""
    g = shared_relu_graph(np.random.default_rng(10), share=True)
    xs = [np.random.default_rng(k).standard_normal((3, 2)) for k in range(100)]

    def run(k: int) -> np.ndarray:
        return g.explain(xs[k], rule=lrp.Epsilon(0.01), conditions={"fc2": [k % 3]}).relevance

    expected = [run(k) for k in range(len(xs))]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(run, range(len(xs))))
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))
