"""Sequential networks: Gradient x Input, gradients, rule forms, records, dtypes."""

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.network import one_hot

from naive import finite_difference
from strategies import RULES, relu_networks


def relative_to(expected: np.ndarray) -> float:
    return float(np.abs(expected).max(initial=0.0)) + 1e-300


@given(case=relu_networks())
def test_lrp0_equals_gradient_x_input(case):
    """Ancona et al. 2018: on ReLU networks with biases, LRP-0 == Gradient x Input.

    Both are sums of the same products in different orders; 1e-10 relative to
    the largest entry covers the error growth through up to four layers whose
    pre-activations can come close to zero.
    """
    net, x = case
    e = net.explain(x, rule=lrp.Zero())
    gxi = net.gradient_x_input(x, e.target)
    np.testing.assert_allclose(e.relevance, gxi, rtol=0, atol=1e-10 * relative_to(gxi))


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@given(case=relu_networks())
def test_every_record_balances(rule, case):
    net, x = case
    e = net.explain(x, rule=rule)
    assert [r.path for r in e.layers] == [str(k) for k in range(len(net))]
    for record in e.layers:
        scale = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum() + 1e-300
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)


@given(case=relu_networks(), rule=st.sampled_from(RULES))
def test_output_is_seeded_with_target_logit(case, rule):
    net, x = case
    e = net.explain(x, rule=rule, target=0)
    np.testing.assert_array_equal(per_sample_sum(e.layers[-1].relevance_out), e.output[:, 0])


@given(case=relu_networks())
def test_gradient_matches_finite_differences(case):
    """A ReLU network is piecewise linear: central differences are exact up to
    rounding (~1e-16/1e-6 = 1e-10) unless a kink lies within h; 1e-6 covers that."""
    net, x = case
    target = np.argmax(net.forward(x), axis=1)
    batch = np.arange(len(x))
    numeric = finite_difference(lambda v: net.forward(v)[batch, target].sum(), x)
    np.testing.assert_allclose(net.gradient(x, target), numeric, rtol=0, atol=1e-6)


def test_dense_parameter_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    layer = lrp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))
    a, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    layer.forward(a)
    layer.backward(g)

    def loss_w(w):
        return np.sum(lrp.Dense(w, layer.bias).forward(a) * g)

    def loss_b(b):
        return np.sum(lrp.Dense(layer.weight, b).forward(a) * g)

    # the loss is linear in w and b: central differences are exact up to rounding
    np.testing.assert_allclose(layer.grad_weight, finite_difference(loss_w, layer.weight),
                               atol=1e-8)
    np.testing.assert_allclose(layer.grad_bias, finite_difference(loss_b, layer.bias), atol=1e-8)


def test_parameter_gradients_belong_to_the_last_backward():
    """They are computed when first read, but from that backward's input and gradient."""
    rng = np.random.default_rng(1)
    layer = lrp.Dense(rng.standard_normal((4, 3)))
    assert layer.grad_weight is None and layer.grad_bias is None      # no backward yet
    a, g = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    layer.forward(a)
    layer.backward(g)
    layer.forward(rng.standard_normal((7, 4)))                        # a later forward
    np.testing.assert_array_equal(layer.grad_weight, a.T @ g)         # sum_b a_bi g_bj
    np.testing.assert_array_equal(layer.grad_bias, g.sum(axis=0))
    with pytest.raises(AttributeError, match="computed by backward"):
        layer.grad_weight = np.zeros((4, 3))


@given(case=relu_networks(), rule=st.sampled_from(RULES))
def test_float32_agrees_with_float64(case, rule):
    """float32 rounding is 6e-8; through <= 4 layers with O(1) conditioning the
    relevance keeps ~1e-5 of its scale. Ill-conditioned draws (a denominator far
    smaller than its terms) amplify both errors alike, so they are compared at
    the larger of the two scales."""
    net, x = case
    e64 = net.explain(x, rule=rule)
    net32 = net.astype(np.float32)
    e32 = net32.explain(x.astype(np.float32), rule=rule, target=e64.target)
    assert e32.relevance.dtype == np.float32
    assert net32.forward(x).dtype == np.float32
    condition = max(np.abs(r.relevance_in).sum() / (abs(r.relevance_in.sum()) + 1e-12)
                    for r in e64.layers)
    tolerance = 1e-4 * min(condition, 1e3) * relative_to(e64.relevance) + 1e-6
    np.testing.assert_allclose(e32.relevance, e64.relevance, rtol=0, atol=tolerance)


def test_integer_input_is_converted():
    net = lrp.Sequential([lrp.Dense([[1.0], [2.0]])])
    assert net.forward(np.array([[1, 2]])).dtype == np.float64
    np.testing.assert_array_equal(net.explain(np.array([[1, 2]]), rule=lrp.Zero()).relevance,
                                  [[1.0, 4.0]])


def small_net() -> lrp.Sequential:
    rng = np.random.default_rng(1)
    return lrp.Sequential([
        lrp.Dense(rng.standard_normal((3, 4))), lrp.ReLU(),
        lrp.Sequential([lrp.Dense(rng.standard_normal((4, 4))), lrp.ReLU()]),
        lrp.Dense(rng.standard_normal((4, 2))),
    ])


def test_nested_paths_and_records():
    net = small_net()
    assert [p for p, _ in net.named_layers()] == ["0", "1", "2", "2.0", "2.1", "3"]
    e = net.explain(np.ones((2, 3)), rule=lrp.Epsilon())
    assert [r.path for r in e.layers] == ["0", "1", "2", "2.0", "2.1", "3"]
    nested = e.layer("2")
    assert nested.container
    np.testing.assert_array_equal(nested.relevance_in, e.layer("2.0").relevance_in)
    np.testing.assert_array_equal(nested.relevance_out, e.layer("2.1").relevance_out)
    np.testing.assert_allclose(nested.imbalance(), 0, atol=1e-12)


def test_rule_list_and_composite_forms_agree():
    net = small_net()
    x = np.ones((2, 3))
    eps, ab = lrp.Epsilon(0.1), lrp.AlphaBeta(1, 0)
    by_list = net.explain(x, rule=[ab, None, [eps, None], eps])

    def composite(network):
        return {"0": ab, "2.0": eps, "3": eps}

    by_composite = net.explain(x, rule=composite)
    np.testing.assert_array_equal(by_list.relevance, by_composite.relevance)
    assert by_list.rules() == {"0": ab, "1": None, "2.0": eps, "2.1": None, "3": eps}
    # the same steps by hand, layer by layer through the public relevance() calls after
    # a forward of the network on its own (explain's forward belongs to its call)
    net.forward(x)
    R = by_list.layer("3").relevance_out
    for layer, rule in zip(reversed(net.layers), [eps, [eps, None], None, ab]):
        R = layer.relevance(R, rule)
    np.testing.assert_array_equal(by_list.relevance, R)


def test_ledger_table_lists_every_layer():
    e = small_net().explain(np.ones((1, 3)), rule=lrp.Epsilon())
    table = e.ledger()
    for path in ["0", "1", "2", "2.0", "2.1", "3"]:
        assert any(line.split()[0] == path for line in table.splitlines()[2:])
    assert "imbalance" in table.splitlines()[0]


def test_output_relevance_needs_no_2d_output_nor_target():
    """With the seed given, the network may end in any shape (here a ReLU on images)."""
    net = lrp.Sequential([lrp.ReLU()])
    x = np.array([[[1.0, -2.0], [3.0, 4.0]]])
    R = np.array([[[0.5, 1.0], [2.0, -1.0]]])
    e = net.explain(x, rule=lrp.Zero(), output_relevance=R)
    assert e.target is None
    np.testing.assert_array_equal(e.relevance, R)
    with pytest.raises(ValueError, match=r"must be \(B, classes\) to pick a target"):
        net.explain(x, rule=lrp.Zero())


def test_relu_keeps_its_output_not_its_input():
    """Backward needs only where ``a > 0``, which is where ``max(0, a) > 0``: the ReLU
    keeps its output (held by the next layer anyway) and lets its input, the previous
    layer's output, go. Gradient and relevance are unchanged."""
    relu = lrp.ReLU()
    a = np.array([[-1.0, 0.0, 2.0]])
    released = weakref.ref(a)
    out = relu.forward(a)
    del a
    gc.collect()
    assert released() is None
    np.testing.assert_array_equal(out, [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 6.0, 7.0]])), [[0.0, 0.0, 7.0]])
    np.testing.assert_array_equal(relu.relevance(np.array([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0]])


def test_one_hot_seeds_the_target_with_one_or_with_its_logit():
    output = np.array([[0.5, -2.0, 3.0], [1.5, 4.0, -1.0]], dtype=np.float32)
    target = np.array([1, 0])
    np.testing.assert_array_equal(one_hot(output, target), [[0, 1, 0], [1, 0, 0]])
    # R_L = onehot(target) * f(x): the target's logit, 0 elsewhere
    seed = one_hot(output, target, logit=True)
    np.testing.assert_array_equal(seed, [[0, -2.0, 0], [1.5, 0, 0]])
    assert seed.dtype == np.float32 and output[0, 1] == -2.0     # output is not written
